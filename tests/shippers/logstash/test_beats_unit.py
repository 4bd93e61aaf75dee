"""Beats mode against an in-test asyncio lumberjack peer: ACK handling, partial ACKs, timeouts, reconnects."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from collector.pipeline.api import Delivered, Partial, Record, Rejected, Retry
from shippers.logstash import BeatsShipper, create

from .fakes import FakeLumberjack


def recs(n: int, start: int = 0) -> list[Record]:
    return [Record(id=f"id-{i}", payload=json.dumps({"name": "q", "i": i}).encode(), name="q", time=1.5)
            for i in range(start, start + n)]


def shipper(port: int, **kw) -> BeatsShipper:
    s = create("ls", None, {"hosts": [f"127.0.0.1:{port}"], "ack_timeout_s": 0.5, "connect_timeout_s": 1, **kw})
    assert isinstance(s, BeatsShipper)
    return s


async def send(s: BeatsShipper, batch: list[Record]):
    return await s.send(s.encode(batch))


@pytest.mark.parametrize("level", [0, 3])
async def test_delivered_one_connection_across_batches(level):
    async with FakeLumberjack() as peer:
        s = shipper(peer.port, compression_level=level)
        await s.open()
        assert [await send(s, recs(100, k)) for k in range(0, 300, 100)] == [Delivered()] * 3
        await s.close()
    assert peer.connections == 1
    assert [[seq for seq, _ in w] for w in peer.windows] == [list(range(1, 101))] * 3
    got = [ev["i"] for w in peer.windows for _, ev in w]
    assert got == list(range(300))
    ev = peer.windows[0][0][1]
    assert ev["@metadata"]["beat"] == "quarry" and ev["@metadata"]["_id"] == "id-0"
    assert ev["@timestamp"] == "1970-01-01T00:00:01.500Z"


async def test_progress_acks_and_keepalives_then_full():
    async with FakeLumberjack(lambda k, n: [0, 10, 10, 0, 40, n]) as peer:
        s = shipper(peer.port)
        assert await send(s, recs(50)) == Delivered()
        await s.close()
    assert s.stats["keepalives"] == 3


async def test_partial_ack_then_hangup_is_partial():
    # the peer acknowledges 30 of 50 events, then goes silent
    async with FakeLumberjack(lambda k, n: [30, -2] if k == 1 else [n]) as peer:
        s = shipper(peer.port, ack_timeout_s=0.3)
        out = await send(s, recs(50))
        assert isinstance(out, Partial)
        assert out.retry == tuple(range(30, 50)) and out.rejected == ()
        assert out.retry_reason.startswith("timeout") and "30/50 acked" in out.retry_reason
        assert s.stats["partial_acks"] == 1
        # the rest goes on a fresh connection (the old one may still carry this window's ACKs)
        assert await send(s, recs(20, 30)) == Delivered()
        await s.close()
    assert peer.connections == 2
    assert [ev["i"] for _, ev in peer.windows[1]] == list(range(30, 50))


async def test_partial_ack_then_connection_closed():
    async with FakeLumberjack(lambda k, n: [7, "close"]) as peer:
        s = shipper(peer.port)
        out = await send(s, recs(10))
        await s.close()
    assert out == Partial(retry=(7, 8, 9), retry_reason="connection closed by the peer (7/10 acked)")


async def test_silent_peer_is_retry_timeout():
    async with FakeLumberjack(lambda k, n: [-5]) as peer:
        s = shipper(peer.port, ack_timeout_s=0.2)
        out = await send(s, recs(5))
        await s.close()
    assert isinstance(out, Retry) and out.reason.startswith("timeout: no ACK within 0.2 s (0/5 acked)")


async def test_bad_frame_and_ack_beyond_window_are_retry():
    async with FakeLumberjack(lambda k, n: [n + 5]) as peer:
        s = shipper(peer.port)
        out = await send(s, recs(5))
        await s.close()
    assert isinstance(out, Retry) and "protocol error: ACK 10 beyond the window of 5" in out.reason


async def test_connection_refused_is_retry_then_recovers():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = shipper(port)
    await s.open()  # logged, not raised
    assert not (await s.healthcheck()).ok
    out = await send(s, recs(3))
    assert isinstance(out, Retry) and out.reason.startswith("connection error: connect to 127.0.0.1:")
    await s.close()


async def test_failover_to_next_host():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    async with FakeLumberjack() as peer:
        s = create("ls", None, {"hosts": [f"127.0.0.1:{dead}", f"127.0.0.1:{peer.port}"]})
        assert isinstance(await send(s, recs(2)), Retry)
        assert await send(s, recs(2)) == Delivered()
        assert await send(s, recs(2)) == Delivered()  # stays on the good host
        await s.close()
    assert peer.connections == 1


async def test_idle_connection_closed_by_peer_is_resent_once():
    async with FakeLumberjack() as peer:
        s = shipper(peer.port)
        assert await send(s, recs(3)) == Delivered()
        # the connection dies while idle (as when Logstash's client_inactivity_timeout closes it)
        assert s.conns[0].writer is not None
        s.conns[0].writer.transport.abort()
        assert await send(s, recs(3, 3)) == Delivered()
        await s.close()
    assert [ev["i"] for w in peer.windows for _, ev in w] == list(range(6))


async def test_cancel_mid_window_drops_the_connection():
    async with FakeLumberjack(lambda k, n: [-5] if k == 1 else [n]) as peer:
        s = shipper(peer.port, ack_timeout_s=10)
        task = asyncio.create_task(send(s, recs(4)))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert s.conns[0].writer is None
        assert await send(s, recs(4)) == Delivered()
        await s.close()
    assert peer.connections == 2


async def test_non_object_payloads_rejected_rest_sent():
    async with FakeLumberjack() as peer:
        s = shipper(peer.port)
        batch = recs(3)
        batch.insert(1, Record(id="bad", payload=b"not json", name="q"))
        out = await send(s, batch)
        assert out == Partial(rejected=((1, "payload is not a JSON object"),))
        assert await send(s, [Record(id="bad", payload=b"7", name="q")]) == Rejected("payload is not a JSON object")
        await s.close()
    assert [ev["i"] for _, ev in peer.windows[0]] == [0, 1, 2]


def test_config_errors():
    from collector.pipeline.config import validate_shipper

    errs = validate_shipper("ls", {"type": "logstash", "compression_level": 12, "url": "http://x"})
    assert any("hosts: required for mode beats" in e for e in errs)
    assert any("compression_level: must be between 0 and 9" in e for e in errs)
    assert any("url: only for mode http" in e for e in errs)
    errs = validate_shipper("lh", {"type": "logstash", "mode": "http", "url": "ftp://x", "body": "xml",
                                   "password": "p"})
    assert all(e.startswith("shippers.lh") for e in errs) and len(errs) == 3
    assert validate_shipper("ls", {"type": "logstash", "hosts": ["ls1:5044", "[::1]:5045"]}) == []


def test_sample_conf_validates_and_readme_quotes_it():
    from pathlib import Path

    from collector.config.text import loads
    from collector.pipeline.config import validate_shipper
    from shippers.logstash.config import KEYS

    pkg = Path(__file__).resolve().parents[3] / "shippers" / "logstash"
    text = (pkg / "sample.conf").read_text()
    (name, body), = loads(text, "sample.conf")["shippers"].items()
    assert validate_shipper(name, body) == []
    readme = (pkg / "README.md").read_text()
    assert text.strip() in readme
    for key in KEYS - {"password", "password_env"}:
        assert f"| `{key}` |" in readme, key
    assert "| `password` / `password_env` |" in readme


def test_both_modes_are_shippers():
    from collector.pipeline.api import Shipper

    for raw in ({"hosts": ["a:5044"]}, {"mode": "http", "url": "http://a:8080"}):
        s = create("x", None, raw)
        assert isinstance(s, Shipper) and s.type == "logstash" and s.name == "x" and s.format == "osquery"


async def test_workers_keep_one_window_in_flight_per_connection():
    # The first window is answered only after 1 s; with two workers the second window goes out on a second
    # connection meanwhile and is acknowledged first.
    async with FakeLumberjack(lambda k, n: [-1, n] if k == 1 else [n]) as peer:
        s = create("ls", type("S", (), {"concurrency": 2})(), {"hosts": [f"127.0.0.1:{peer.port}"],
                                                               "ack_timeout_s": 5})
        assert isinstance(s, BeatsShipper) and len(s.conns) == 2
        slow = asyncio.create_task(send(s, recs(3)))
        await asyncio.sleep(0.2)
        fast = asyncio.create_task(send(s, recs(3, 3)))
        done, _ = await asyncio.wait({slow, fast}, return_when=asyncio.FIRST_COMPLETED)
        assert done == {fast} and fast.result() == Delivered()
        assert await slow == Delivered()
        await s.close()
    assert peer.connections == 2
    assert sorted(ev["i"] for w in peer.windows for _, ev in w) == list(range(6))
