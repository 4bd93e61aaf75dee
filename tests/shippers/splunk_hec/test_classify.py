"""Every row of the HEC status table (shipping.md §2.6) → the shipper's Outcome, through a real HTTP round
trip: the protocol-faithful fake HEC for the HEC codes, canned httpx responses for plain HTTP statuses and
transport errors, and classify() directly for the reply shapes."""

from __future__ import annotations

import httpx
import pytest

from collector.pipeline.api import Delivered, Partial, Rejected, Retry, TooLarge
from shippers.splunk_hec import create
from shippers.splunk_hec.classify import classify, retry_after
from tests.servers.fake_hec import HEC_CODES, FakeHec, HecToken

from .test_encode import rec

TOKEN = "tok"
TRANSIENT = {8, 9, 18, 19, 20}
PERMANENT = {1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 21, 22}


@pytest.fixture
def fake():
    with FakeHec({TOKEN: HecToken()}) as h:
        yield h


async def ship_to(url: str, batch, **kw):
    s = create("hec", None, {"url": url, "token": kw.pop("token", TOKEN), **kw})
    try:
        return await s.send(s.encode(batch))
    finally:
        await s.close()


@pytest.mark.parametrize("code", sorted(TRANSIENT | PERMANENT))
async def test_every_hec_code_through_the_fake(fake, code):
    fake.fail_next(1, code=code)
    out = await ship_to(fake.url, [rec(0), rec(1)])
    status, text = HEC_CODES[code]
    if code in TRANSIENT:
        # the fake sends Retry-After: 1 with every 503, nothing with 500
        assert out == Retry(f"HTTP {status} code {code}: {text}", 1.0 if status == 503 else None)
    else:
        assert isinstance(out, Rejected), out
        assert out.reason == f"HTTP {status} code {code}: {text}"
    assert fake.events == []


async def test_success_and_events_received(fake):
    big = [rec(i, payload=b'{"pad":"' + b"x" * 40_000 + b'"}') for i in range(2, 4)]  # compressed in a thread
    assert isinstance(await ship_to(fake.url, [rec(0), rec(1)]), Delivered)
    assert isinstance(await ship_to(fake.url, big), Delivered)
    assert [e.envelope["event"]["pad"][:3] for e in fake.events[2:]] == ["xxx", "xxx"]
    del fake.events[2:]
    assert [e.envelope["fields"]["quarry_event_id"] for e in fake.events] == ["id-0", "id-1"]
    assert all(e.channel for e in fake.events)


async def test_bad_token_and_disabled_token(fake):
    fake.tokens["off"] = HecToken(enabled=False)
    out = await ship_to(fake.url, [rec(0)], token="wrong")
    assert out == Rejected("HTTP 403 code 4: Invalid token")
    assert await ship_to(fake.url, [rec(0)], token="off") == Rejected("HTTP 403 code 1: Token disabled")


async def test_busy_503_is_retry_with_retry_after(fake):
    fake.busy = True
    out = await ship_to(fake.url, [rec(0)])
    assert out == Retry("HTTP 503 code 9: Server is busy", 1.0)
    fake.busy = False
    assert isinstance(await ship_to(fake.url, [rec(0)]), Delivered)
    assert len(fake.events) == 1


async def test_413_from_fake_is_too_large():
    with FakeHec({TOKEN: HecToken()}, max_content_length=100) as h:
        out = await ship_to(h.url, [rec(i) for i in range(5)])
    assert isinstance(out, TooLarge) and "HTTP 413" in out.reason


async def test_invalid_event_number_code6_partial(fake):
    # event 2 with a time in scientific notation (HEC refuses it with code 6); Splunk (and the fake) keep 0 and 1.
    # The encoder never writes such a time: the body is edited after encode().
    s = create("hec", None, {"url": fake.url, "token": TOKEN, "gzip": False})
    req = s.encode([rec(i) for i in range(4)])
    lines = req.body.raw.split(b"\n")
    assert lines[2].startswith(b'{"time":1795773600.250,')
    lines[2] = b'{"time":"1.7E9",' + lines[2][len(b'{"time":1795773600.250,'):]
    from dataclasses import replace
    req.body = replace(req.body, raw=b"\n".join(lines))
    out = await s.send(req)
    await s.close()
    assert isinstance(out, Partial)
    assert out.retry == (3,) and [i for i, _ in out.rejected] == [2]
    assert out.rejected[0][1] == "HTTP 400 code 6: Invalid data format (invalid-event-number 2)"
    assert [e.envelope["fields"]["quarry_event_id"] for e in fake.events] == ["id-0", "id-1"]


