"""Kafka shipper encoding: topic routing (kafka_topics, base, status, route override, no topic), keys, headers,
timestamps, oversize events, and the Java-compatible key → partition hash."""

from __future__ import annotations

import os

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from collector.pipeline.api import Record
from shippers.kafka import create
from shippers.kafka.encode import (
    EVENT_ID_HEADER,
    MAX_HOST_BYTES,
    MAX_ID_BYTES,
    Router,
    murmur2,
    partition_for,
)
from shippers.kafka.shipper import _by_partition

BASE = {"type": "kafka", "brokers": ["127.0.0.1:9"]}


def rec(i: int, name: str = "q1", kind: str = "result", **kw) -> Record:
    return Record(id=f"id-{i}", payload=f'{{"name":"{name}","i":{i}}}'.encode(), name=name, kind=kind,
                  host=kw.pop("host", "web-1"), time=kw.pop("time", 1700000000.5), **kw)


def shipper(**raw):
    return create("kafka_test", None, {**BASE, **raw})


def topics_of(req) -> dict[str, list[int]]:
    return {g.topic: g.indices for g in req.body.groups}


def test_kafka_topics_and_base_topic_for_results_and_snapshots():
    s = shipper(topic="osquery_base", kafka_topics={"t_procs": ["procs", "procs_snap"], "t_users": ["users"]})
    batch = [rec(0, "procs"), rec(1, "users"), rec(2, "other"), rec(3, "procs_snap", kind="snapshot"),
             rec(4, "other_snap", kind="snapshot")]
    req = s.encode(batch)
    assert topics_of(req) == {"t_procs": [0, 3], "t_users": [1], "osquery_base": [2, 4]}
    assert req.body.rejected == []
    assert req.records is batch and req.size == sum(r.size for r in batch)


def test_config_level_kafka_topics_used_when_body_has_none():
    s = create("k", {"kafka_topics": {"from_config": ["q1"]}}, {**BASE, "topic": "b"})
    assert topics_of(s.encode([rec(0), rec(1, "q2")])) == {"from_config": [0], "b": [1]}
    # a body mapping wins over the config's
    s = create("k", {"kafka_topics": {"from_config": ["q1"]}}, {**BASE, "kafka_topics": {"own": ["q1"]}})
    assert topics_of(s.encode([rec(0)])) == {"own": [0]}


def test_status_events_go_to_status_topic_only():
    s = shipper(topic="base", status_topic="osquery_status", kafka_topics={"x": ["quarry.status"]})
    req = s.encode([rec(0, "quarry.status", kind="status"), rec(1)])
    assert topics_of(req) == {"osquery_status": [0], "base": [1]}


def test_route_topic_overrides_everything():
    s = shipper(topic="base", status_topic="st", kafka_topics={"mapped": ["q1"]})
    req = s.encode([rec(0, route={"topic": "special"}), rec(1, kind="status", route={"topic": "special"}), rec(2)])
    assert topics_of(req) == {"special": [0, 1], "mapped": [2]}


def test_no_topic_is_rejected_with_reason_not_silent():
    s = shipper(kafka_topics={"mapped": ["q1"]})  # no base topic, no status topic
    req = s.encode([rec(0), rec(1, "unmapped"), rec(2, "quarry.status", kind="status"),
                    rec(3, route={"topic": "bad topic!"})])
    assert topics_of(req) == {"mapped": [0]}
    reasons = dict(req.body.rejected)
    assert sorted(reasons) == [1, 2, 3]
    assert reasons[1].startswith("no topic") and "'unmapped'" in reasons[1]
    assert reasons[2].startswith("no topic") and "status_topic" in reasons[2]
    assert reasons[3].startswith("invalid topic")


def test_key_event_id_default_no_headers():
    req = shipper(topic="t").encode([rec(0), rec(1)])
    (g,) = req.body.groups
    assert g.keys == [b"id-0", b"id-1"]
    assert g.headers == [[], []]
    assert g.values == [rec(0).payload, rec(1).payload]
    assert g.timestamps == [1700000000500, 1700000000500]


def test_key_host_puts_event_id_in_header():
    req = shipper(topic="t", key="host").encode([rec(0, host="web-1"), rec(1, host="db-2", time=0.0)])
    (g,) = req.body.groups
    assert g.keys == [b"web-1", b"db-2"]
    assert g.headers == [[(EVENT_ID_HEADER, b"id-0")], [(EVENT_ID_HEADER, b"id-1")]]
    assert g.timestamps == [1700000000500, None]  # no event time: the producer stamps it


def test_fixed_host_key_as_osquery():
    req = shipper(topic="t", key="host", host_key="myhost_osqueryd").encode([rec(0, host="a"), rec(1, host="b")])
    assert req.body.groups[0].keys == [b"myhost_osqueryd"] * 2


