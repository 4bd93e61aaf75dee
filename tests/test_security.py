"""The SQL surface is read-only: statements that write, attach or load code are refused with QueryDenied."""

from __future__ import annotations

import pytest

from collector.errors import QueryDenied, QueryError


@pytest.mark.parametrize("sql, what", [
    ("ATTACH DATABASE '/tmp/quarry_attack.db' AS evil", "ATTACH"),
    ("ATTACH ':memory:' AS x", "ATTACH"),
    ("DETACH DATABASE main", "DETACH"),
    ("INSERT INTO processes (pid) VALUES (1)", "INSERT"),
    ("REPLACE INTO processes (pid) VALUES (1)", "INSERT"),
    ("UPDATE processes SET name = 'x'", "processes"),
    ("DELETE FROM processes", "processes"),
    ("CREATE TABLE t (a)", "CREATE TABLE"),
    ("CREATE TEMP TABLE t (a)", "CREATE TABLE"),
    ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
    ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
    ("CREATE TEMP VIEW v AS SELECT * FROM processes", "CREATE VIEW"),
    ("CREATE VIRTUAL TABLE x USING processes", "CREATE VIRTUAL TABLE"),
    ("DROP TABLE processes", "DROP"),
    ("PRAGMA journal_mode = wal", "PRAGMA journal_mode"),
    ("PRAGMA main.journal_mode = delete", "PRAGMA journal_mode"),
    ("PRAGMA writable_schema = 1", "PRAGMA writable_schema"),
    ("PRAGMA query_only = 0", "PRAGMA query_only"),
    ("PRAGMA foreign_keys = 1", "PRAGMA foreign_keys"),
    ("PRAGMA temp_store_directory = '/tmp'", "PRAGMA temp_store_directory"),
    ("SELECT load_extension('/tmp/evil.so')", "load_extension"),
    ("SELECT load_extension('/tmp/evil.so', 'entry')", "load_extension"),
    ("VACUUM INTO '/tmp/quarry_copy.db'", "ATTACH"),
])
def test_refused(engine, sql, what):
    with pytest.raises(QueryDenied) as e:
        engine.query(sql)
    message = str(e.value)
    assert what in message and "read-only" in message or "load_extension is not allowed" in message


@pytest.mark.parametrize("sql", [
    "CREATE TRIGGER tr AFTER INSERT ON processes BEGIN SELECT 1; END",
    "CREATE INDEX i ON processes (pid)",
    "ALTER TABLE processes RENAME TO p",
])
def test_refused_by_sqlite_itself(engine, sql):
    # SQLite rejects these on virtual tables before the authorizer sees them; still an error, never applied.
    with pytest.raises(QueryError):
        engine.query(sql)


def test_trigger_on_a_temp_table_is_refused_before_it_exists(engine):
    with pytest.raises(QueryDenied):
        engine.query("CREATE TEMP TABLE t (a); CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END")


def test_nothing_was_created_or_attached(engine):
    assert engine.query("SELECT name FROM pragma_database_list").rows in ([("main",)], [("main",), ("temp",)])
    assert engine.query("SELECT count(*) FROM sqlite_schema").rows == [(0,)]
    assert engine.query("SELECT count(*) FROM sqlite_temp_schema").rows == [(0,)]
    assert engine.query("PRAGMA journal_mode").rows == [("memory",)]


@pytest.mark.parametrize("sql", [
    "PRAGMA table_info(processes)",
    "PRAGMA table_xinfo(processes)",
    "PRAGMA table_list",
    "PRAGMA function_list",
    "PRAGMA collation_list",
    "PRAGMA database_list",
    "PRAGMA compile_options",
    "PRAGMA journal_mode",
    "PRAGMA writable_schema",
    "SELECT * FROM pragma_table_info('processes')",
])
def test_read_only_pragmas_work(engine, sql):
    assert engine.query(sql).rows


def test_table_info_names_columns(engine):
    names = [r[1] for r in engine.query("PRAGMA table_info(processes)").rows]
    assert names[:3] == ["pid", "name", "path"]


def test_the_engine_still_answers_after_refusals(engine):
    with pytest.raises(QueryDenied):
        engine.query("DELETE FROM processes")
    assert engine.query("SELECT 1").rows == [(1,)]


@pytest.mark.parametrize("sql", [
    "PRAGMA user_version = 5", "PRAGMA application_id = 3", "PRAGMA schema_version = 3",
    "PRAGMA page_size = 1024", "PRAGMA encoding = 'UTF-16'",
])
def test_pragmas_that_write_when_given_a_value_are_refused(engine, sql):
    with pytest.raises(QueryDenied, match="read-only"):
        engine.query(sql)
    assert engine.query("PRAGMA user_version").rows == [(0,)]
