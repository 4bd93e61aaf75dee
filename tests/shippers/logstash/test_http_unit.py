"""HTTP mode against a stdlib HTTP server: bodies, headers, auth, and the status classification."""

from __future__ import annotations

import base64
import gzip
import json
import socket

import pytest

from collector.pipeline.api import Delivered, Partial, Record, Rejected, Retry, TooLarge
from shippers.logstash import HttpShipper, create
from shippers.logstash.http import classify

from .fakes import FakeHttp


def recs(n: int) -> list[Record]:
    return [Record(id=f"id-{i}", payload=json.dumps({"i": i}).encode(), name="q", time=2.0) for i in range(n)]


def shipper(url: str, **kw) -> HttpShipper:
    s = create("lh", None, {"mode": "http", "url": url, "timeout_s": 2, **kw})
    assert isinstance(s, HttpShipper)
    return s


async def test_json_array_body_and_metadata():
    with FakeHttp([(200, {}, b"ok")]) as srv:
        s = shipper(srv.url + "quarry")
        assert (await s.healthcheck()).ok
        assert await s.send(s.encode(recs(3))) == Delivered()
        await s.close()
    path, headers, body = srv.requests[0]
    assert path == "/quarry" and headers["Content-Type"] == "application/json"
    evs = json.loads(body)
    assert [e["i"] for e in evs] == [0, 1, 2]
    assert evs[0]["@metadata"]["_id"] == "id-0" and evs[0]["@timestamp"] == "1970-01-01T00:00:02.000Z"


async def test_ndjson_gzip_basic_auth_headers():
    with FakeHttp([(200, {}, b"")]) as srv:
        s = shipper(srv.url, body="ndjson", gzip=True, user="u", password="p", headers={"X-Env": "prod"})
        assert await s.send(s.encode(recs(2))) == Delivered()
        await s.close()
    _, headers, body = srv.requests[0]
    assert headers["Content-Type"] == "application/x-ndjson" and headers["Content-Encoding"] == "gzip"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode()
    assert headers["X-Env"] == "prod"
    assert [json.loads(x)["i"] for x in gzip.decompress(body).splitlines()] == [0, 1]


@pytest.mark.parametrize("status,kind", [(200, Delivered), (204, Delivered), (429, Retry), (503, Retry),
                                         (500, Retry), (408, Retry), (413, TooLarge), (400, Rejected),
                                         (401, Rejected), (404, Rejected), (501, Rejected)])
async def test_status_classification(status, kind):
    with FakeHttp([(status, {"Retry-After": "7"}, b"busy")]) as srv:
        s = shipper(srv.url)
        out = await s.send(s.encode(recs(1)))
        await s.close()
    assert isinstance(out, kind)
    if kind is Retry:
        assert out.reason == f"HTTP {status}: busy" and out.after == 7.0
    if kind is Rejected:
        assert out.reason == f"HTTP {status}: busy"


def test_classify_without_retry_after():
    assert classify(429, "") == Retry("HTTP 429", None)
    assert classify(503, "x", "Wed, 21 Oct 2026 07:28:00 GMT") == Retry("HTTP 503: x", None)


async def test_connect_error_is_retry():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = shipper(f"http://127.0.0.1:{port}/")
    assert not (await s.healthcheck()).ok
    out = await s.send(s.encode(recs(1)))
    await s.close()
    assert isinstance(out, Retry) and out.reason.startswith("connection error: ConnectError")


async def test_bad_payload_merged_with_answer():
    batch = recs(2) + [Record(id="b", payload=b"oops", name="q")]
    with FakeHttp([(200, {}, b""), (503, {}, b"")]) as srv:
        s = shipper(srv.url)
        assert await s.send(s.encode(batch)) == Partial(rejected=((2, "payload is not a JSON object"),))
        out = await s.send(s.encode(batch))
        await s.close()
    assert out == Partial(retry=(0, 1), rejected=((2, "payload is not a JSON object"),), retry_reason="HTTP 503")
