"""Lumberjack v2 frames byte for byte, ACK parsing, and the Logstash event wrapping (@metadata splice)."""

from __future__ import annotations

import json
import zlib

import pytest

from collector import __version__
from collector.pipeline.api import Record
from shippers.logstash.encode import encode_events, wrap
from shippers.logstash.protocol import (
    ProtocolError,
    compressed_frame,
    encode_window,
    json_frame,
    parse_ack,
    window_frame,
)


def test_window_frame_bytes():
    assert window_frame(3) == b"2W\x00\x00\x00\x03"
    assert window_frame(0x01020304) == b"2W\x01\x02\x03\x04"


def test_json_frame_bytes():
    assert json_frame(1, b'{"a":1}') == b"2J\x00\x00\x00\x01\x00\x00\x00\x07" + b'{"a":1}'


def test_window_plain_bytes():
    got = encode_window([b"{}", b'{"b":2}'])
    assert got == (b"2W\x00\x00\x00\x02" + b"2J\x00\x00\x00\x01\x00\x00\x00\x02{}"
                   + b"2J\x00\x00\x00\x02\x00\x00\x00\x07" + b'{"b":2}')


@pytest.mark.parametrize("level", [1, 6, 9])
def test_window_compressed_bytes(level):
    inner = b"2J\x00\x00\x00\x01\x00\x00\x00\x02{}" + b"2J\x00\x00\x00\x02\x00\x00\x00\x07" + b'{"b":2}'
    z = zlib.compress(inner, level)
    expected = b"2W\x00\x00\x00\x02" + b"2C" + len(z).to_bytes(4, "big") + z
    assert encode_window([b"{}", b'{"b":2}'], level) == expected
    assert compressed_frame(inner, level) == expected[6:]
    assert zlib.decompress(expected[12:]) == inner


def test_parse_ack():
    assert parse_ack(b"2A\x00\x00\x01\xf4") == 500
    assert parse_ack(b"2A\x00\x00\x00\x00") == 0
    with pytest.raises(ProtocolError):
        parse_ack(b"1A\x00\x00\x00\x01")
    with pytest.raises(ProtocolError):
        parse_ack(b"2W\x00\x00\x00\x01")
    with pytest.raises(ProtocolError):
        parse_ack(b"2A\x00")


def test_wrap_osquery_adds_metadata_and_timestamp():
    r = Record(id='e"1', payload=b'{"name":"q","columns":{"a":"1"}}', name="q", time=1767225600.123)
    ev = json.loads(wrap(r, "quarry", True))
    assert ev == {"@metadata": {"beat": "quarry", "type": "_doc", "version": __version__, "_id": 'e"1'},
                  "@timestamp": "2026-01-01T00:00:00.123Z", "name": "q", "columns": {"a": "1"}}
    assert json.loads(wrap(Record(id="x", payload=b"{}", name="q"), "b", True)) == {
        "@metadata": {"beat": "b", "type": "_doc", "version": __version__, "_id": "x"}}


def test_wrap_ecs_keeps_its_timestamp_and_rejects_non_objects():
    r = Record(id="x", payload=b'{"@timestamp":"2026-01-01T00:00:00Z","event":{"id":"x"}}', name="q", time=5.0)
    enc = encode_events([r, Record(id="y", payload=b"[1]", name="q")], "quarry", "ecs")
    ev = json.loads(enc.events[0])
    assert ev["@timestamp"] == "2026-01-01T00:00:00Z" and ev["@metadata"]["_id"] == "x"
    assert enc.index == [0] and enc.rejected == [(1, "payload is not a JSON object")]
