"""Records → per-topic message lists: topic routing (osquery's `kafka_topics`, base topic, status topic,
per-query route override), message keys and headers, and the Java client's key → partition hash.

Routing order for a record: `route["topic"]` > status events: `status_topic` > `kafka_topics[name]` > base
topic. A record with no topic is not published (as osquery) but reported: it comes back as rejected with a
reason starting "no topic", so the pipeline dead-letters and counts it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from aiokafka.record.default_records import DefaultRecordBatchBuilder  # type: ignore[import-untyped]

from collector.pipeline.api import Record

from .config import valid_topic

EVENT_ID_HEADER = "quarry-event-id"
Headers = list[tuple[str, bytes]]
_NO_HEADERS: Headers = []  # shared: aiokafka only reads a message's headers


@dataclass
class TopicBatch:
    """The messages of one request bound for one topic, in request order."""

    topic: str
    indices: list[int] = field(default_factory=list)  # into Request.records
    keys: list[bytes] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    headers: list[Headers] = field(default_factory=list)
    timestamps: list[int | None] = field(default_factory=list)  # epoch ms; None: the producer's clock


@dataclass
class Encoded:
    """Request.body of the Kafka shipper."""

    groups: list[TopicBatch]
    rejected: list[tuple[int, str]]  # decided before sending: no topic, invalid topic, too large


class Router:
    """Picks a record's topic as osquery's kafka_producer does, extended to status events and overrides."""

    def __init__(self, base: str, kafka_topics: Mapping[str, Iterable[str]] | None, status_topic: str) -> None:
        self.base = base
        self.status_topic = status_topic
        self.by_name: dict[str, str] = {}
        for topic, names in (kafka_topics or {}).items():
            for name in names:
                self.by_name[name] = topic  # osquery: a later mapping of the same name wins

    def topic_for(self, record: Record) -> tuple[str, str]:
        """(topic, "") or ("", reason) when the record cannot be published."""
        override = record.route.get("topic") if record.route else None
        if override:
            if not valid_topic(override):
                return "", f"invalid topic {override!r} in the query's route"
            return override, ""
        if record.kind == "status":
            if self.status_topic:
                return self.status_topic, ""
            return "", "no topic: status events need status_topic"
        topic = self.by_name.get(record.name) or self.base
        if topic:
            return topic, ""
        return "", f"no topic: query {record.name!r} is not in kafka_topics and no base topic is set"


def encode(records: list[Record], router: Router, key_mode: str, host_key: str,
           max_request_size: int, fit: Callable[[Record, int], bytes | None] | None = None) -> Encoded:
    """Records grouped by topic; `fit(record, limit)` may cut an event larger than max_request_size down to
    `limit` bytes of payload (None: it cannot, and the event is rejected)."""
    groups: dict[str, TopicBatch] = {}
    rejected: list[tuple[int, str]] = []
    by_host = key_mode == "host"
    fixed_key = host_key.encode() if host_key else b""
    # Below this a message cannot exceed max_request_size, so the exact estimate is skipped (hot loop).
    safe = max_request_size - 512
    plain: dict[str, TopicBatch | None] = {}  # query name → its group, for results without a route override
    for i, r in enumerate(records):
        if r.route or r.kind == "status" or r.name not in plain:
            topic, why = router.topic_for(r)
            if not topic:
                rejected.append((i, why))
                continue
            g = groups.get(topic)
            if g is None:
                g = groups[topic] = TopicBatch(topic)
            if not r.route and r.kind != "status":
                plain[r.name] = g
        else:
            g = plain[r.name]
        assert g is not None
        eid = r.id.encode()
        if by_host:
            key = fixed_key or r.host.encode()
            headers: Headers = [(EVENT_ID_HEADER, eid)]
        else:
            key, headers = eid, _NO_HEADERS
        payload = r.payload
        if len(payload) + len(key) > safe:
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, payload, headers)
            if size > max_request_size:
                cut = fit(r, max_request_size - (size - len(payload)) - 64) if fit is not None else None
                if cut is None:
                    rejected.append((i, (f"too large: event of {size} bytes exceeds max_request_size "
                                        f"{max_request_size}")))
                    continue
                payload = cut
        g.indices.append(i)
        g.keys.append(key)
        g.values.append(payload)
        g.headers.append(headers)
        g.timestamps.append(int(r.time * 1000) if r.time > 0 else None)
    return Encoded(list(groups.values()), rejected)


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as the Java client's Utils.murmur2 (seed 0x9747b28c), as an unsigned 32-bit int."""
    n = len(data)
    h = (0x9747B28C ^ n) & _MASK
    words = n // 4
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = n & 3
    if tail:
        base = words * 4
        if tail == 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h ^= data[base]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: bytes, partitions: list[int]) -> int:
    """The Java default partitioner for a keyed message: toPositive(murmur2(key)) % count."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
