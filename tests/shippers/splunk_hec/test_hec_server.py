"""The HEC shipper against the REAL receiver of tests/servers (OpenTelemetry Collector `splunkhec`, read back
from its file exporter) — directly and through collector.pipeline.Pipeline — with exact counts and content;
and against the protocol-faithful fake HEC for what the receiver does not do (pending acks, 503 busy, TLS)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from collector.pipeline import Pipeline, parse_settings
from collector.pipeline.api import Delivered, Record, Rejected, Retry
from shippers.splunk_hec import create
from tests.servers.fake_hec import FakeHec, HecToken

T0 = 1795773600


def line(i: int, name: str) -> bytes:
    return (f'{{"name":"{name}","hostIdentifier":"web-1","calendarTime":"Mon Nov 27 10:00:00 2026 UTC",'
            f'"unixTime":{T0},"epoch":0,"counter":{i},"numerics":false,'
            f'"columns":{{"pid":"{i}","path":"/usr/bin/p{i}"}},"action":"added"}}').encode()


def records(n: int, name: str = "q1", kind: str = "result") -> list[Record]:
    return [Record(id=str(uuid.uuid4()), payload=line(i, name), name=name, kind=kind, host="web-1",
                   time=T0 + 0.25) for i in range(n)]


def check_received(got: list[dict], sent: list[Record], sourcetype: str = "osquery:results") -> None:
    assert len(got) == len(sent)
    by_id = {e["fields"]["quarry_event_id"]: e for e in got}
    assert len(by_id) == len(sent)  # no duplicates
    for r in sent:
        e = by_id[r.id]
        want = json.loads(r.payload)
        want["unixTime"] = float(want["unixTime"])  # the receiver turns numbers into doubles
        want["epoch"] = float(want["epoch"])
        want["counter"] = float(want["counter"])
        assert e["event"] == want
        assert e["fields"] == {"quarry_event_id": r.id, "query_name": r.name, "quarry_kind": r.kind}
        assert (e["host"], e["source"], e["sourcetype"]) == ("web-1", "quarry", sourcetype)
        assert round(e["time"], 3) == T0 + 0.25  # milliseconds survive the receiver's float64 nanoseconds


@pytest.mark.realserver
async def test_shipper_into_real_receiver(hec_target):
    s = create("hec", None, {"url": hec_target.url, "token": hec_target.token})
    await s.open()
    health = await s.healthcheck()
    assert health.ok and "code 17" in health.detail
    sent = records(3000)
    outs = [await s.send(s.encode(sent[i:i + 500])) for i in range(0, len(sent), 500)]
    await s.close()
    assert outs == [Delivered()] * 6
    check_received(hec_target.read_events(expected=len(sent), timeout=60), sent)


@pytest.mark.realserver
async def test_status_events_and_ack_mode_on_real_receiver(hec_target):
    s = create("hec", None, {"url": hec_target.url, "token": hec_target.token, "ack": True})
    sent = records(200, name="quarry.status", kind="status")
    outs = [await s.send(s.encode(sent[i:i + 100])) for i in range(0, 200, 100)]
    assert outs == [Delivered(), Delivered()]
    assert s.ack and s.stats["acked_requests"] == 2 and s._acks.polls >= 1
    await s.close()
    check_received(hec_target.read_events(expected=200, timeout=60), sent, sourcetype="osquery:status")


@pytest.mark.realserver
async def test_bad_token_rejected_by_real_receiver(hec_receiver):
    s = create("hec", None, {"url": hec_receiver.url, "token": "not-a-registered-token"})
    assert not (await s.healthcheck()).ok
    out = await s.send(s.encode(records(3)))
    await s.close()
    assert isinstance(out, Rejected) and out.reason.startswith("HTTP 401")


@pytest.mark.realserver
async def test_pipeline_into_real_receiver(hec_target, tmp_path):
    raw = {"type": "splunk_hec", "url": hec_target.url, "token": hec_target.token,
           "batch": {"linger_ms": 50}}
    settings, errors = parse_settings("hec", raw)
    assert errors == [] and settings.spool_enabled
    shipper = create("hec", settings, raw)
    p = Pipeline([shipper], {"hec": settings}, tmp_path)
    await p.start()
    sent = records(5000)
    for i in range(0, len(sent), 1000):
        await p.submit_many(sent[i:i + 1000])
    await p.stop(grace=30)
    snap = p.snapshot()["hec"]
    assert snap["acked"] == 5000 and snap["spool_events"] == 0 and snap["dead_lettered"] == 0
    check_received(hec_target.read_events(expected=5000, timeout=60), sent)


@pytest.mark.realserver
async def test_event_above_max_request_bytes_arrives_truncated_with_a_marker(hec_target, tmp_path):
    raw = {"type": "splunk_hec", "url": hec_target.url, "token": hec_target.token, "max_request_bytes": 20_000,
           "batch": {"linger_ms": 50}}
    settings, errors = parse_settings("hec", raw)
    assert errors == []
    p = Pipeline([create("hec", settings, raw)], {"hec": settings}, tmp_path)
    await p.start()
    big = Record(id="big-1", payload=json.dumps({"name": "q1", "hostIdentifier": "web-1", "unixTime": T0,
                                                 "columns": {"pid": "7", "cmdline": "a" * 60_000}}).encode(),
                 name="q1", host="web-1", time=T0 + 0.25)
    sent = [*records(3), big]
    await p.submit_many(sent)
    await p.stop(grace=30)
    snap = p.snapshot()["hec"]
    assert snap["acked"] == 4 and snap["dead_lettered"] == 0 and snap["notices"] == {"truncation": 1}
    got = {e["fields"]["quarry_event_id"]: e for e in hec_target.read_events(expected=4, timeout=60)}
    assert set(got) == {r.id for r in sent}
    cut = got["big-1"]["event"]
    assert cut["columns"]["pid"] == "7" and cut["quarry_truncated"] == ["columns.cmdline"]
    assert len(json.dumps(cut)) < 20_000 and cut["columns"]["cmdline"].endswith("bytes]")


async def test_pipeline_through_503_busy_delivers_all_once(tmp_path):
    with FakeHec({"tok": HecToken()}) as fake:
        fake.busy = True
        raw = {"type": "splunk_hec", "url": fake.url, "token": "tok", "batch": {"linger_ms": 20, "max_events": 100},
               "retry": {"initial_s": 0.05, "max_s": 0.2}}
        settings, errors = parse_settings("hec", raw)
        assert errors == []
        p = Pipeline([create("hec", settings, raw)], {"hec": settings}, tmp_path)
        await p.start()
        sent = records(1000)
        await p.submit_many(sent)
        for _ in range(100):  # the first requests hit 503 code 9 and are retried after Retry-After (1 s)
            if any(code == 9 for _, _, _, code in fake.requests):
                break
            await asyncio.sleep(0.05)
        fake.busy = False
        await p.stop(grace=30)
        snap = p.snapshot()["hec"]
        assert snap["acked"] == 1000 and snap["retried"] >= 1 and snap["dead_lettered"] == 0
        ids = [e.envelope["fields"]["quarry_event_id"] for e in fake.events]
        assert sorted(ids) == sorted(r.id for r in sent)  # exactly once each


async def test_ack_pending_then_indexed_and_timeout_resends():
    with FakeHec({"tok": HecToken(ack=True)}) as fake:
        fake.auto_ack = False
        s = create("hec", None, {"url": fake.url, "token": "tok", "ack": True, "ack_timeout_s": 5,
                                 "ack_poll_s": 0.1})
        task = asyncio.create_task(s.send(s.encode(records(10))))
        await asyncio.sleep(0.5)
        assert not task.done()  # accepted (200 + ackId) but not acknowledged: send() waits
        polls = [r for r in fake.requests if r[1].startswith("/services/collector/ack")]
        assert polls and all(status == 200 for _, _, status, _ in polls)
        fake.index_pending()
        assert await asyncio.wait_for(task, 5) == Delivered()
        assert s.stats["acked_requests"] == 1
        # lost batch: the id stays false until the ack wait ends → Retry (the pipeline resends)
        s2 = create("hec", None, {"url": fake.url, "token": "tok", "ack": True, "ack_timeout_s": 0.5,
                                  "ack_poll_s": 0.1})
        fake.auto_ack = False
        out = await s2.send(s2.encode(records(3)))
        assert isinstance(out, Retry) and "no indexer acknowledgement for ackId" in out.reason
        assert s2._acks.pending == 0 and s2.stats["ack_timeouts"] == 1
        await s.close()
        await s2.close()


async def test_ack_requested_but_token_without_ack_disables_ack_mode(caplog):
    with FakeHec({"tok": HecToken(ack=False)}) as fake:
        s = create("hec", None, {"url": fake.url, "token": "tok", "ack": True})
        assert await s.send(s.encode(records(2))) == Delivered()
        assert s.ack is False and "ack mode disabled" in caplog.text
        assert await s.send(s.encode(records(2))) == Delivered()
        assert not [r for r in fake.requests if r[1].startswith("/services/collector/ack")]
        await s.close()


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI needed to make a test certificate")
async def test_tls_verification_on_by_default_and_ca_file(tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    fake = FakeHec({"tok": HecToken()})
    fake._server.socket = ctx.wrap_socket(fake._server.socket, server_side=True)
    with fake:
        url = f"https://127.0.0.1:{fake.port}"
        plain = create("hec", None, {"url": url, "token": "tok"})
        out = await plain.send(plain.encode(records(2)))
        assert isinstance(out, Retry) and "CERTIFICATE_VERIFY_FAILED" in out.reason
        assert not (await plain.healthcheck()).ok
        await plain.close()
        for tls in ({"ca_file": str(cert)}, {"verify": False}):
            raw = {"type": "splunk_hec", "url": url, "token": "tok", "tls": tls}
            settings, errors = parse_settings("hec", raw)
            assert errors == []
            s = create("hec", settings, raw)
            assert await s.send(s.encode(records(2))) == Delivered()
            assert (await s.healthcheck()).ok
            await s.close()
        assert len(fake.events) == 4
