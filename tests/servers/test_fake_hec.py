"""Unit tests of the fake Splunk HEC server (no real server involved)."""

from __future__ import annotations

import gzip
import json
import uuid

import httpx
import pytest

from tests.servers.fake_hec import HEC_CODES, FakeHec, HecToken

OK, ACKTOK, OFF, IDX, QTOK = "tok-ok", "tok-ack", "tok-off", "tok-idx", "tok-query"
CH = "11111111-2222-3333-4444-555555555555"


@pytest.fixture
def hec():
    tokens = {
        OK: HecToken(),
        ACKTOK: HecToken(ack=True),
        OFF: HecToken(enabled=False),
        IDX: HecToken(indexes={"main"}),
        QTOK: HecToken(query_auth=True),
    }
    with FakeHec(tokens) as h:
        yield h


@pytest.fixture
def client(hec):
    with httpx.Client(base_url=hec.url, timeout=10) as c:
        yield c


def post(client, body, token=OK, path="/services/collector/event", headers=None, **kw):
    h = {"Authorization": f"Splunk {token}"} if token else {}
    h.update(headers or {})
    if not isinstance(body, (bytes, str)):
        body = "".join(json.dumps(e) for e in body)
    return client.post(path, content=body, headers=h, **kw)


# Splunk's table (shared/reference/shipping.md 2.6): code -> HTTP status
EXPECTED_STATUS = {0: 200, 1: 403, 2: 401, 3: 401, 4: 403, 5: 400, 6: 400, 7: 400, 8: 500, 9: 503, 10: 400,
                   11: 400, 12: 400, 13: 400, 14: 400, 15: 400, 16: 400, 17: 200, 18: 503, 19: 503, 20: 503,
                   21: 400, 22: 400}


def test_code_table_matches_reference():
    assert {c: s for c, (s, _) in HEC_CODES.items()} == EXPECTED_STATUS


def _trigger(code, hec, client):
    ev = [{"event": "x"}]
    health = "/services/collector/health"
    match code:
        case 0: return post(client, ev)
        case 1: return post(client, ev, token=OFF)
        case 2: return post(client, ev, token=None)
        case 3: return post(client, ev, token=None, headers={"Authorization": OK})  # missing "Splunk "
        case 4: return post(client, ev, token="nope")
        case 5: return post(client, b"")
        case 6: return post(client, b'{"event": "a"}{"event": ')
        case 7: return post(client, [{"event": "x", "index": "secret"}], token=IDX)
        case 8:
            hec.fail_next(1, code=8)
            return post(client, ev)
        case 9:
            hec.busy = True
            return post(client, ev)
        case 10: return post(client, ev, token=ACKTOK)
        case 11: return post(client, ev, token=ACKTOK, headers={"X-Splunk-Request-Channel": "not-a-guid"})
        case 12: return post(client, [{"time": 1}])
        case 13: return post(client, [{"event": ""}])
        case 14: return post(client, {"acks": [0]}.__repr__().replace("'", '"'), path="/services/collector/ack",
                             headers={"X-Splunk-Request-Channel": CH})
        case 15: return post(client, [{"event": "x", "fields": {"nested": {"a": 1}}}])
        case 16: return client.post("/services/collector/event", params={"token": OK}, content=b'{"event":"x"}')
        case 17: return client.get(health)
        case 18:
            hec.busy = True
            return client.get(health)
        case 19:
            hec.ack_unavailable = True
            return client.get(health)
        case 20:
            hec.busy = hec.ack_unavailable = True
            return client.get(health)
        case 21: return client.get(health, headers={"Authorization": "Splunk nope"})
        case 22: return client.get(health, headers={"Authorization": f"Splunk {OFF}"})


@pytest.mark.parametrize("code", sorted(EXPECTED_STATUS))
def test_each_code_with_its_http_status(code, hec, client):
    r = _trigger(code, hec, client)
    assert r.status_code == EXPECTED_STATUS[code]
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["code"] == code
    assert body["text"] == HEC_CODES[code][1]


def test_query_string_token_when_allowed(client, hec):
    r = client.post("/services/collector/event", params={"token": QTOK}, content=b'{"event":"q"}')
    assert r.json() == {"text": "Success", "code": 0}
    assert hec.events[-1].envelope == {"event": "q"}