def _mock(status: int, body: bytes = b"", headers: dict[str, str] | None = None, exc: Exception | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        if exc is not None:
            raise exc
        return httpx.Response(status, content=body, headers=headers or {})
    return httpx.MockTransport(handler)


async def send_mock(transport: httpx.MockTransport, n: int = 1):
    s = create("hec", None, {"url": "http://hec.test:8088", "token": TOKEN})
    s._client = httpx.AsyncClient(base_url="http://hec.test:8088", transport=transport)
    try:
        return await s.send(s.encode([rec(i) for i in range(n)]))
    finally:
        await s.close()


@pytest.mark.parametrize("status,want", [
    (408, Retry), (429, Retry), (500, Retry), (502, Retry), (503, Retry), (504, Retry), (599, Retry),
    (501, Rejected), (400, Rejected), (401, Rejected), (403, Rejected), (404, Rejected), (415, Rejected),
    (413, TooLarge), (200, Delivered), (204, Delivered), (301, Retry),
])
async def test_plain_http_statuses(status, want):
    out = await send_mock(_mock(status, b"proxy says no" if status >= 300 else b""))
    assert isinstance(out, want), out
    if want is Rejected:
        assert out.reason == f"HTTP {status}: proxy says no"


async def test_otel_plain_text_401_is_rejected_with_text():
    body = b"provided authorization does not match expected scheme or token"
    assert await send_mock(_mock(401, body)) == Rejected(f"HTTP 401: {body.decode()}")


async def test_retry_after_header_honoured():
    out = await send_mock(_mock(429, b"", {"Retry-After": "7"}))
    assert out == Retry("HTTP 429", 7.0)
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None and retry_after({}) is None


@pytest.mark.parametrize("exc", [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"),
                                 httpx.ConnectTimeout("slow"), httpx.RemoteProtocolError("closed")])
async def test_transport_errors_retry(exc):
    out = await send_mock(_mock(0, exc=exc))
    assert isinstance(out, Retry) and type(exc).__name__ in out.reason


async def test_connection_refused_real_socket():
    out = await ship_to("http://127.0.0.1:9", [rec(0)])  # discard port: nothing listens
    assert isinstance(out, Retry) and "ConnectError" in out.reason


def test_classify_reply_shapes():
    assert classify(200, {}, {"text": "Success", "code": 0}, 3) == Delivered()
    # code 15 with an index (the OTel receiver's shape): the whole request was refused, so every other event
    # is resent; nothing is claimed delivered
    out = classify(400, {}, {"text": "Error in handling indexed fields", "code": 15, "invalid-event-number": 1}, 3)
    assert isinstance(out, Partial) and out.retry == (0, 2) and [i for i, _ in out.rejected] == [1]
    # code 6 at index 0 of one event: rejected alone; index out of range: the whole request
    assert classify(400, {}, {"code": 6, "text": "x", "invalid-event-number": 0}, 1) == Partial(
        retry=(), rejected=((0, "HTTP 400 code 6: x (invalid-event-number 0)"),),
        retry_reason="resent after event 0 of the request was refused: HTTP 400 code 6: x (invalid-event-number 0)")
    assert isinstance(classify(400, {}, {"code": 6, "text": "x", "invalid-event-number": 5}, 2), Rejected)
    assert isinstance(classify(400, {}, {"code": 6, "text": "x"}, 2), Rejected)
    # a transient HEC code wins over the HTTP status
    assert isinstance(classify(400, {}, {"code": 9, "text": "Server is busy"}, 1), Retry)


async def test_ack_disabled_code14_on_ack_endpoint_turns_ack_off(caplog):
    # A server that hands out ackIds but then says "ACK is disabled" on the ack endpoint (code 14).
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/services/collector/ack":
            return httpx.Response(400, json={"text": "ACK is disabled", "code": 14})
        assert request.headers["X-Splunk-Request-Channel"] and request.headers["Content-Encoding"] == "gzip"
        return httpx.Response(200, json={"text": "Success", "code": 0, "ackId": 0})

    s = create("hec", None, {"url": "http://hec.test:8088", "token": TOKEN, "ack": True, "ack_timeout_s": 5})
    s._client = httpx.AsyncClient(base_url="http://hec.test:8088", transport=httpx.MockTransport(handler))
    assert await s.send(s.encode([rec(0)])) == Delivered()
    assert s.ack is False and "code 14: ACK is disabled; ack mode disabled" in caplog.text
    await s.close()
