"""Differential results (collector.diff) against the reference sheet §3, including restarts."""

from __future__ import annotations

import itertools

import pytest

from collector.diff import DiffStore, is_event_query, multiset_diff, normalize, referenced_tables
from collector.model import (
    REASON_CHANGE,
    REASON_EPOCH,
    REASON_FIRST_RUN,
    REASON_SNAPSHOT,
    REASON_SQL_CHANGED,
    REASON_STATE_LOST,
    QueryRun,
    ScheduledQuery,
)
from collector.state import State

_clock = itertools.count(1_700_000_000)

Q = ScheduledQuery("pack_test_procs", "SELECT pid, name FROM processes", interval=60)


def run(rows, query=Q, **kw):
    return QueryRun(query=query, columns=sorted({k for r in rows for k in r}), rows=list(rows),
                    started=float(next(_clock)), **kw)


@pytest.fixture
def state(tmp_path):
    s = State(tmp_path / "db")
    yield s
    s.close()


def proc(pid, name="bash"):
    return {"pid": pid, "name": name}


def test_first_run_logs_every_row_added_with_counter_zero(state):
    r = DiffStore(state, 0).apply(run([proc(1), proc(2)]))
    assert r.reason == REASON_FIRST_RUN
    assert r.added == [proc(1), proc(2)] and r.removed == []
    assert (r.counter, r.epoch, r.snapshot) == (0, 0, None)
    stored = state.results(Q.name)
    assert stored.rows == [proc(1), proc(2)] and stored.counter == 0 and stored.sql == Q.sql


def test_first_run_with_no_rows_still_stores_a_baseline(state):
    store = DiffStore(state, 0)
    r = store.apply(run([]))
    assert (r.reason, r.counter, r.empty) == (REASON_FIRST_RUN, 0, True)
    assert state.results(Q.name).rows == []
    r = store.apply(run([proc(1)]))
    assert (r.reason, r.added, r.counter) == (REASON_CHANGE, [proc(1)], 1)


def test_process_started_between_runs_is_added_then_removed(state):
    store = DiffStore(state, 0)
    store.apply(run([proc(1)]))
    r = store.apply(run([proc(1), proc(42, "nc")]))
    assert (r.reason, r.added, r.removed, r.counter) == (REASON_CHANGE, [proc(42, "nc")], [], 1)
    r = store.apply(run([proc(1)]))
    assert (r.added, r.removed, r.counter) == ([], [proc(42, "nc")], 2)


def test_counter_moves_only_on_non_empty_diffs_and_state_is_kept_when_empty(state):
    store = DiffStore(state, 0)
    store.apply(run([proc(1), proc(2)]))
    before = list(state.db.execute("SELECT updated FROM results"))
    r = store.apply(run([proc(2), proc(1)]))  # same multiset, other order
    assert r.empty and r.counter == 0 and r.reason == REASON_CHANGE
    assert list(state.db.execute("SELECT updated FROM results")) == before  # not rewritten
    assert store.apply(run([proc(3)])).counter == 1
    assert store.apply(run([proc(3)])).counter == 1
    assert store.apply(run([proc(4)])).counter == 2
    assert state.results(Q.name).counter == 2


def test_rows_are_multisets_of_whole_rows():
    a, b = proc(1), proc(2)
    added, removed = multiset_diff([a, a, b], [a, b, b])
    assert added == [b] and removed == [a]
    added, removed = multiset_diff([a], [a, a, a])
    assert added == [a, a] and removed == []
    # every column counts: same pid, other name is a different row
    added, removed = multiset_diff([proc(1, "x")], [proc(1, "y")])
    assert added == [proc(1, "y")] and removed == [proc(1, "x")]
    # column order does not matter
    assert multiset_diff([{"a": 1, "b": 2}], [{"b": 2, "a": 1}]) == ([], [])


def test_duplicates_through_the_store(state):
    store = DiffStore(state, 0)
    store.apply(run([proc(1), proc(1)]))
    r = store.apply(run([proc(1)]))
    assert r.removed == [proc(1)] and r.added == []
    r = store.apply(run([proc(1), proc(1), proc(1)]))
    assert r.added == [proc(1), proc(1)] and r.removed == []


def test_epoch_change_resets(state):
    DiffStore(state, 0).apply(run([proc(1)]))
    DiffStore(state, 0).apply(run([proc(2)]))
    store = DiffStore(state, 7)
    r = store.apply(run([proc(2), proc(3)]))
    assert (r.reason, r.counter, r.epoch) == (REASON_EPOCH, 0, 7)
    assert r.added == [proc(2), proc(3)] and r.removed == []
    assert state.results(Q.name).epoch == 7
    r = store.apply(run([proc(3)]))
    assert (r.reason, r.removed, r.counter) == (REASON_CHANGE, [proc(2)], 1)


