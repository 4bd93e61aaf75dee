"""The engine's contract with generators: push-down, IN lists, required columns, used columns, safety."""

from __future__ import annotations

import os
import threading
import time

import pytest

from collector.engine import Engine
from collector.errors import QueryCancelled, QueryDenied, QueryError
from collector.registry import Registered
from collector.table import BIGINT, TEXT, col, table

CALLS: list[dict] = []


def gen_nums(ctx):
    CALLS.append({"eq": ctx.eq("n"), "like": ctx.like("label"), "ops": ctx.ops("n"),
                  "used_label": ctx.used("label"), "used_extra": ctx.used("extra")})
    wanted = ctx.eq("n")
    for n in range(1, 101):
        if wanted is not None and n not in wanted:
            continue
        yield {"n": n, "label": f"n{n}", "extra": "x" if ctx.used("extra") else None}


def gen_needs(ctx):
    for op, v in ctx.ops("path"):
        yield {"path": v, "size": len(str(v))}


def gen_slow(ctx):
    for i in range(10_000_000):
        ctx.check()
        time.sleep(0.001)
        yield {"n": i}


NUMS = table("nums", "test", [col("n", BIGINT, index=True, optimized=True), col("label", TEXT, additional=True),
                              col("extra", TEXT), col("secret", TEXT, hidden=True)])
PLAIN_IN = table("plain_in", "test", [col("n", BIGINT, index=True)], generator="gen_nums")
NEEDS = table("needs", "test", [col("path", TEXT, required=True), col("size", BIGINT)])
SLOW = table("slow", "test", [col("n", BIGINT)])


@pytest.fixture
def eng():
    CALLS.clear()
    regs = [Registered(NUMS, gen_nums), Registered(PLAIN_IN, gen_nums), Registered(NEEDS, gen_needs),
            Registered(SLOW, gen_slow)]
    return Engine(tables=regs)


def test_equality_is_pushed_down(eng):
    assert eng.query("SELECT n FROM nums WHERE n = 7").rows == [(7,)]
    assert CALLS == [CALLS[0]] and CALLS[0]["eq"] == {7}


def test_optimized_in_arrives_all_at_once(eng):
    rows = eng.query("SELECT n FROM nums WHERE n IN (3, 5, 9) ORDER BY n").rows
    assert rows == [(3,), (5,), (9,)]
    assert len(CALLS) == 1 and CALLS[0]["eq"] == {3, 5, 9}


def test_unoptimized_in_is_one_call_per_value(eng):
    rows = eng.query("SELECT n FROM plain_in WHERE n IN (3, 5) ORDER BY n").rows
    assert rows == [(3,), (5,)]
    assert sorted(next(iter(c["eq"])) for c in CALLS) == [3, 5]


def test_like_and_ranges_pushed_and_rechecked(eng):
    rows = eng.query("SELECT n FROM nums WHERE label LIKE 'n1%' AND n > 10 AND n <= 12").rows
    assert rows == [(11,), (12,)]
    assert CALLS[0]["like"] == ["n1%"]
    assert sorted(CALLS[0]["ops"]) == [("<=", 12), (">", 10)]


def test_non_index_columns_filtered_by_sqlite(eng):
    assert eng.query("SELECT n FROM nums WHERE extra = 'x' AND n = 2").rows == [(2,)]


def test_used_columns_reach_generator(eng):
    eng.query("SELECT n FROM nums WHERE n = 1")
    assert CALLS[-1]["used_label"] is False and CALLS[-1]["used_extra"] is False
    eng.query("SELECT extra FROM nums WHERE n = 1")
    assert CALLS[-1]["used_extra"] is True


def test_hidden_column_not_in_star_but_selectable(eng):
    assert eng.query("SELECT * FROM nums WHERE n = 1").columns == ["n", "label", "extra"]
    assert eng.query("SELECT secret FROM nums WHERE n = 1").rows == [(None,)]


def test_required_column_message(eng):
    with pytest.raises(QueryError, match="^Table needs was queried without a required column in the WHERE clause$"):
        eng.query("SELECT * FROM needs")


def test_required_column_fed_by_join(eng):
    rows = eng.query("SELECT n, size FROM nums JOIN needs ON needs.path = nums.label WHERE n IN (1, 22)").rows
    assert sorted(rows) == [(1, 2), (22, 3)]


def test_typed_values(eng):
    r = eng.query("SELECT n, label FROM nums WHERE n = 5")
    assert r.rows == [(5, "n5")] and isinstance(r.rows[0][0], int)


def test_sql_features(eng):
    r = eng.query("SELECT count(*), sum(n) OVER () FROM nums WHERE n IN (1,2,3) GROUP BY n % 2 LIMIT 1")
    assert len(r.rows) == 1
    assert eng.query("SELECT (SELECT max(n) FROM nums) + 1").rows == [(101,)]