def test_basic_auth_with_token_as_password(client, hec):
    r = client.post("/services/collector/event", auth=("x", OK), content=b'{"event":"b"}')
    assert r.status_code == 200 and hec.events[-1].token == OK


def test_batch_gzip_and_content(client, hec):
    events = [{"time": 1712345678.5 + i, "host": "h", "source": "s", "sourcetype": "st", "fields": {"n": str(i)},
               "event": {"i": i}} for i in range(50)]
    body = gzip.compress("\n".join(json.dumps(e) for e in events).encode())
    r = post(client, body, headers={"Content-Encoding": "gzip"})
    assert r.status_code == 200 and r.json() == {"text": "Success", "code": 0}
    assert [e.envelope for e in hec.events] == events


def test_unsupported_encoding_is_415(client):
    assert post(client, b'{"event":"x"}', headers={"Content-Encoding": "br"}).status_code == 415


def test_events_before_the_bad_one_are_kept(client, hec):
    r = post(client, [{"event": "a"}, {"event": "b"}, {"fields": {}}, {"event": "d"}])
    assert r.status_code == 400
    assert r.json() == {"text": "Event field is required", "code": 12, "invalid-event-number": 2}
    assert [e.envelope["event"] for e in hec.events] == ["a", "b"]


def test_exponent_time_is_rejected(client):
    r = post(client, b'{"event": "x", "time": "1.7E9"}')
    assert r.json()["code"] == 6


def test_raw_endpoint_needs_channel_and_splits_lines(client, hec):
    r = post(client, b"l1\nl2\n", path="/services/collector/raw")
    assert r.json()["code"] == 10
    r = post(client, b"l1\nl2\n", path="/services/collector/raw", params={"channel": CH, "sourcetype": "st"})
    assert r.json()["code"] == 0
    assert [e.envelope for e in hec.events] == [{"event": "l1", "sourcetype": "st"}, {"event": "l2", "sourcetype": "st"}]


def test_ack_flow(client, hec):
    hec.auto_ack = False
    ch = str(uuid.uuid4())
    hdr = {"X-Splunk-Request-Channel": ch}
    ids = [post(client, [{"event": i}], token=ACKTOK, headers=hdr).json()["ackId"] for i in range(3)]
    assert ids == [0, 1, 2]
    # another channel numbers its own ids
    other = post(client, [{"event": "o"}], token=ACKTOK, headers={"X-Splunk-Request-Channel": CH}).json()
    assert other == {"text": "Success", "code": 0, "ackId": 0}

    def query(acks):
        r = client.post("/services/collector/ack", params={"channel": ch}, json={"acks": acks},
                        headers={"Authorization": f"Splunk {ACKTOK}"})
        assert r.status_code == 200
        return r.json()

    assert query([0, 1, 2]) == {"acks": {"0": False, "1": False, "2": False}}
    hec.index_pending(ch)
    assert query([0, 2]) == {"acks": {"0": True, "2": True}}
    # reported once, then forgotten; id 1 still reported once
    assert query([0, 1, 2]) == {"acks": {"0": False, "1": True, "2": False}}


def test_ack_query_errors(client):
    auth = {"Authorization": f"Splunk {ACKTOK}"}
    assert client.post("/services/collector/ack", json={"acks": [0]}, headers=auth).json()["code"] == 10
    r = client.post("/services/collector/ack", params={"channel": CH}, json={"nope": 1}, headers=auth)
    assert r.json()["code"] == 6


def test_no_ack_id_without_ack_token(client):
    r = post(client, [{"event": 1}], headers={"X-Splunk-Request-Channel": CH})
    assert r.json() == {"text": "Success", "code": 0}


def test_busy_then_recovers(client, hec):
    hec.busy = True
    r = post(client, [{"event": "x"}])
    assert r.status_code == 503 and r.json() == {"text": "Server is busy", "code": 9}
    assert r.headers["retry-after"] == "1"
    assert hec.events == []
    hec.busy = False
    assert post(client, [{"event": "x"}]).status_code == 200
    hec.fail_next(2, code=9)
    assert [post(client, [{"event": i}]).status_code for i in range(3)] == [503, 503, 200]
    assert [e.envelope["event"] for e in hec.events] == ["x", 2]