def test_removed_false_drops_removed_rows_but_keeps_full_state_and_counts(state):
    q = ScheduledQuery("mon", "SELECT minutes FROM time", removed=False)
    store = DiffStore(state, 0)
    store.apply(run([{"m": 1}, {"m": 2}], query=q))
    r = store.apply(run([{"m": 1}], query=q))
    assert r.removed == [] and r.added == [] and r.empty  # nothing to log...
    assert r.counter == 1 and state.results("mon").counter == 1  # ...but the counter moved
    assert state.results("mon").rows == [{"m": 1}]  # the stored set is the full current set
    r = store.apply(run([{"m": 1}, {"m": 3}], query=q))
    assert (r.added, r.removed, r.counter) == ([{"m": 3}], [], 2)


def test_sql_change_starts_a_new_baseline(state):
    store = DiffStore(state, 0)
    store.apply(run([proc(1), proc(2)]))
    store.apply(run([proc(1), proc(3)]))
    changed = ScheduledQuery(Q.name, "SELECT pid, name, path FROM processes")
    rows = [{"pid": 1, "name": "bash", "path": "/bin/bash"}]
    r = store.apply(run(rows, query=changed))
    # osquery would diff against the old SQL's rows (all removed + all added); Quarry re-baselines
    assert (r.reason, r.counter, r.added, r.removed) == (REASON_SQL_CHANGED, 0, rows, [])
    assert state.results(Q.name).sql == changed.sql
    r = store.apply(run(rows, query=changed))
    assert r.empty and r.reason == REASON_CHANGE


def test_unreadable_state_is_reported_and_recovered(state):
    store = DiffStore(state, 0)
    store.apply(run([proc(1)]))
    store.apply(run([proc(2)]))
    state.db.execute("UPDATE results SET rows = ? WHERE name = ?", (b"{not json", Q.name))
    r = store.apply(run([proc(2)]))
    assert (r.reason, r.counter, r.added, r.removed) == (REASON_STATE_LOST, 0, [proc(2)], [])
    r = store.apply(run([proc(2)]))
    assert r.empty and r.reason == REASON_CHANGE


def test_stored_rows_of_the_wrong_shape_count_as_lost(state):
    store = DiffStore(state, 0)
    store.apply(run([proc(1)]))
    state.db.execute("UPDATE results SET rows = ? WHERE name = ?", (b'[1, ["x"]]', Q.name))
    assert store.apply(run([proc(1)])).reason == REASON_STATE_LOST


TYPED = [
    {"pid": 1, "load": 0.1, "big": 2**62, "name": "tab\there", "blob": b"\xff\x00ok", "null": None,
     "utf8": "héllo ✓", "neg": -1.5e-7, "inf": float("inf")},
    {"pid": 2, "load": 1.0, "big": -(2**63), "name": "x", "blob": b"", "null": None, "utf8": "",
     "neg": 0.0, "inf": 3.0},
]


def test_restart_diffs_only_the_real_change(tmp_path):
    s = State(tmp_path / "db")
    DiffStore(s, 3).apply(run(TYPED))
    s.close()
    s = State(tmp_path / "db")  # the process restarted: new State, new DiffStore
    store = DiffStore(s, 3)
    r = store.apply(run(TYPED))
    assert r.empty and r.reason == REASON_CHANGE and r.counter == 0
    new = dict(TYPED[1], pid=3)
    r = store.apply(run([TYPED[0], new]))
    assert r.added == [normalize(new)] and r.removed == [normalize(TYPED[1])] and r.counter == 1
    s.close()
    s = State(tmp_path / "db")
    r = DiffStore(s, 3).apply(run([TYPED[0], new]))
    assert r.empty and r.counter == 1
    s.close()


def test_removed_rows_after_restart_keep_their_types(tmp_path):
    s = State(tmp_path / "db")
    DiffStore(s, 0).apply(run([{"pid": 7, "load": 0.5, "name": "a"}]))
    s.close()
    s = State(tmp_path / "db")
    r = DiffStore(s, 0).apply(run([]))
    assert r.removed == [{"pid": 7, "load": 0.5, "name": "a"}]
    assert type(r.removed[0]["pid"]) is int and type(r.removed[0]["load"]) is float
    s.close()


