"""Envelope bytes, exactly: time with milliseconds, host/source/sourcetype/index, flat fields, gzip, size cap."""

from __future__ import annotations

import gzip
import json

import pytest

from collector.errors import ConfigError
from collector.pipeline.api import Record, TooLarge
from shippers.splunk_hec import BATCH, KEYS, create, validate
from shippers.splunk_hec.encode import compress

LINE = b'{"name":"q1","hostIdentifier":"web-1","unixTime":1795773600,"columns":{"pid":"42"},"action":"added"}'


def shipper(**kw):
    raw = {"type": "splunk_hec", "url": "http://127.0.0.1:9/services/collector/event", "token": "t", **kw}
    return create("hec", None, raw)


def rec(i: int = 0, **kw) -> Record:
    base = {"id": f"id-{i}", "payload": LINE, "name": "q1", "time": 1795773600.25, "host": "web-1"}
    return Record(**{**base, **kw})


def raw_body(s, batch) -> bytes:
    return s.encode(batch).body.raw


def test_envelope_bytes_exact_gzip_default():
    s = shipper()
    req = s.encode([rec(0), rec(1, time=1795773600.0, route={"index": "idx2"})])
    assert req.body.gzip  # on by default; send() compresses (what the server got: test_classify, fake HEC)
    body = req.body.raw
    wire = compress(body, 1)
    assert wire[:2] == b"\x1f\x8b" and gzip.decompress(wire) == body
    assert req.size == len(body) == req.body.raw_size
    assert body == (
        b'{"time":1795773600.250,"host":"web-1","source":"quarry","sourcetype":"osquery:results",'
        b'"fields":{"quarry_event_id":"id-0","query_name":"q1","quarry_kind":"result"},"event":' + LINE + b"}\n"
        b'{"time":1795773600.000,"host":"web-1","source":"quarry","sourcetype":"osquery:results","index":"idx2",'
        b'"fields":{"quarry_event_id":"id-1","query_name":"q1","quarry_kind":"result"},"event":' + LINE + b"}")
    for line, i in zip(body.split(b"\n"), range(2)):
        env = json.loads(line)
        assert env["event"] == json.loads(LINE)
        assert env["fields"]["quarry_event_id"] == f"id-{i}"


def test_options_status_sourcetype_static_fields_no_gzip():
    s = shipper(gzip=False, host="fixed", source="osq", sourcetype="st", index="main",
                fields={"env": "prod", "dc": 3})
    body = raw_body(s, [rec(0, kind="status", name="quarry.status"), rec(1, kind="snapshot", time=0.0),
                        rec(2, route={"sourcetype": "custom"})])
    envs = [json.loads(x) for x in body.split(b"\n")]
    assert [e["sourcetype"] for e in envs] == ["osquery:status", "st", "custom"]
    assert {e["host"] for e in envs} == {"fixed"} and {e["source"] for e in envs} == {"osq"}
    assert {e["index"] for e in envs} == {"main"}
    assert "time" not in envs[1]  # no event time: HEC uses arrival time
    assert envs[0]["fields"] == {"quarry_event_id": "id-0", "query_name": "quarry.status",
                                 "quarry_kind": "status", "env": "prod", "dc": "3"}
    assert body.startswith(b'{"time":1795773600.250,')


def test_time_is_fixed_point_never_scientific():
    s = shipper(gzip=False)
    for t, want in [(1e9, b'"time":1000000000.000'), (1795773600.1239, b'"time":1795773600.124'),
                    (1.5, b'"time":1.500')]:
        assert raw_body(s, [rec(time=t)]).startswith(b"{" + want + b",")


def test_ecs_format_sourcetype_and_non_object_payload_kept_as_string():
    s = create("hec", {"format": "ecs"}, {"url": "https://h:8088", "token": "t", "gzip": False})
    body = raw_body(s, [rec(0, payload=b'{"@timestamp":"x"}'), rec(1, payload=b"not json \xff"),
                        rec(2, payload=b"[1,2]")])
    envs = [json.loads(x) for x in body.split(b"\n")]
    assert envs[0]["sourcetype"] == "quarry:ecs" and envs[0]["event"] == {"@timestamp": "x"}
    assert envs[1]["event"] == "not json \ufffd" and envs[2]["event"] == "[1,2]"
    assert s.stats["not_objects"] == 2


async def test_request_over_max_is_too_large_without_network():
    s = shipper(max_request_bytes=1024)
    small = s.encode([rec(0)])
    assert small.body.too_large is None
    big = s.encode([rec(i) for i in range(10)])
    assert big.body.too_large and "max_request_bytes (1024)" in big.body.too_large
    out = await s.send(big)  # the URL is unreachable: TooLarge comes before any connection
    assert isinstance(out, TooLarge)
    await s.close()


def test_validate_and_create_errors():
    assert validate({"url": "http://h:8088", "token": "t"}) == []
    errs = validate({"url": "h:8088", "token": "t", "token_env": "X", "gzip": "yes", "fields": {"a": {"b": 1}},
                     "channel": "nope", "gzip_level": 11, "ack_timeout_s": True})
    assert any(e.startswith("url:") for e in errs)
    assert any(e.startswith("token: exactly one") for e in errs)
    for key in ("gzip:", "fields:", "channel:", "gzip_level:", "ack_timeout_s:"):
        assert any(e.startswith(key) for e in errs), key
    assert validate({"url": "http://h", "token_file": "/nonexistent/tok"}) == ["token_file: no such file: /nonexistent/tok"]
    with pytest.raises(ConfigError, match=r"shippers\.main\.token_env: environment variable QUARRY_NO_SUCH_VAR"):
        create("main", None, {"url": "http://h", "token_env": "QUARRY_NO_SUCH_VAR"})
    assert "token_env" in KEYS and BATCH["max_events"] == 500


def test_token_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("QUARRY_HEC_TOKEN", "from-env")
    assert create("a", None, {"url": "http://h", "token_env": "QUARRY_HEC_TOKEN"})._token == "from-env"
    f = tmp_path / "tok"
    f.write_text("from-file\n")
    s = create("a", None, {"url": "http://h", "token_file": str(f)})
    assert s._headers["Authorization"] == "Splunk from-file"


def test_channel_persisted_in_state_dir(tmp_path):
    a = create("a", None, {"url": "http://h", "token": "t", "state_dir": str(tmp_path)})
    b = create("a", None, {"url": "http://h", "token": "t", "state_dir": str(tmp_path)})
    c = create("a", None, {"url": "http://h", "token": "t"})
    assert a.channel == b.channel != c.channel and a.channel_source == str(tmp_path / "hec-channel-a")
    assert (tmp_path / "hec-channel-a").read_text().strip() == a.channel
    fixed = "0f2a3b4c-1111-2222-3333-444455556666"
    assert create("a", None, {"url": "http://h", "token": "t", "channel": fixed}).channel == fixed


def test_pipeline_registry_validates_keys():
    from collector.pipeline.config import parse_settings, validate_shipper

    assert validate_shipper("s", {"type": "splunk_hec", "url": "http://h:8088", "token": "t"}) == []
    errs = validate_shipper("s", {"type": "splunk_hec", "url": "http://h:8088", "token": "t", "bogus": 1})
    assert errs == ["shippers.s.bogus: unknown key for a splunk_hec shipper"]
    settings, errs = parse_settings("s", {"type": "splunk_hec"})
    assert settings.batch.max_events == 500 and settings.batch.max_bytes == 800_000
