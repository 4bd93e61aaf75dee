"""Kafka shipper against the real broker of tests/servers (Kafka 4.x, KRaft): produce through the shipper
(open/encode/send/close, as the pipeline drives it), consume back with aiokafka and compare exactly: count,
topics, keys, headers, payloads, partitions. Also every codec, acks/idempotence, SASL_SSL with SCRAM-SHA-512
and PLAIN over the harness CA, TLS verification, bad credentials, an unreachable and a paused broker."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import string
import uuid
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from collector.pipeline.api import Delivered, Outcome, Partial, Record, Rejected, Retry, TooLarge
from shippers.kafka import create
from shippers.kafka.encode import EVENT_ID_HEADER, MAX_HOST_BYTES, MAX_ID_BYTES, partition_for

pytestmark = pytest.mark.realserver


def line(i: int, name: str) -> bytes:
    return (f'{{"name":"{name}","hostIdentifier":"web-1","calendarTime":"Mon Nov 27 10:00:00 2026 UTC",'
            f'"unixTime":1795773600,"epoch":0,"counter":{i},"numerics":false,'
            f'"columns":{{"pid":"{i}","path":"/usr/bin/p{i}"}},"action":"added"}}').encode()


def records(n: int, name: str = "q1", kind: str = "result", host: str = "web-1") -> list[Record]:
    return [Record(id=str(uuid.uuid4()), payload=line(i, name), name=name, kind=kind, host=host,
                   time=1795773600.25) for i in range(n)]


async def ship(s: Any, recs: list[Record], batch: int = 500) -> list[Outcome]:
    out = []
    for i in range(0, len(recs), batch):
        out.append(await s.send(s.encode(recs[i:i + batch])))
    return out


async def consume(topic: str, n: int, client_kw: dict[str, Any], timeout: float = 30.0) -> list[Any]:
    """Exactly the messages of `topic`: waits for n, then checks that nothing more arrives."""
    c = AIOKafkaConsumer(topic, auto_offset_reset="earliest", enable_auto_commit=False, **client_kw)
    await c.start()
    got: list[Any] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(got) < n and loop.time() < deadline:
            for recs in (await c.getmany(timeout_ms=1000)).values():
                got.extend(recs)
        for recs in (await c.getmany(timeout_ms=1000)).values():
            got.extend(recs)
    finally:
        await c.stop()
    return got


def plain(kafka_server: Any) -> dict[str, Any]:
    return {"bootstrap_servers": kafka_server.bootstrap_servers}


async def make(raw: dict[str, Any], name: str = "kafka_test") -> Any:
    s = create(name, None, {"type": "kafka", **raw})
    await s.open()
    return s


async def test_roundtrip_topic_routing_keys_payloads(kafka_server, kafka_topic):
    mapped, base, status = f"{kafka_topic}-procs", f"{kafka_topic}-base", f"{kafka_topic}-status"
    s = await make({"brokers": [kafka_server.bootstrap_servers], "topic": base, "status_topic": status,
                    "kafka_topics": {mapped: ["procs", "procs_snap"]}})
    try:
        assert (await s.healthcheck()).ok
        procs, snaps = records(1500, "procs"), records(300, "procs_snap", kind="snapshot")
        other, stat = records(700, "other"), records(50, "quarry.status", kind="status")
        recs: list[Record] = []
        for i in range(300):  # interleaved, so every request mixes topics
            recs += [procs[i], snaps[i], other[i]] + ([stat[i // 6]] if i % 6 == 0 else [])
        recs += procs[300:] + other[300:]
        outcomes = await ship(s, recs)
        assert outcomes == [Delivered()] * len(outcomes)
    finally:
        await s.close()
    expect = {mapped: procs + snaps, base: other, status: stat}
    for topic, want in expect.items():
        got = await consume(topic, len(want), plain(kafka_server))
        assert len(got) == len(want), topic
        got_by_key = {m.key: m for m in got}
        assert len(got_by_key) == len(want)
        for r in want:
            m = got_by_key[r.id.encode()]
            assert m.value == r.payload and m.headers == () and m.timestamp == 1795773600250
    # order within the (single) partition follows the send order
    got = await consume(base, len(other), plain(kafka_server))
    assert [m.key for m in got] == [r.id.encode() for r in other]


async def test_key_host_with_event_id_header(kafka_server, kafka_topic):
    s = await make({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic, "key": "host",
                    "host_key": "web-1_osqueryd"})
    recs = records(1000)
    try:
        assert await ship(s, recs, 250) == [Delivered()] * 4
    finally:
        await s.close()
    got = await consume(kafka_topic, 1000, plain(kafka_server))
    assert len(got) == 1000
    assert {m.key for m in got} == {b"web-1_osqueryd"}
    assert [dict(m.headers)[EVENT_ID_HEADER] for m in got] == [r.id.encode() for r in recs]
    assert [m.value for m in got] == [r.payload for r in recs]


@pytest.mark.parametrize("codec", ["zstd", "lz4", "gzip", "snappy", "none"])
async def test_every_codec(kafka_server, kafka_topic, codec):
    s = await make({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic, "compression": codec})
    recs = records(2000)
    try:
        assert s._producer._compression_type == (None if codec == "none" else codec)
        assert await ship(s, recs, 1000) == [Delivered(), Delivered()]
    finally:
        await s.close()
    got = await consume(kafka_topic, 2000, plain(kafka_server))
    assert [(m.key, m.value) for m in got] == [(r.id.encode(), r.payload) for r in recs]


async def test_acks_all_idempotent_no_duplicates(kafka_server, kafka_topic):
    s = await make({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic})
    recs = records(3000)
    try:
        p = s._producer
        assert p._sender._acks == -1 and p._txn_manager is not None and p._txn_manager.has_pid()
        # two requests in flight at once, as the pipeline's default concurrency
        reqs = [s.encode(recs[i:i + 500]) for i in range(0, 3000, 500)]
        for pair in (reqs[0:2], reqs[2:4], reqs[4:6]):
            assert await asyncio.gather(*(s.send(r) for r in pair)) == [Delivered(), Delivered()]
    finally:
        await s.close()
    got = await consume(kafka_topic, 3000, plain(kafka_server))
    assert len(got) == 3000 and sorted(m.offset for m in got) == list(range(3000))
    assert sorted(m.key for m in got) == sorted(r.id.encode() for r in recs)


async def test_acks_1_without_idempotence(kafka_server, kafka_topic):
    s = await make({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic, "acks": 1})
    recs = records(500)
    try:
        assert s._producer._sender._acks == 1 and s._producer._txn_manager is None
        assert await ship(s, recs) == [Delivered()]
    finally:
        await s.close()
    assert len(await consume(kafka_topic, 500, plain(kafka_server))) == 500


async def test_partitions_follow_java_key_hash(kafka_server, kafka_topic):
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_server.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(kafka_topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    by_id = await make({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic})
    by_host = await make({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic, "key": "host"})
    recs = records(600) + records(200, host="db-1") + records(200, host="db-2")
    try:
        assert await ship(by_id, recs[:600]) == [Delivered(), Delivered()]
        assert await ship(by_host, recs[600:]) == [Delivered()]
    finally:
        await by_id.close()
        await by_host.close()
    got = await consume(kafka_topic, 1000, plain(kafka_server))
    assert len(got) == 1000
    parts = [0, 1, 2]
    assert {m.partition for m in got} == {0, 1, 2}
    for m in got:
        assert m.partition == partition_for(m.key, parts)
    # per host: one partition, in send order
    for host in ("db-1", "db-2"):
        mine = [m for m in got if m.key == host.encode()]
        assert [dict(m.headers)[EVENT_ID_HEADER] for m in mine] == [r.id.encode() for r in recs if r.host == host]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_sasl_ssl(kafka_sasl_server, kafka_topic, mechanism):
    srv = kafka_sasl_server
    user, pw = (srv.plain_user, srv.plain_password) if mechanism == "PLAIN" else (srv.scram_user, srv.scram_password)
    s = await make({"brokers": [srv.bootstrap_servers], "topic": kafka_topic, "tls": {"ca_file": str(srv.ca_file)},
                    "sasl": {"mechanism": mechanism, "username": user, "password": pw}})
    recs = records(1000)
    try:
        assert s.cfg.security_protocol == "SASL_SSL"
        assert (await s.healthcheck()).ok
        assert await ship(s, recs) == [Delivered(), Delivered()]
    finally:
        await s.close()
    got = await consume(kafka_topic, 1000, srv.client_kwargs(mechanism))
    assert [(m.key, m.value) for m in got] == [(r.id.encode(), r.payload) for r in recs]


async def test_tls_verification_fails_without_the_ca(kafka_sasl_server, kafka_topic):
    srv = kafka_sasl_server
    s = await make({"brokers": [srv.bootstrap_servers], "topic": kafka_topic, "tls": {}, "connect_timeout_ms": 5000,
                    "sasl": {"mechanism": "SCRAM-SHA-512", "username": srv.scram_user,
                             "password": srv.scram_password}})
    try:
        assert s._producer is None
        health = await s.healthcheck()
        assert not health.ok
        out = await s.send(s.encode(records(3)))
        assert isinstance(out, Retry) and "not reachable" in out.reason
    finally:
        await s.close()


async def test_bad_password_is_retried_not_delivered(kafka_sasl_server, kafka_topic):
    srv = kafka_sasl_server
    s = await make({"brokers": [srv.bootstrap_servers], "topic": kafka_topic, "connect_timeout_ms": 5000,
                    "tls": {"ca_file": str(srv.ca_file)},
                    "sasl": {"mechanism": "SCRAM-SHA-512", "username": srv.scram_user, "password": "wrong"}})
    try:
        out = await s.send(s.encode(records(3)))
        assert isinstance(out, Retry), out
    finally:
        await s.close()


async def test_closed_port_is_retry_never_delivered(kafka_topic):
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = await make({"brokers": [f"127.0.0.1:{port}"], "topic": kafka_topic, "connect_timeout_ms": 2000})
    try:
        for _ in range(2):
            out = await s.send(s.encode(records(10)))
            assert isinstance(out, Retry)
    finally:
        await s.close()


async def test_paused_broker_gives_retry_then_everything_arrives(kafka_server, kafka_topic):
    """The broker is frozen (SIGSTOP) for a while: sends answer Retry within send_timeout_ms, never Delivered;
    after it resumes, retrying the same records delivers them; every id arrives (duplicates keep their id)."""
    pid = int((kafka_server.data_dir / "kafka.pid").read_text())
    s = await make({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic, "send_timeout_ms": 3000,
                    "request_timeout_ms": 2000, "connect_timeout_ms": 2000, "close_timeout_ms": 3000})
    first, second = records(200), records(300)
    try:
        assert await ship(s, first) == [Delivered()]
        os.kill(pid, signal.SIGSTOP)
        try:
            out = await s.send(s.encode(second))
            assert isinstance(out, (Retry, Partial)) and not isinstance(out, Delivered), out
            if isinstance(out, Partial):
                assert len(out.retry) == len(second) and not out.rejected
            await asyncio.sleep(2)
        finally:
            os.kill(pid, signal.SIGCONT)
        # the pipeline's retry, simplified: resend until delivered
        for _ in range(60):
            out = await s.send(s.encode(second))
            if out == Delivered():
                break
            assert isinstance(out, (Retry, Partial)), out
            await asyncio.sleep(1)
        assert out == Delivered()
    finally:
        await s.close()
    got = await consume(kafka_topic, len(first) + len(second), plain(kafka_server))
    want = {r.id.encode(): r.payload for r in first + second}
    assert {m.key for m in got} == set(want)
    assert all(m.value == want[m.key] for m in got)


async def test_broker_message_too_large(kafka_server, kafka_topic):
    # The harness broker takes 10 MiB messages; an 11 MiB incompressible event passes our max_request_size
    # (16 MiB here) and is refused by the broker: alone → Rejected, in a batch of two → TooLarge (split).
    big = os.urandom(11 << 20).hex()[: 11 << 20].encode()
    s = await make({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic, "compression": "none",
                    "max_request_size": 16 << 20, "max_batch_size": 16 << 20})
    try:
        one = [Record(id="big-1", payload=big, name="q1")]
        out = await s.send(s.encode(one))
        assert isinstance(out, Rejected) and "MessageSizeTooLarge" in out.reason, out
        two = one + records(1)
        assert isinstance(await s.send(s.encode(two)), TooLarge)
        assert await s.send(s.encode(records(5))) == Delivered()  # the producer still works
    finally:
        await s.close()


# --- through the shared pipeline (collector.pipeline): spool, batching, retry around this shipper ---------
async def _pipeline(raw: dict[str, Any], state_dir: Any) -> tuple[Any, Any]:
    from collector.pipeline import Pipeline, create_shipper, parse_settings, validate_shipper

    raw = {"type": "kafka", **raw}
    assert validate_shipper("kafka_pipe", raw) == []
    settings, errs = parse_settings("kafka_pipe", raw)
    assert errs == []
    shipper = create_shipper("kafka_pipe", settings, raw)  # the pipeline opens it
    p = Pipeline([shipper], {"kafka_pipe": settings}, state_dir, status_interval_s=0.1)
    await p.start()
    return p, shipper


async def _until(cond: Any, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_through_the_pipeline(kafka_server, kafka_topic, tmp_path):
    p, _ = await _pipeline({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic,
                            "batch": {"max_events": 700, "linger_ms": 50}}, tmp_path)
    recs = records(5000)
    try:
        for i in range(0, 5000, 250):  # query runs arriving over time
            await p.submit_many(recs[i:i + 250])
        await _until(lambda: p.snapshot()["kafka_pipe"]["acked"] >= 5000, 60)
        snap = p.snapshot()["kafka_pipe"]
        assert snap["acked"] == 5000 and snap["dead_lettered"] == 0
    finally:
        await p.stop(5)
    got = await consume(kafka_topic, 5000, plain(kafka_server))
    assert [(m.key, m.value) for m in got] == [(r.id.encode(), r.payload) for r in recs]


async def test_through_the_pipeline_across_a_paused_broker(kafka_server, kafka_topic, tmp_path):
    pid = int((kafka_server.data_dir / "kafka.pid").read_text())
    p, _ = await _pipeline({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic,
                            "send_timeout_ms": 2000, "request_timeout_ms": 1500, "connect_timeout_ms": 2000,
                            "batch": {"max_events": 500, "linger_ms": 50},
                            "retry": {"initial_s": 0.2, "max_s": 1}}, tmp_path)
    first, second = records(1000), records(2000)
    try:
        await p.submit_many(first)
        await _until(lambda: p.snapshot()["kafka_pipe"]["acked"] >= 1000, 30)
        os.kill(pid, signal.SIGSTOP)
        try:
            await p.submit_many(second)  # spooled while the broker does not answer
            await _until(lambda: p.snapshot()["kafka_pipe"]["retried"] > 0, 30)
            assert p.snapshot()["kafka_pipe"]["acked"] < 3000
        finally:
            os.kill(pid, signal.SIGCONT)
        await _until(lambda: p.snapshot()["kafka_pipe"]["acked"] >= 3000, 90)
        assert p.snapshot()["kafka_pipe"]["dead_lettered"] == 0
    finally:
        await p.stop(5)
    want = {r.id.encode(): r.payload for r in first + second}
    got = await consume(kafka_topic, len(want), plain(kafka_server))
    assert {m.key for m in got} == set(want)  # 0 lost; duplicates only as copies with the same id
    assert all(m.value == want[m.key] for m in got)


async def test_event_above_max_request_size_arrives_truncated_and_is_reported_once(kafka_server, kafka_topic,
                                                                                   tmp_path):
    """The pipeline cuts the event once, before the first attempt: the attempts that fail while the broker
    is frozen (SIGSTOP) send the same cut event and do not report it again."""
    pid = int((kafka_server.data_dir / "kafka.pid").read_text())
    big = Record(id="big-1", payload=orjson.dumps({"name": "q1", "columns": {"pid": "7", "cmdline": "a" * 2_000_000}}),
                 name="q1", host="web-1", time=1795773600.25)
    small = records(2)
    p, _ = await _pipeline({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic,
                            "send_timeout_ms": 2000, "request_timeout_ms": 1500, "connect_timeout_ms": 2000,
                            "batch": {"linger_ms": 20}, "retry": {"initial_s": 0.2, "max_s": 0.5}}, tmp_path)
    try:
        await _until(lambda: p.runners["kafka_pipe"].metrics.opened, 30)
        os.kill(pid, signal.SIGSTOP)
        try:
            await p.submit_many([*small, big])
            await _until(lambda: p.snapshot()["kafka_pipe"]["retried"] >= 6, 60)  # two failed attempts or more
            assert p.snapshot()["kafka_pipe"]["acked"] == 0
        finally:
            os.kill(pid, signal.SIGCONT)
        await _until(lambda: p.snapshot()["kafka_pipe"]["acked"] >= 3, 60)
        snap = p.snapshot()["kafka_pipe"]
        assert snap["dead_lettered"] == 0 and snap["notices"] == {"truncation": 1} and snap["requests"] >= 3
    finally:
        await p.stop(5)
    # an idempotent producer keeps the frozen attempts' batches, so copies may arrive: all with the same key
    got = await consume(kafka_topic, 3, plain(kafka_server))
    assert {m.key for m in got} == {b"big-1", *(r.id.encode() for r in small)}
    cut = {m.value for m in got if m.key == b"big-1"}
    assert len(cut) == 1  # every attempt sent the same cut
    value = orjson.loads(cut.pop())
    assert value["columns"]["pid"] == "7" and value["quarry_truncated"] == ["columns.cmdline"]
    assert value["columns"]["cmdline"].endswith("bytes]")


async def test_cut_event_fits_a_topic_whose_limit_is_max_request_size(kafka_server, kafka_topic, tmp_path):
    """The margin of max_event_bytes is enough: a topic with max.message.bytes = max_request_size accepts the
    cut event even with the longest host key and event id header the margin allows, uncompressed."""
    limit = 65536
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_server.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(kafka_topic, num_partitions=1, replication_factor=1,
                                            topic_configs={"max.message.bytes": str(limit)})])
    finally:
        await admin.close()
    host = "h" * MAX_HOST_BYTES
    noise = "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=300_000))
    big = Record(id="e" * MAX_ID_BYTES, payload=orjson.dumps({"name": "q1", "columns": {"pid": "7", "data": noise}}),
                 name="q1", host=host, time=1795773600.25)
    p, shipper = await _pipeline({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic,
                                  "key": "host", "compression": "none", "max_request_size": limit,
                                  "max_batch_size": limit, "batch": {"linger_ms": 20}}, tmp_path)
    try:
        await p.submit_many([big])
        await _until(lambda: p.snapshot()["kafka_pipe"]["acked"] + p.snapshot()["kafka_pipe"]["dead_lettered"]
                     >= 1, 60)
        snap = p.snapshot()["kafka_pipe"]
        assert snap["acked"] == 1 and snap["dead_lettered"] == 0 and snap["notices"] == {"truncation": 1}
    finally:
        await p.stop(5)
    (m,) = await consume(kafka_topic, 1, plain(kafka_server))
    assert m.key == host.encode() and dict(m.headers)[EVENT_ID_HEADER] == big.id.encode()
    assert limit - 1024 < len(m.value) <= shipper.max_event_bytes  # cut to the margin, not far below it


# Last in this file: it stops and restarts the session's broker.
async def test_health_fails_soon_after_the_broker_stops_and_is_ok_after_it_restarts(servers, kafka_server,
                                                                                   kafka_topic, tmp_path):
    """An idle shipper (no send to time out) shows the broker gone within a probe interval and timeout, in the
    figures behind `quarry status`, /healthz and osquery_shippers, and healthy again once it answers."""
    from collector.metrics_http import health
    from collector.status import document, failing
    from shippers.kafka.shipper import HEALTH_INTERVAL_S, HEALTH_TIMEOUT_S

    def snap() -> dict[str, Any]:
        return p.snapshot()["kafka_pipe"]

    def healthz() -> int:
        doc = document(shippers=p.snapshot(), scheduler={}, process={}, interval_s=5)
        return health(doc)[0]

    loop = asyncio.get_running_loop()
    p, _ = await _pipeline({"brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic,
                            "connect_timeout_ms": 3000}, tmp_path)
    try:
        await _until(lambda: p.runners["kafka_pipe"].metrics.opened, 30)
        await asyncio.sleep(HEALTH_INTERVAL_S + 1)  # a probe while the broker answers
        assert snap()["health"] == "ok" and healthz() == 200
        await asyncio.to_thread(servers.stop, "kafka")
        try:
            stopped = loop.time()
            await _until(lambda: failing(snap()), HEALTH_INTERVAL_S + HEALTH_TIMEOUT_S + 5)
            took = loop.time() - stopped
            assert snap()["health"] == "unreachable" and snap()["last_error"].startswith("health check:")
            assert healthz() == 503
            await asyncio.sleep(HEALTH_INTERVAL_S + 1)
            assert failing(snap())  # stays failing while the broker is down
        finally:
            await asyncio.to_thread(servers.start_again, "kafka")
        started = loop.time()
        await _until(lambda: snap()["health"] == "ok", HEALTH_INTERVAL_S + HEALTH_TIMEOUT_S + 5)
        back = loop.time() - started
        assert healthz() == 200
        print(f"failing {took:.1f}s after the broker stopped, ok {back:.1f}s after it serves again")
        recs = records(10)
        await p.submit_many(recs)
        await _until(lambda: snap()["acked"] >= 10, 60)
    finally:
        await p.stop(5)