def test_values_compare_on_their_text_form(state):
    store = DiffStore(state, 0)
    store.apply(run([{"v": 1, "f": 0.25, "n": None}]))
    # same text, other Python type: not a change (a table changing int -> str does not flood)
    assert store.apply(run([{"v": "1", "f": "0.25", "n": ""}])).empty
    # 1 and 1.0 differ in text ("1" vs "1.0"), as in osquery
    r = store.apply(run([{"v": 1.0, "f": 0.25, "n": None}]))
    assert r.added == [{"v": 1.0, "f": 0.25, "n": ""}]


def test_differential_values_are_escaped_as_osquery_does(state):
    r = DiffStore(state, 0).apply(run([{"s": "a\nb\x01", "b": b"ok\xff\xfe", "u": "né ✓", "c": "\x7f/"}]))
    row = r.added[0]
    assert row["s"] == "a\\x0Ab\\x01"
    assert row["b"] == "ok\\xFF\\xFE"
    assert row["u"] == "né ✓"  # valid UTF-8 passes
    assert row["c"] == "\x7f/"
    # undecodable bytes that reached a str through surrogateescape are escaped as the bytes they were
    r = DiffStore(state, 0).apply(run([{"s": b"\xc3(".decode("utf-8", "surrogateescape")}],
                                      query=ScheduledQuery("other", "SELECT 1")))
    assert r.added[0]["s"] == "\\xC3("


def test_snapshot_keeps_no_state(state):
    q = ScheduledQuery("snap", "SELECT * FROM mounts", snapshot=True)
    store = DiffStore(state, 5)
    for _ in range(2):
        r = store.apply(run([{"path": "/", "x": None, "ctl": "a\tb"}], query=q))
        assert (r.reason, r.counter, r.epoch) == (REASON_SNAPSHOT, 0, 5)
        assert r.snapshot == [{"path": "/", "x": "", "ctl": "a\tb"}]  # osquery does not escape snapshots
        assert r.added == [] and r.removed == [] and not r.empty
    assert state.results("snap") is None
    r = store.apply(run([], query=q))
    assert r.snapshot == [] and not r.empty


def test_event_tables_log_every_row_and_reset_the_counter_to_one(state):
    q = ScheduledQuery("fim", "SELECT target_path, action FROM file_events")
    assert is_event_query(q.sql)
    store = DiffStore(state, 0)
    r = store.apply(run([], query=q), event_table=True)
    assert r.empty and r.reason == REASON_FIRST_RUN
    e1 = {"target_path": "/etc/passwd", "action": "UPDATED"}
    r = store.apply(run([e1], query=q), event_table=True)
    assert (r.added, r.removed, r.counter, r.reason) == ([e1], [], 1, REASON_FIRST_RUN)
    r = store.apply(run([e1], query=q), event_table=True)  # the same event again is a new event
    assert (r.added, r.counter, r.reason) == ([e1], 2, REASON_CHANGE)
    r = store.apply(run([], query=q), event_table=True)
    assert r.empty and r.counter == 2
    assert state.results("fim").rows == []  # events are never kept for diffing
    r = DiffStore(state, 1).apply(run([e1], query=q), event_table=True)
    assert (r.counter, r.reason) == (1, REASON_EPOCH)


def test_baseline_is_persisted_and_renewed_on_reset(state):
    store = DiffStore(state, 0)
    first = store.apply(run([proc(1)]))
    assert first.baseline > 0
    assert store.apply(run([proc(2)])).baseline == first.baseline
    again = DiffStore(state, 9).apply(run([proc(2)]))
    assert again.baseline > first.baseline


def test_a_failed_run_is_refused(state):
    with pytest.raises(ValueError, match="failed run"):
        DiffStore(state, 0).apply(run([], error="no such table: nope"))


def test_referenced_tables():
    sql = "SELECT p.pid FROM processes p JOIN users u USING (uid)"
    assert referenced_tables(sql) == ["processes", "users"]
    sql = "select * from (select 'from x' as a from file_events) -- from y"
    assert referenced_tables(sql) == ["file_events"]
    assert not is_event_query("SELECT * FROM processes")
    assert is_event_query("SELECT * FROM processes JOIN hardware_events")


def test_values_json_cannot_hold_are_kept_as_text(state):
    q = ScheduledQuery("odd", "SELECT 1")
    r = DiffStore(state, 0).apply(run([{"big": 2**70, "flag": True, "inf": float("-inf")}], query=q))
    assert r.added == [{"big": str(2**70), "flag": 1, "inf": "-inf.0"}]
    assert state.results("odd").rows == r.added  # stored without error, read back equal
