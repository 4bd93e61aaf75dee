"""Regression tests, one per defect the fuzz tests found (plain tests: they run the exact input every time)."""

from __future__ import annotations

import time

import pytest

from collector.config import loads
from collector.engine import Engine
from collector.errors import ConfigError, QueryCancelled, QueryError, TableError


def test_a_lone_surrogate_in_config_text_is_a_config_error():
    # Was UnicodeEncodeError while measuring the stripped size.
    with pytest.raises(ConfigError) as e:
        loads("\udcff{}", "x.conf")
    assert (e.value.file, e.value.line, e.value.column) == ("x.conf", 1, 1)
    assert loads('{"a": "\udcff"}') == {"a": "\udcff"}


def test_a_hostfs_without_proc_is_a_table_error(tmp_path):
    # Was a bare FileNotFoundError out of the processes generator.
    engine = Engine(root=str(tmp_path))
    with pytest.raises(TableError) as e:
        engine.query("SELECT pid FROM processes")
    assert str(e.value) == f"processes: cannot read {tmp_path}/proc: No such file or directory"


@pytest.mark.parametrize("sql", ["SELECT CAST(x'00ff' AS TEXT)", "SELECT char(55296)", "SELECT x'ff' || ''"])
def test_text_that_is_not_utf8_is_a_query_error(engine, sql):
    # Was UnicodeDecodeError from apsw.
    with pytest.raises(QueryError, match="not valid UTF-8.*hex"):
        engine.query(sql)
    assert engine.query("SELECT hex(CAST(x'00ff' AS TEXT))").rows == [("00FF",)]


def test_sleep_ends_at_the_query_timeout(engine):
    # Was time.sleep(1000000): the timeout's interrupt cannot stop a Python sleep, the worker hung.
    started = time.monotonic()
    with pytest.raises(QueryCancelled, match="timed out after 0.3 s"):
        engine.query("SELECT sleep(1000000)", timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert engine.query("SELECT sleep(0), sleep(-5), sleep(NULL)").rows == [(0, 0, 0)]


def test_sleep_still_sleeps(engine):
    started = time.monotonic()
    assert engine.query("SELECT sleep(1)").rows == [(1,)]
    assert time.monotonic() - started >= 1.0


def test_statements_with_different_columns_give_one_table(engine):
    # Was rows of the first statement under the (empty) columns of the last one.
    r = engine.query("SELECT 1 AS a, 2 AS b; SELECT 3 AS b; SELECT 4 AS c")
    assert r.columns == ["a", "b", "c"]
    assert r.rows == [(1, 2, None), (None, 3, None), (None, None, 4)]
    r = engine.query("SELECT 1 AS a; SELECT 2 AS a; SAVEPOINT s")
    assert (r.columns, r.rows) == (["a"], [(1,), (2,)])


def test_a_transaction_does_not_outlive_its_query(engine):
    # Was: BEGIN left open, so a later "COMMIT" in another query succeeded.
    engine.query("BEGIN; SELECT 1")
    assert not engine.conn.in_transaction
    with pytest.raises(QueryError, match="no transaction is active"):
        engine.query("SELECT 1; COMMIT")


def test_inet_aton_of_text_with_a_nul_is_null(engine):
    # Was ValueError ("embedded null character") out of socket.inet_pton.
    assert engine.query("SELECT inet_aton(x'00ff'), inet_aton('1.2.3.4' || char(0))").rows == [(None, None)]


def test_ceil_and_floor_beyond_int64_stay_real(engine):
    # Was OverflowError: math.ceil(1e308) is an int SQLite cannot hold; ceil(inf) raised too.
    assert engine.query("SELECT ceil(1e308), floor(-1e300), ceil(1.5), ceil(9e999)").rows == [(1e308, -1e300, 2, None)]
