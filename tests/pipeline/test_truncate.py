"""Oversized events are cut to fit, with a marker, keeping their structure and id."""

from __future__ import annotations

import orjson

from collector.pipeline.api import Record
from collector.pipeline.truncate import MARK_TAG, fit, fit_record


def osquery_line(cmdline: str, env: str = "") -> bytes:
    return orjson.dumps({"name": "pack_x_processes", "hostIdentifier": "web-1", "unixTime": 1767225600,
                         "columns": {"pid": "42", "cmdline": cmdline, "environ": env}, "action": "added"})


def test_small_event_is_left_alone():
    line = osquery_line("bash")
    assert fit(line, 1000, "osquery") == (line, [])


def test_longest_value_is_cut_with_a_marker_and_the_rest_kept():
    line = osquery_line("x" * 50_000, "PATH=/usr/bin")
    out, cut = fit(line, 10_000, "osquery")
    assert len(out) <= 10_000 and cut == ["columns.cmdline"]
    doc = orjson.loads(out)
    assert doc["columns"]["pid"] == "42" and doc["columns"]["environ"] == "PATH=/usr/bin"
    assert doc["columns"]["cmdline"].startswith("x" * 256)
    dropped = 50_000 - doc["columns"]["cmdline"].index("…")
    assert doc["columns"]["cmdline"].endswith(f"…[truncated {dropped} bytes]")
    assert doc[MARK_TAG] == ["columns.cmdline"]


def test_several_values_cut_until_it_fits():
    line = osquery_line("c" * 9_000, "e" * 9_000)
    out, cut = fit(line, 6_000, "osquery")
    assert len(out) <= 6_000 and sorted(cut) == ["columns.cmdline", "columns.environ"]


def test_ecs_document_gets_the_tag():
    doc = {"@timestamp": "2026-01-01T00:00:00Z", "tags": ["prod"], "process": {"command_line": "y" * 20_000}}
    out, cut = fit(orjson.dumps(doc), 5_000, "ecs")
    got = orjson.loads(out)
    assert got["tags"] == ["prod", MARK_TAG] and cut == ["process.command_line"] and len(out) <= 5_000


def test_multibyte_text_is_never_split_inside_a_character():
    out, _ = fit(osquery_line("é" * 30_000), 8_000, "osquery")
    orjson.loads(out)  # valid UTF-8 and JSON
    assert len(out) <= 8_000


def test_gives_up_when_cutting_strings_cannot_help():
    many = orjson.dumps({"columns": {f"c{i}": "v" for i in range(5_000)}})
    assert fit(many, 10_000, "osquery") is None
    assert fit(b"not json" * 2_000, 1_000, "osquery") is None


def test_record_keeps_its_id_and_metadata():
    r = Record(id="ev-1", payload=osquery_line("z" * 40_000), name="q", table="processes", host="h", time=5.0)
    got, cut = fit_record(r, 4_000, "osquery")
    assert (got.id, got.name, got.table, got.host, got.time) == ("ev-1", "q", "processes", "h", 5.0)
    assert got.size <= 4_000 and cut == ["columns.cmdline"]