def test_event_larger_than_max_request_size_is_rejected():
    s = shipper(topic="t", max_request_size=4096, max_batch_size=4096)
    big = Record(id="big", payload=b"x" * 5000, name="q1")
    edge = Record(id="edge", payload=b"y" * 3900, name="q1")
    req = s.encode([rec(0), big, edge])
    assert topics_of(req) == {"t": [0, 2]}
    ((i, why),) = req.body.rejected
    assert i == 1 and why.startswith("too large:") and "max_request_size 4096" in why


@pytest.mark.parametrize("data", [b"", b"a", b"ab", b"abc", b"abcd", b"21", b"foobar",
                                  b"a-little-bit-long-string", b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                                  bytes(range(256))])
def test_murmur2_matches_java_client(data):
    assert murmur2(data) == aiokafka_murmur2(data) & 0xFFFFFFFF


def test_murmur2_known_java_values():
    # org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed Java ints)
    def signed(x: int) -> int:
        return x - (1 << 32) if x >= 1 << 31 else x

    assert signed(murmur2(b"21")) == -973932308
    assert signed(murmur2(b"foobar")) == -790332482
    assert signed(murmur2(b"a-little-bit-long-string")) == -985981536
    assert signed(murmur2(b"a-little-bit-longer-string")) == -1486304829
    assert signed(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")) == -58897971
    assert signed(murmur2(b"abc")) == 479470107


def test_partition_for_matches_default_partitioner():
    parts = [0, 1, 2, 3, 4]
    for i in range(200):
        key = f"event-{i}".encode()
        assert partition_for(key, parts) == DefaultPartitioner()(key, parts, parts)


def test_by_partition_groups_in_order():
    keys = [b"a", b"b", b"a", b"c", b"b"]
    assert _by_partition(keys, [0]) == [(0, [0, 1, 2, 3, 4])]
    groups = dict(_by_partition(keys, [0, 1, 2]))
    assert sorted(j for rows in groups.values() for j in rows) == [0, 1, 2, 3, 4]
    for part, rows in groups.items():
        assert rows == sorted(rows)
        assert all(partition_for(keys[j], [0, 1, 2]) == part for j in rows)


def test_router_later_mapping_wins_like_osquery():
    r = Router("", {"a": ["q"], "b": ["q"]}, "")
    assert r.topic_for(rec(0, "q")) == ("b", "")


CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.mark.parametrize("compression", list(CODECS))
@pytest.mark.parametrize("keying", [{}, {"key": "host"}, {"key": "host", "host_key": "web-1_osqueryd"}])
@pytest.mark.parametrize("max_request_size", [4096, 1 << 20])
def test_an_event_of_max_event_bytes_makes_a_message_within_max_request_size(compression, keying,
                                                                             max_request_size):
    """The pipeline cuts events to max_event_bytes: the message of one that size, with the longest id and host
    the margin allows, incompressible, is at most max_request_size as aiokafka builds and sends it."""
    s = shipper(topic="t", compression=compression, max_request_size=max_request_size,
                max_batch_size=min(max_request_size, 524288), **keying)
    limit = s.max_event_bytes
    assert max_request_size - 2048 - max_request_size // 1024 <= limit < max_request_size  # not wasteful either
    r = Record(id="i" * MAX_ID_BYTES, payload=os.urandom(limit), name="q1", host="h" * MAX_HOST_BYTES,
               time=1700000000.5)
    body = s.encode([r]).body
    assert body.rejected == []
    g = body.groups[0]
    batch = DefaultRecordBatchBuilder(magic=2, compression_type=CODECS[compression], is_transactional=0,
                                      producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                      batch_size=s.cfg.max_batch_size)
    assert batch.append(0, timestamp=g.timestamps[0], key=g.keys[0], value=g.values[0],
                        headers=g.headers[0]) is not None
    assert len(batch.build()) <= max_request_size
    # an event still too large (one that could not be cut) is caught by encode's exact check, never sent
    over = Record(id="i" * MAX_ID_BYTES, payload=os.urandom(max_request_size), name="q1", host="h")
    ((_, why),) = s.encode([over]).body.rejected
    assert why.startswith("too large:") and f"max_request_size {max_request_size}" in why


def test_encode_no_longer_cuts_events_itself():
    s = shipper(topic="t", max_request_size=4096, max_batch_size=4096)
    assert not hasattr(s, "report")  # the pipeline cuts (once, before the first attempt) and reports
    big = Record(id="big", payload=orjson.dumps({"name": "q1", "columns": {"cmdline": "z" * 9000}}), name="q1")
    req = s.encode([rec(0), big])
    assert topics_of(req) == {"t": [0]} and [i for i, _ in req.body.rejected] == [1]
