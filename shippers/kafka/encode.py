"""Records → per-topic message lists: topic routing (osquery's `kafka_topics`, base topic, status topic,
per-query route override), message keys and headers, and the Java client's key → partition hash.

Routing order for a record: `route["topic"]` > status events: `status_topic` > `kafka_topics[name]` > base
topic. A record with no topic is not published (as osquery) but reported: it comes back as rejected with a
reason starting "no topic", so the pipeline dead-letters and counts it.

`max_event_bytes()` is the largest value (event payload) that, with its key, headers and record batch framing,
and after compression, still makes a message of at most max_request_size: the pipeline cuts larger events to
it once before the first encode. encode() keeps the exact check and rejects a message that is still too large
(an event that could not be cut, an id or host name longer than the margin allows).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
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


# Margin for the parts of a message that vary per event: ids are UUIDs (36 bytes) or short status ids, host
# identifiers are DNS names (at most 253); longer ones are still checked exactly by encode().
MAX_ID_BYTES = 255
MAX_HOST_BYTES = 255
# When key + value + event id stay below max_request_size minus this, the message cannot exceed it: batch
# header 61 + record framing 21 + three length varints of up to 5 + header count, name length and name 17.
_FRAMING = 128


def max_event_bytes(max_request_size: int, key_mode: str, host_key: str, compression: str) -> int:
    """The largest payload whose message, alone in its record batch, is at most max_request_size bytes.

    The broker compares the record batch as sent (compressed) with its message.max.bytes, and aiokafka's
    batch builder sends the compressed form even when it came out larger: incompressible data grows by up
    to 0.035% (gzip's stored blocks, snappy's framing; lz4 and zstd less) plus a few dozen bytes of
    container, so 1/1024 of the request plus 64 bytes are kept free for any codec.
    """
    if key_mode == "host":
        key = b"k" * (len(host_key.encode()) if host_key else MAX_HOST_BYTES)
        headers: Headers = [(EVENT_ID_HEADER, b"i" * MAX_ID_BYTES)]
    else:
        key, headers = b"k" * MAX_ID_BYTES, []
    # the estimate with an empty value counts a 1-byte length varint; the real one takes up to 5
    framing = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, b"", headers) + 4
    squeeze = 0 if compression == "none" else max_request_size // 1024 + 64
    return max_request_size - framing - squeeze


def encode(records: list[Record], router: Router, key_mode: str, host_key: str,
           max_request_size: int) -> Encoded:
    """Records grouped by topic; a message larger than max_request_size is rejected with the reason."""
    groups: dict[str, TopicBatch] = {}
    rejected: list[tuple[int, str]] = []
    by_host = key_mode == "host"
    fixed_key = host_key.encode() if host_key else b""
    safe = max_request_size - _FRAMING  # below it the exact estimate is skipped (hot loop)
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
        if len(payload) + len(key) + len(eid) > safe:
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, payload, headers)
            if size > max_request_size:
                rejected.append((i, (f"too large: event of {size} bytes exceeds max_request_size "
                                    f"{max_request_size}")))
                continue
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