def test_timeout_stops_a_long_generator(eng):
    started = time.monotonic()
    with pytest.raises(QueryCancelled, match="timed out"):
        eng.query("SELECT count(*) FROM slow", timeout=0.3)
    assert time.monotonic() - started < 5


def test_interrupt_from_another_thread(eng):
    threading.Timer(0.2, eng.interrupt).start()
    with pytest.raises(QueryCancelled):
        eng.query("SELECT count(*) FROM slow")


def test_syntax_error_is_query_error(eng):
    with pytest.raises(QueryError, match="syntax error"):
        eng.query("SELEC 1")


def test_unknown_column_compile_error(eng):
    with pytest.raises(QueryError, match="no such column: nope"):
        eng.columns("SELECT nope FROM nums")
    assert eng.columns("SELECT * FROM nums") == ["n", "label", "extra"]


@pytest.mark.parametrize("sql,word", [
    ("ATTACH DATABASE '/tmp/quarry-attach.db' AS x", "ATTACH"),
    ("INSERT INTO nums(n) VALUES (1)", "INSERT"),
    ("DELETE FROM nums", "may not be modified: Quarry's SQL surface is read-only"),
    ("UPDATE nums SET label = 'x'", "may not be modified: Quarry's SQL surface is read-only"),
    ("DROP TABLE nums", "DROP (VIRTUAL )?TABLE is not allowed"),
    ("CREATE TEMP VIEW v AS SELECT 1", "CREATE VIEW"),
    ("CREATE TABLE t(a)", "CREATE TABLE"),
    ("PRAGMA writable_schema = 1", "PRAGMA writable_schema"),
    ("SELECT load_extension('/tmp/x.so')", "load_extension"),
])
def test_read_only_surface(eng, sql, word):
    with pytest.raises(QueryDenied, match=word):
        eng.query(sql)
    assert not os.path.exists("/tmp/quarry-attach.db")


def test_processes_pid_reads_one_process(engine):
    r = engine.query(f"SELECT pid, parent, name FROM processes WHERE pid = {os.getpid()}")
    assert r.rows == [(os.getpid(), os.getppid(), r.rows[0][2])]


def test_processes_match_proc(engine):
    listed = {int(d) for d in os.listdir("/proc") if d.isdigit()}
    ours = {r[0] for r in engine.query("SELECT pid FROM processes").rows}
    # processes come and go between the two reads; the overlap must be nearly total
    assert len(ours ^ listed) <= 3
    me = engine.query(f"SELECT uid, euid, gid, cmdline, path, cwd FROM processes WHERE pid = {os.getpid()}").rows[0]
    assert me[0] == os.getuid() and me[1] == os.geteuid() and me[2] == os.getgid()
    with open(f"/proc/{os.getpid()}/cmdline", "rb") as f:
        assert me[3] == f.read().rstrip(b"\0").replace(b"\0", b" ").decode()
    assert me[4] == os.readlink("/proc/self/exe") and me[5] == os.getcwd()


# --- repeated identical calls within one query (vtab memo) -------------------------------------------
def test_a_join_repeating_a_constraint_replays_the_rows(eng):
    sql = ("SELECT a.k, p.n FROM (SELECT 3 AS k UNION ALL SELECT 3 UNION ALL SELECT 3 UNION ALL SELECT 5 "
           "UNION ALL SELECT 3) a JOIN plain_in p ON p.n = a.k")
    assert eng.query(sql).rows == [(3, 3), (3, 3), (3, 3), (5, 5), (3, 3)]
    # n = 3: the first call only marks the key, the second records, the other two replay; n = 5 once
    assert [c["ops"] for c in CALLS] == [[("=", 3)], [("=", 3)], [("=", 5)]]
    CALLS.clear()
    eng.query(sql)
    assert len(CALLS) == 3  # a new query reads afresh


def test_only_a_complete_scan_is_replayed(eng, monkeypatch):
    sub = "(SELECT count(*) FROM plain_in WHERE n > 3)"
    sql = f"SELECT (SELECT n FROM plain_in WHERE n > 3 LIMIT 1), {sub}, {sub}, {sub}"
    assert eng.query(sql).rows == [(4, 97, 97, 97)]
    assert len(CALLS) == 2  # stopped early (not kept), then recorded whole, then replayed twice
    from collector import vtab

    monkeypatch.setattr(vtab, "_MEMO_ROWS", 10)  # more rows than the cap: never kept, each call generates
    CALLS.clear()
    assert eng.query(sql).rows == [(4, 97, 97, 97)]
    assert len(CALLS) == 4
