"""Smoke tests: Splunk HEC events into the OpenTelemetry Collector receiver, read back from its file."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

pytestmark = pytest.mark.realserver
N = 10_000
BATCH = 200


def _event(i: int) -> dict:
    return {
        "time": 1_750_000_000 + i,  # whole seconds: exact through the float64 nanosecond conversion
        "host": "web01",
        "source": "quarry",
        "sourcetype": "osquery:result",
        "index": "endpoint",
        "fields": {"query_name": "processes", "n": str(i)},
        "event": {"seq": str(i), "action": "added", "columns": {"pid": str(1000 + i), "name": f"proc-{i}"}},
    }


async def test_hec_10k_batched_gzip(hec_target):
    async with httpx.AsyncClient(timeout=30) as client:
        for start in range(0, N, BATCH):
            body = "\n".join(json.dumps(_event(i)) for i in range(start, start + BATCH)).encode()
            r = await client.post(hec_target.event_url, content=gzip.compress(body),
                                  headers={**hec_target.headers, "Content-Encoding": "gzip"})
            assert r.status_code == 200, r.text
            assert r.json() == {"text": "Success", "code": 0}
    got = hec_target.read_events(expected=N, timeout=60)
    assert len(got) == N
    got.sort(key=lambda e: int(e["event"]["seq"]))
    for i, e in enumerate(got):
        src = _event(i)
        assert e["event"] == src["event"]
        assert e["fields"] == src["fields"]
        assert e["time"] == src["time"]
        assert (e["host"], e["source"], e["sourcetype"], e["index"]) == ("web01", "quarry", "osquery:result", "endpoint")


async def test_hec_rejects_unknown_token(hec_target):
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(hec_target.event_url, content=b'{"event":"x"}',
                              headers={"Authorization": "Splunk not-a-token"})
    # the OTel receiver answers 401 in plain text (Splunk itself: 403 {"text":"Invalid token","code":4})
    assert r.status_code == 401
    assert hec_target.read_events() == []


async def test_hec_error_codes_the_receiver_does_reproduce(hec_target):
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(hec_target.event_url, content=b'{"fields":{}}', headers=hec_target.headers)
        assert r.status_code == 400 and json.loads(r.text)["code"] == 12
        r = await client.post(hec_target.event_url, content=b'{"event":""}', headers=hec_target.headers)
        assert r.status_code == 400 and json.loads(r.text)["code"] == 13
        r = await client.post(hec_target.event_url, content=b"{nope", headers=hec_target.headers)
        assert r.status_code == 400 and json.loads(r.text)["code"] == 6
