"""Fuzzing the SQL entry point (Engine.query) with generated and mutated SQL on a fixed fake host.

Inputs: SELECTs built from the real table and column names, osquery's functions and SQLite's, with joins,
subqueries, CTEs and constraints on required columns; osquery's own pack queries (shared/osquery/packs)
mutated token by token; and write attempts (INSERT/UPDATE/DELETE/CREATE/ATTACH/PRAGMA/VACUUM INTO aimed at a
canary folder) spliced into both.
Properties: Engine.query returns a Result or raises one of Quarry's errors (QueryError and its kinds,
TableError) - nothing else; no case outlives its time limit (the engine's own timeout is 2 s); nothing is
written: the canary folder stays empty, the fake host tree is unchanged, the connection has no schema, no
attached database and its PRAGMAs are as they started.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from collector.errors import QuarryError
from tests.conftest import shared_path
from tests.fuzz.conftest import cases, time_limit

seeds = st.randoms(use_true_random=True)
QUERY_TIMEOUT = 2.0

OSQUERY_FUNCTIONS = {
    "split": 3, "regex_split": 3, "regex_match": 3, "inet_aton": 1, "concat": 3, "concat_ws": 3, "md5": 1,
    "sha1": 1, "sha256": 1, "community_id_v1": 5, "to_base64": 1, "from_base64": 1, "conditional_to_base64": 1,
    "in_cidr_block": 2, "version_compare": 2, "parent_directory": 1, "find_file_path_in_cmd": 1,
    "is_path_deterministic": 1, "sleep": 1, "sqrt": 1, "log": 1, "log10": 1, "ceil": 1, "floor": 1, "power": 2,
    "pi": 0, "degrees": 1, "acos": 1,
}
SQLITE_FUNCTIONS = {
    "abs": 1, "length": 1, "lower": 1, "upper": 1, "substr": 3, "replace": 3, "hex": 1, "instr": 2,
    "printf": 2, "coalesce": 2, "ifnull": 2, "typeof": 1, "count": 1, "sum": 1, "group_concat": 1, "max": 2,
    "min": 1, "json_extract": 2, "randomblob": 1, "zeroblob": 1, "char": 1, "unicode": 1, "datetime": 1,
    "strftime": 2, "round": 2, "trim": 1, "like": 2, "glob": 2, "quote": 1, "unhex": 1,
}
LITERALS = ["1", "0", "-1", "NULL", "''", "'%'", "'/etc/%%'", "'/'", "'a'", "1.5", "9223372036854775807",
            "-9223372036854775808", "x'00ff'", "'\u00e9'", "'1.2.3'", "'10.0.0.0/8'", "'127.0.0.1'", "1e308",
            "'proc'", "'%%'", "'*'", "1000000", "3"]
OPS = ["=", "<>", "<", ">=", "LIKE", "GLOB", "IN", "IS", "IS NOT", "BETWEEN 0 AND", "+", "||", "/", "%", "&"]
KEYWORDS = ["SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "JOIN", "LEFT JOIN", "ON", "USING", "GROUP BY",
            "ORDER BY", "LIMIT", "UNION", "UNION ALL", "DISTINCT", "*", "(", ")", ",", ";", "AS", "CASE", "WHEN",
            "THEN", "END", "WITH", "RECURSIVE", "VALUES", "EXISTS", "CAST", "COLLATE VERSION", "ESCAPE"]


def writes(canary: Path) -> list[str]:
    db = canary / "x.db"
    return [f"ATTACH '{db}' AS w", f"VACUUM INTO '{canary / 'v.db'}'", "CREATE TABLE t (a)",
            "CREATE TEMP TABLE t AS SELECT 1", "INSERT INTO processes (pid) VALUES (1)", "DELETE FROM users",
            "UPDATE processes SET name = 'x'", "DROP TABLE processes", "PRAGMA writable_schema = 1",
            "PRAGMA query_only = 0", "PRAGMA user_version = 7", "PRAGMA journal_mode = wal",
            f"PRAGMA temp_store_directory = '{canary}'", f"SELECT load_extension('{canary / 'e.so'}')",
            "CREATE VIEW v AS SELECT 1", "CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END",
            "REPLACE INTO t VALUES (1)", "CREATE VIRTUAL TABLE x USING processes", "BEGIN", "COMMIT",
            "SAVEPOINT s", "ANALYZE", "REINDEX", "VACUUM", f"ATTACH 'file:{db}?mode=rwc' AS w2"]


class Grammar:
    def __init__(self, engine, canary: Path) -> None:
        self.tables = {s.name: s for s in engine.specs()}
        self.names = sorted(self.tables)
        self.writes = writes(canary)

    def column(self, rng: random.Random, table: str) -> str:
        cols = [c.name for c in self.tables[table].columns]
        return rng.choice(cols) if cols and rng.random() < 0.9 else rng.choice(["rowid", "nope", "*"])

    def expr(self, rng: random.Random, table: str, depth: int = 2) -> str:
        r = rng.random()
        if depth <= 0 or r < 0.35:
            return self.column(rng, table) if rng.random() < 0.5 else rng.choice(LITERALS)
        if r < 0.6:
            name, arity = rng.choice(list(OSQUERY_FUNCTIONS.items()) + list(SQLITE_FUNCTIONS.items()))
            arity = arity if rng.random() < 0.9 else rng.randint(0, 4)
            args = ", ".join(self.expr(rng, table, depth - 1) for _ in range(arity))
            if name == "sleep" and rng.random() < 0.7:
                args = rng.choice(["0", "1000000", "-1", "'x'", "3"])
            return f"{name}({args})"
        if r < 0.85:
            return f"{self.expr(rng, table, depth - 1)} {rng.choice(OPS)} {self.expr(rng, table, depth - 1)}"
        if r < 0.95:
            return f"(SELECT {self.column(rng, table)} FROM {table} LIMIT 1)"
        return f"CAST({self.expr(rng, table, depth - 1)} AS {rng.choice(['INTEGER', 'TEXT', 'BLOB', 'REAL'])})"

    def constraint(self, rng: random.Random, table: str) -> str:
        spec = self.tables[table]
        required = list(spec.required_columns or ())
        parts = []
        if required and rng.random() < 0.85:
            value = repr(rng.choice(["/etc/hostname", "/etc/%", "/proc/1/%", "/nope", "%", "http://127.0.0.1:1"]))
            op = rng.choice(["=", "LIKE", "GLOB", "IN"])
            parts.append(f"{rng.choice(required)} {op} " + (f"({value})" if op == "IN" else value))
        for _ in range(rng.randint(0, 2)):
            parts.append(self.expr(rng, table))
        return " AND ".join(parts)

    def select(self, rng: random.Random, depth: int = 1) -> str:
        table = rng.choice(self.names)
        cols = ", ".join(self.expr(rng, table) for _ in range(rng.randint(1, 3)))
        sql = f"SELECT {'DISTINCT ' if rng.random() < 0.1 else ''}{cols} FROM {table}"
        if depth > 0 and rng.random() < 0.2:
            other = rng.choice(self.names)
            sql += f" JOIN {other} USING ({self.column(rng, other)})" if rng.random() < 0.5 else f", {other}"
        where = self.constraint(rng, table)
        if where:
            sql += f" WHERE {where}"
        if rng.random() < 0.2:
            sql += f" GROUP BY 1 ORDER BY 1 {rng.choice(['ASC', 'DESC'])}"
        if rng.random() < 0.3:
            sql += f" LIMIT {rng.choice(['1', '0', '-1', '100', '(SELECT 2)'])}"
        if depth > 0 and rng.random() < 0.1:
            sql += f" UNION {self.select(rng, depth - 1)}"
        if depth > 0 and rng.random() < 0.1:
            sql = (f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                   f"{rng.choice(['', ' LIMIT 100', ' WHERE x < 50'])}) {sql.replace('SELECT', 'SELECT x,', 1)}, c")
        return sql


_TOKEN = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|\w+|[^\s\w]")


def mutate_sql(rng: random.Random, sql: str, grammar: Grammar) -> str:
    tokens = _TOKEN.findall(sql) or ["SELECT"]
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(len(tokens) + 1)
        op = rng.random()
        pick = rng.choice([
            lambda: rng.choice(grammar.names), lambda: grammar.column(rng, rng.choice(grammar.names)),
            lambda: rng.choice(KEYWORDS), lambda: rng.choice(LITERALS), lambda: rng.choice(OPS),
            lambda: f"{rng.choice(list(OSQUERY_FUNCTIONS))}(", lambda: rng.choice(["'", '"', "--", "/*", "?", "$a"]),
        ])
        if op < 0.3 and at < len(tokens):
            del tokens[at]
        elif op < 0.6 and at < len(tokens):
            tokens[at] = pick()
        elif op < 0.9:
            tokens.insert(at, pick())
        else:
            tokens.insert(at, f"; {rng.choice(grammar.writes)};")
    return " ".join(tokens)


def pack_queries() -> list[str]:
    from collector.config import load_file

    out = []
    for f in sorted(shared_path("osquery", "packs").glob("*.conf")):
        for q in load_file(f).get("queries", {}).values():
            out.append(q["query"])
    return out


def snapshot(root: Path) -> dict[str, tuple[int, int, int]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st_ = os.lstat(p)
            out[p] = (st_.st_mode, st_.st_size, st_.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def setup(fake_host, tmp_path_factory):
    from collector.engine import Engine

    engine = Engine(root=str(fake_host))
    canary = tmp_path_factory.mktemp("canary")
    before = {"journal_mode": engine.query("PRAGMA journal_mode").rows,
              "user_version": engine.query("PRAGMA user_version").rows,
              "query_only": engine.query("PRAGMA query_only").rows,
              "writable_schema": engine.query("PRAGMA writable_schema").rows}
    tree = snapshot(fake_host)
    yield engine, Grammar(engine, canary), canary, before
    assert snapshot(fake_host) == tree, "a query changed the fake host tree"


def run_case(engine, canary: Path, before: dict, sql: str) -> None:
    note(f"SQL: {sql}")
    with time_limit(QUERY_TIMEOUT * 4):
        try:
            result = engine.query(sql, timeout=QUERY_TIMEOUT)
        except QuarryError as e:
            assert str(e), sql
        else:
            assert all(len(r) == len(result.columns) for r in result.rows), sql
    assert not any(canary.iterdir()), f"{sql!r} wrote {list(canary.iterdir())}"
    assert not engine.conn.in_transaction, sql
    state = engine.query("SELECT (SELECT count(*) FROM sqlite_schema), (SELECT count(*) FROM sqlite_temp_schema),"
                         " (SELECT group_concat(name) FROM pragma_database_list)").rows
    assert state[0][0] == 0 and state[0][1] == 0 and state[0][2] in ("main", "main,temp"), (sql, state)
    for pragma, rows in before.items():
        assert engine.query(f"PRAGMA {pragma}").rows == rows, (sql, pragma)


@cases("sql_generated", 2000)
@given(seeds)
def test_generated_sql(setup, rng: random.Random) -> None:
    engine, grammar, canary, before = setup
    sql = grammar.select(rng)
    if rng.random() < 0.1:
        sql = f"{sql}; {rng.choice(grammar.writes)}" if rng.random() < 0.5 else f"{rng.choice(grammar.writes)}; {sql}"
    run_case(engine, canary, before, sql)


@cases("sql_mutated", 2000)
@given(seeds)
def test_mutated_pack_queries(setup, rng: random.Random) -> None:
    engine, grammar, canary, before = setup
    queries = _PACKS or _PACKS.extend(pack_queries()) or _PACKS
    sql = mutate_sql(rng, rng.choice(queries), grammar)
    run_case(engine, canary, before, sql)


_PACKS: list[str] = []
