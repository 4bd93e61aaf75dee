"""osquery line shapes (collector.events) against the reference sheet §2, byte for byte and field by field."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from collector import osquery_json as oj
from collector.events import (
    Event,
    LogContext,
    batch_line,
    calendar_time,
    events_for,
    result_lines,
    snapshot_line,
    status_line,
)
from collector.model import (
    REASON_CHANGE,
    REASON_EPOCH,
    REASON_FIRST_RUN,
    REASON_SNAPSHOT,
    DiffResult,
    ScheduledQuery,
)

LEGACY = ["name", "hostIdentifier", "calendarTime", "unixTime", "epoch", "counter", "numerics"]


def ctx(**kw):
    kw.setdefault("clock", lambda: 1462228052.75)
    return LogContext(host_identifier=kw.pop("host", "host-1"), **kw)


def keys(line: bytes) -> list[str]:
    """Top-level keys in order, duplicates kept."""
    pairs = json.loads(line, object_pairs_hook=lambda p: p)
    return [k for k, _ in pairs]


# --- the sheet's example lines, byte for byte ---------------------------------------------------------------
def test_event_line_matches_osquery_unit_test_bytes():
    e = Event(name="test_query", action="added", columns={"test_column": "test_value"},
              host_identifier="unknown_test_host", unix_time=0, calendar_time="no_time", epoch=0, counter=0)
    assert e.osquery_line() == (
        b'{"name":"test_query","hostIdentifier":"unknown_test_host","calendarTime":"no_time","unixTime":0,'
        b'"epoch":0,"counter":0,"numerics":false,"columns":{"test_column":"test_value"},"action":"added"}')


def test_batch_line_matches_the_sheet_bytes():
    diff = DiffResult("foobar", added=[{"b": "2", "a": "1"}], removed=[{"c": "3"}], epoch=0, counter=0,
                      reason=REASON_FIRST_RUN)
    c = LogContext("foobaz", clock=lambda: 1408993857, calendar=lambda t: "Mon Aug 25 12:10:57 2014")
    assert batch_line(diff, c) == (
        b'{"diffResults":{"removed":[{"c":"3"}],"added":[{"a":"1","b":"2"}]},"name":"foobar",'
        b'"hostIdentifier":"foobaz","calendarTime":"Mon Aug 25 12:10:57 2014","unixTime":1408993857,'
        b'"epoch":0,"counter":0,"numerics":false}')


def test_snapshot_line_matches_the_sheet_shape_with_decorations():
    diff = DiffResult("snap", [], [], epoch=0, counter=0, reason=REASON_SNAPSHOT,
                      snapshot=[{"path": "/", "device": "/dev/sda1"}])
    c = ctx(host="h", clock=lambda: 0, calendar=lambda t: "t",
            decorations={"one": "1", "internal_60_test": "test"})
    assert snapshot_line(diff, c) == (
        b'{"snapshot":[{"device":"/dev/sda1","path":"/"}],"action":"snapshot","name":"snap",'
        b'"hostIdentifier":"h","calendarTime":"t","unixTime":0,"epoch":0,"counter":0,"numerics":false,'
        b'"decorations":{"internal_60_test":"test","one":"1"}}')


def test_calendar_time_is_asctime_of_utc():
    assert calendar_time(1462228052) == "Mon May  2 22:27:32 2016 UTC"
    assert calendar_time(1408993857) == "Mon Aug 25 19:10:57 2014 UTC"
    assert events_for(DiffResult("q", [{"a": "1"}], [], 0, 0, REASON_FIRST_RUN), ctx())[0].calendar_time \
        == "Mon May  2 22:27:32 2016 UTC"


# --- field by field -----------------------------------------------------------------------------------------
def test_event_fields_order_and_values():
    q = ScheduledQuery("pack_it_procs", "SELECT pid, name FROM processes p JOIN users u USING (uid)")
    diff = DiffResult(q.name, added=[{"pid": 2, "name": "b"}], removed=[{"pid": 1, "name": "a"}], epoch=4,
                      counter=9, reason=REASON_CHANGE)
    events = events_for(diff, ctx(decorations={"host_uuid": "U"}), q)
    assert [e.action for e in events] == ["removed", "added"]  # all removed before all added
    for e in events:
        assert keys(e.osquery_line()) == [*LEGACY, "decorations", "columns", "action"]
        doc = json.loads(e.osquery_line())
        assert (doc["name"], doc["hostIdentifier"], doc["unixTime"], doc["epoch"], doc["counter"]) == \
            ("pack_it_procs", "host-1", 1462228052, 4, 9)
        assert doc["calendarTime"] == "Mon May  2 22:27:32 2016 UTC" and doc["numerics"] is False
        assert doc["decorations"] == {"host_uuid": "U"}
        assert (e.table, e.query, e.reason) == ("processes", q, REASON_CHANGE)
    assert json.loads(events[0].osquery_line())["columns"] == {"name": "a", "pid": "1"}


def test_batch_and_snapshot_field_order():
    diff = DiffResult("q", [{"a": 1}], [], 0, 3, REASON_CHANGE)
    assert keys(batch_line(diff, ctx(decorations={"d": "x"}))) == ["diffResults", *LEGACY, "decorations"]
    snap = DiffResult("s", [], [], 0, 0, REASON_SNAPSHOT, snapshot=[{"a": 1}])
    assert keys(snapshot_line(snap, ctx())) == ["snapshot", "action", *LEGACY]


def test_columns_keys_are_sorted():
    e = events_for(DiffResult("q", [{"z": "1", "a": "2", "M": "3", "é": "4"}], [], 0, 0, REASON_FIRST_RUN),
                   ctx())[0]
    assert list(json.loads(e.osquery_line())["columns"]) == ["M", "a", "z", "é"]


# --- what is logged when ------------------------------------------------------------------------------------
def test_empty_runs():
    first = DiffResult("q", [], [], 0, 0, REASON_FIRST_RUN)
    assert json.loads(batch_line(first, ctx()))["diffResults"] == {"removed": [], "added": []}
    reset = DiffResult("q", [], [], 2, 0, REASON_EPOCH)
    assert batch_line(reset, ctx()) is not None
    assert batch_line(DiffResult("q", [], [], 0, 0, REASON_CHANGE), ctx()) is None  # empty after first
    assert batch_line(DiffResult("q", [], [], 0, 5, REASON_CHANGE), ctx()) is None
    assert batch_line(DiffResult("q", [], [], 0, 1, REASON_FIRST_RUN), ctx()) is None  # event table, no rows
    assert result_lines(first, ctx(), event_format=True) == []  # no rows, no event lines
    assert result_lines(first, ctx(), event_format=False) == [batch_line(first, ctx())]


def test_snapshot_one_line_per_run_or_per_row():
    snap = DiffResult("s", [], [], 1, 0, REASON_SNAPSHOT, snapshot=[{"a": "1"}, {"a": "2"}])
    lines = result_lines(snap, ctx())
    assert len(lines) == 1 and len(json.loads(lines[0])["snapshot"]) == 2
    per_row = result_lines(snap, ctx(snapshot_event_type=True))
    assert [json.loads(x)["columns"] for x in per_row] == [{"a": "1"}, {"a": "2"}]
    for x in per_row:
        assert keys(x) == [*LEGACY, "columns", "action"]
        assert json.loads(x)["action"] == "snapshot" and json.loads(x)["counter"] == 0
    empty = DiffResult("s", [], [], 1, 0, REASON_SNAPSHOT, snapshot=[])
    assert json.loads(result_lines(empty, ctx())[0])["snapshot"] == []  # osquery logs empty snapshots
    assert result_lines(empty, ctx(snapshot_event_type=True)) == []


def test_shape_errors():
    with pytest.raises(ValueError):
        batch_line(DiffResult("s", [], [], 0, 0, REASON_SNAPSHOT, snapshot=[]), ctx())
    with pytest.raises(ValueError):
        snapshot_line(DiffResult("q", [], [], 0, 0, REASON_CHANGE), ctx())


# --- numerics -----------------------------------------------------------------------------------------------
ROW = {"pid": 42, "load": 0.1, "ratio": 1.0, "big": 10**20 // 10**2, "name": "7", "empty": ""}


def test_numerics_off_every_value_is_a_string():
    line = events_for(DiffResult("q", [ROW], [], 0, 0, REASON_FIRST_RUN), ctx())[0].osquery_line()
    assert b'"columns":{"big":"1000000000000000000","empty":"","load":"0.10000000000000001",' \
           b'"name":"7","pid":"42","ratio":"1.0"}' in line
    assert b'"numerics":false' in line


def test_numerics_on_integers_and_doubles_are_numbers():
    c = ctx(numerics=True)
    line = events_for(DiffResult("q", [ROW], [], 0, 0, REASON_FIRST_RUN), c)[0].osquery_line()
    assert b'"columns":{"big":1000000000000000000,"empty":"","load":0.1,"name":"7","pid":42,"ratio":1.0}' \
        in line
    assert b'"numerics":true' in line
    doc = json.loads(batch_line(DiffResult("q", [ROW], [], 0, 0, REASON_FIRST_RUN), c))
    assert doc["diffResults"]["added"][0]["pid"] == 42 and doc["diffResults"]["added"][0]["name"] == "7"


def test_from_flags_reads_osquery_flags():
    c = LogContext.from_flags({"logger_numerics": True, "decorations_top_level": True, "schedule_epoch": 3,
                               "logger_snapshot_event_type": True, "log_result_reason": True}, "h")
    assert (c.numerics, c.decorations_top_level, c.epoch, c.snapshot_event_type, c.log_reason) == \
        (True, True, 3, True, True)
    d = LogContext.from_flags({}, "h")
    assert (d.numerics, d.decorations_top_level, d.epoch, d.snapshot_event_type, d.log_reason) == \
        (False, False, 0, False, False)


@pytest.mark.parametrize(("value", "expected"), [
    (0.1, b"0.1"), (1.0, b"1.0"), (-2.5, b"-2.5"), (0.0, b"0.0"), (1e20, b"100000000000000000000.0"),
    (1e21, b"1e21"), (1.5e-7, b"1.5e-7"), (1e-6, b"0.000001"), (123.456, b"123.456"),
    (1.7976931348623157e308, b"1.7976931348623157e308"), (5e-324, b"5e-324")])
def test_doubles_are_written_as_rapidjson_writes_them(value, expected):
    assert oj.double(value) == expected
    assert json.loads(expected) == value


def test_double_text_form_is_boost_lexical_cast():
    assert oj.double_text(0.1) == "0.10000000000000001"
    assert oj.double_text(2.0) == "2.0"
    assert oj.double_text(0.5) == "0.5"


# --- decorations --------------------------------------------------------------------------------------------
def test_decorations_nested_by_default_and_top_level_on_request():
    diff = DiffResult("q", [{"a": "1"}], [], 0, 0, REASON_FIRST_RUN)
    decos = {"b_deco": "2", "a_deco": "1"}
    nested = events_for(diff, ctx(decorations=decos))[0].osquery_line()
    assert b'"numerics":false,"decorations":{"a_deco":"1","b_deco":"2"},"columns"' in nested
    top = events_for(diff, ctx(decorations=decos, decorations_top_level=True))[0].osquery_line()
    assert b'"numerics":false,"a_deco":"1","b_deco":"2","columns"' in top
    assert "decorations" not in json.loads(top)
    top_batch = batch_line(diff, ctx(decorations=decos, decorations_top_level=True))
    assert keys(top_batch) == ["diffResults", *LEGACY, "a_deco", "b_deco"]


def test_top_level_decoration_named_like_a_reserved_key_is_a_second_member():
    diff = DiffResult("q", [{"a": "1"}], [], 0, 0, REASON_FIRST_RUN)
    line = events_for(diff, ctx(decorations={"name": "deco"}, decorations_top_level=True))[0].osquery_line()
    assert keys(line).count("name") == 2
    assert json.loads(line)["name"] == "deco"  # a last-wins reader sees the decoration, as osquery documents


def test_no_decorations_key_when_there_are_none():
    line = events_for(DiffResult("q", [{"a": "1"}], [], 0, 0, REASON_FIRST_RUN), ctx())[0].osquery_line()
    assert b"decorations" not in line


# --- reason (opt-in) ----------------------------------------------------------------------------------------
def test_reason_only_with_the_opt_in_flag():
    diff = DiffResult("q", [{"a": "1"}], [], 3, 0, REASON_EPOCH)
    plain = events_for(diff, ctx())[0]
    assert plain.reason == REASON_EPOCH and b"reason" not in plain.osquery_line()
    with_reason = events_for(diff, ctx(log_reason=True))[0].osquery_line()
    assert keys(with_reason)[-1] == "reason" and json.loads(with_reason)["reason"] == REASON_EPOCH
    assert json.loads(batch_line(diff, ctx(log_reason=True)))["reason"] == REASON_EPOCH


# --- escaping -----------------------------------------------------------------------------------------------
def test_json_strings_as_rapidjson_escapes_them():
    assert oj.string('a"b\\c/d') == b'"a\\"b\\\\c/d"'
    assert oj.string("\x01\x1f\n\t\r\b\f") == b'"\\u0001\\u001F\\n\\t\\r\\b\\f"'
    assert oj.string("é✓\x7f") == '"é✓\x7f"'.encode()
    assert oj.string("\udcff") == b'"\\\\xFF"'  # an undecodable byte never makes invalid UTF-8


def test_escaped_values_survive_into_lines():
    diff = DiffResult("q", [{"cmd": "a\\x0Ab"}], [], 0, 0, REASON_FIRST_RUN)
    line = events_for(diff, ctx())[0].osquery_line()
    assert b'"cmd":"a\\\\x0Ab"' in line and json.loads(line)["columns"]["cmd"] == "a\\x0Ab"


# --- event ids ----------------------------------------------------------------------------------------------
def _event(**kw):
    base = {"name": "q", "action": "added", "columns": {"pid": 1, "name": "a"}, "host_identifier": "h",
            "unix_time": 5, "calendar_time": "t", "epoch": 0, "counter": 3, "baseline": 100.0}
    base.update(kw)
    return Event(**base)


def test_event_id_is_stable_and_uuid_shaped():
    a, b = _event(), _event(unix_time=999, calendar_time="other", numerics=True, decorations={"x": "y"})
    assert a.event_id == b.event_id  # retries (re-rendered, later, other flags) keep the id
    assert _event(columns={"name": "a", "pid": 1}).event_id == a.event_id
    assert _event(columns={"name": "a", "pid": "1"}).event_id == a.event_id  # the text form is the content
    u = uuid.UUID(a.event_id)
    assert u.version == 8 and u.variant == uuid.RFC_4122 and re.fullmatch(r"[0-9a-f-]{36}", a.event_id)


@pytest.mark.parametrize("change", [
    {"host_identifier": "other"}, {"name": "q2"}, {"columns": {"pid": 2, "name": "a"}}, {"epoch": 1},
    {"action": "removed"}, {"counter": 4}, {"baseline": 101.0}, {"occurrence": 1}])
def test_event_id_changes_with_its_content(change):
    assert _event(**change).event_id != _event().event_id


def test_event_ids_are_unique_within_a_diff_even_for_duplicate_rows():
    diff = DiffResult("q", [{"a": "1"}, {"a": "1"}, {"a": "2"}], [{"a": "1"}], 0, 1, REASON_CHANGE,
                      baseline=5.0)
    events = events_for(diff, ctx())
    assert len({e.event_id for e in events}) == 4
    assert [e.occurrence for e in events] == [0, 0, 1, 0]
    again = events_for(diff, ctx(clock=lambda: 1))  # a replay later: same ids
    assert [e.event_id for e in again] == [e.event_id for e in events]


def test_event_ids_across_restart_come_from_persisted_state(tmp_path):
    from collector.diff import DiffStore
    from collector.model import QueryRun
    from collector.state import State

    def history(path):
        s = State(path)
        store = DiffStore(s, 0)
        q = ScheduledQuery("q", "SELECT pid FROM processes")
        store.apply(QueryRun(q, ["pid"], [{"pid": 1}], started=1000.0))
        s.close()
        s = State(path)  # restart between the runs
        diff = DiffStore(s, 0).apply(QueryRun(q, ["pid"], [{"pid": 2}], started=2000.0))
        s.close()
        return [e.event_id for e in events_for(diff, ctx())]

    assert history(tmp_path / "a") == history(tmp_path / "b")


# --- status lines -------------------------------------------------------------------------------------------
def test_status_line_shape():
    c = ctx(host="h", calendar=lambda t: "cal", decorations={"d": "1"})
    line = status_line(1, "watchdog: memory limit", "watchdog.py", 88, c, unix_time=1700000000.9)
    assert keys(line) == ["hostIdentifier", "calendarTime", "unixTime", "severity", "filename", "line",
                          "message", "version", "decorations"]
    doc = json.loads(line)
    assert (doc["unixTime"], doc["severity"], doc["line"]) == (1700000000, 1, 88)
    assert doc["message"] == "watchdog: memory limit" and doc["decorations"] == {"d": "1"}
    import collector
    assert doc["version"] == collector.__version__
    top = status_line(0, "m", "f", 1, ctx(decorations={"d": "1"}, decorations_top_level=True))
    assert keys(top)[-1] == "d"
    assert json.loads(status_line(2, "a\nb", "f", 1, ctx()))["message"] == "a\nb"
