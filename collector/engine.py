"""The SQL engine: every table registered as an apsw virtual table, osquery's functions, read-only.

    engine = Engine(root="/")
    result = engine.query("SELECT pid, name FROM processes WHERE pid = 1")
    result.columns, result.rows, result.warnings

Rows hold typed values (int, float, str, bytes, None); text forms are the printers' business. One Engine
serves one thread at a time (the daemon gives each worker its own); `interrupt()` may be called from any
thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import apsw

from collector import sqlfunc
from collector.errors import QueryCancelled, QueryDenied, QueryError
from collector.registry import Registered, all_tables
from collector.table import Context, Limits, Report, TableSpec
from collector.vtab import Module

# PRAGMAs that only read even when given an argument; any other PRAGMA with an argument could change state
# and is refused (user_version, schema_version, page_size, encoding ... write when given a value).
_READ_PRAGMAS = frozenset({
    "table_info", "table_xinfo", "table_list", "function_list", "module_list", "pragma_list",
    "collation_list", "database_list", "compile_options", "index_list", "index_info", "index_xinfo",
    "foreign_key_list", "data_version", "page_count", "freelist_count",
})

_DENIED = {
    apsw.SQLITE_ATTACH: "ATTACH",
    apsw.SQLITE_DETACH: "DETACH",
    apsw.SQLITE_INSERT: "INSERT",
    apsw.SQLITE_UPDATE: "UPDATE",
    apsw.SQLITE_DELETE: "DELETE",
    apsw.SQLITE_ALTER_TABLE: "ALTER TABLE",
    apsw.SQLITE_CREATE_INDEX: "CREATE INDEX",
    apsw.SQLITE_CREATE_TABLE: "CREATE TABLE",
    apsw.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER",
    apsw.SQLITE_CREATE_VIEW: "CREATE VIEW",
    apsw.SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE",
    apsw.SQLITE_CREATE_TEMP_INDEX: "CREATE INDEX",
    apsw.SQLITE_CREATE_TEMP_TABLE: "CREATE TABLE",
    apsw.SQLITE_CREATE_TEMP_TRIGGER: "CREATE TRIGGER",
    apsw.SQLITE_CREATE_TEMP_VIEW: "CREATE VIEW",
    apsw.SQLITE_DROP_INDEX: "DROP INDEX",
    apsw.SQLITE_DROP_TABLE: "DROP TABLE",
    apsw.SQLITE_DROP_TRIGGER: "DROP TRIGGER",
    apsw.SQLITE_DROP_VIEW: "DROP VIEW",
    apsw.SQLITE_DROP_VTABLE: "DROP VIRTUAL TABLE",
    apsw.SQLITE_DROP_TEMP_INDEX: "DROP INDEX",
    apsw.SQLITE_DROP_TEMP_TABLE: "DROP TABLE",
    apsw.SQLITE_DROP_TEMP_TRIGGER: "DROP TRIGGER",
    apsw.SQLITE_DROP_TEMP_VIEW: "DROP VIEW",
}


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    warnings: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r)) for r in self.rows]


class Engine:
    def __init__(self, *, root: str = "/", limits: Limits | None = None, runtime: Any = None,
                 tables: Iterable[Registered] | None = None) -> None:
        self.root = root
        self.limits = limits or Limits()
        self.runtime = runtime
        self.tables: dict[str, Registered] = (
            {r.spec.name: r for r in tables} if tables is not None else all_tables()
        )
        self._report = Report()
        self._memo: dict[Any, Any] = {}  # Context.memo, emptied per query
        self._deadline: float | None = None
        self._cancel = threading.Event()
        self._denied: str | None = None
        self.conn = apsw.Connection(":memory:")
        for name, reg in self.tables.items():
            self.conn.create_module(name, Module(reg, self._context), use_bestindex_object=True,
                                    eponymous_only=True, read_only=True)
        sqlfunc.register(self.conn, root=root)
        # osquery's sleep(), but one that interrupt() and the query's timeout can end (time.sleep cannot).
        self.conn.create_scalar_function("sleep", self._sleep, 1)
        self.conn.authorizer = self._authorize

    # --- public --------------------------------------------------------------------------------
    def specs(self) -> list[TableSpec]:
        return [r.spec for r in self.tables.values()]

    def query(self, sql: str, *, timeout: float | None = None) -> Result:
        self._report = Report()
        self._memo = {}
        self._cancel.clear()
        self._denied = None
        self._deadline = time.monotonic() + timeout if timeout else None
        started = time.perf_counter()
        timer = threading.Timer(timeout, self.interrupt) if timeout else None
        if timer:
            timer.daemon = True
            timer.start()
        try:
            cursor = self.conn.cursor()
            shapes: list[list[str]] = []  # the columns of each statement that returns columns

            def describe(cur: apsw.Cursor, _sql: str, _bindings: Any) -> bool:
                # Runs after prepare, before the first step: the only moment an empty result has columns.
                names = [d[0] for d in cur.getdescription()]
                if names:
                    shapes.append(names)
                    if names != shapes[0]:  # several statements, other columns: tag their rows (see _merge)
                        cur.row_trace = _Tagged.maker(len(shapes) - 1)
                return True

            cursor.exec_trace = describe
            rows = cursor.execute(sql).fetchall()
            columns = shapes[0] if shapes else []
            if any(s != columns for s in shapes):
                columns, rows = _merge(shapes, rows)
        except QueryError:
            raise
        except apsw.AuthError as e:
            raise QueryDenied(self._denied or f"statement refused: {e}") from None
        except apsw.InterruptError:
            raise QueryCancelled("query cancelled" if not self._deadline_passed() else
                                 f"query timed out after {timeout} s") from None
        except apsw.SQLError as e:
            if self._denied:
                raise QueryDenied(self._denied) from None
            message = _sqlite_message(e)
            if message.endswith("may not be modified"):
                raise QueryDenied(f"{message}: Quarry's SQL surface is read-only") from None
            raise QueryError(message) from None
        except apsw.Error as e:
            raise QueryError(_sqlite_message(e)) from None
        except UnicodeDecodeError as e:
            # SQL can build text that is not UTF-8 (CAST(x'ff' AS TEXT), char(55296)); apsw cannot hand it over.
            raise QueryError(f"a result value is text that is not valid UTF-8 ({e.reason} at byte {e.start}); "
                             "select hex(...) or CAST(... AS BLOB) instead") from None
        finally:
            self._memo = {}  # nothing read for this query outlives it
            if timer:
                timer.cancel()
            if self.conn.in_transaction:  # a BEGIN/SAVEPOINT left open must not carry into the next query
                self.conn.execute("ROLLBACK")
        return Result(columns, rows, self._report.messages(), time.perf_counter() - started)

    def interrupt(self) -> None:
        self._cancel.set()
        self.conn.interrupt()

    def columns(self, sql: str) -> list[str]:
        """Compile without running: the result columns, or a QueryError naming the unknown table/column."""
        columns: list[str] = []

        def describe(cur: apsw.Cursor, _sql: str, _bindings: Any) -> bool:
            columns[:] = [d[0] for d in cur.getdescription()]
            return False  # stop before the first step: nothing is generated

        cursor = self.conn.cursor()
        cursor.exec_trace = describe
        try:
            cursor.execute(sql)
        except apsw.ExecTraceAbort:
            pass
        except apsw.AuthError as e:
            raise QueryDenied(self._denied or f"statement refused: {e}") from None
        except apsw.Error as e:
            raise QueryError(_sqlite_message(e)) from None
        return columns

    # --- internals ------------------------------------------------------------------------------
    def _sleep(self, seconds: Any) -> int:
        n = sqlfunc._int(seconds)  # the same argument rules as osquery's sleep()
        if n <= 0:
            return 0
        self._cancel.wait(n)  # set by interrupt(), which the timeout timer calls
        return n

    def _deadline_passed(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline

    def _context(self, spec: TableSpec, constraints: dict[str, list[tuple[str, Any]]],
                 used: frozenset[str] | None) -> Context:
        return Context(spec, constraints, used, root=self.root, limits=self.limits, report=self._report,
                       runtime=self.runtime, deadline=self._deadline, cancelled=self._cancel.is_set,
                       memo=self._memo)

    def _authorize(self, op: int, p1: str | None, p2: str | None, db: str | None, trigger: str | None) -> int:
        what = _DENIED.get(op)
        if what is not None:
            if op in (apsw.SQLITE_INSERT, apsw.SQLITE_UPDATE, apsw.SQLITE_DELETE) and (p1 or "").startswith("sqlite_"):
                # CREATE/DROP first write sqlite_master; let that pass so the CREATE/DROP itself is
                # refused and named. Direct writes to sqlite_master fail anyway (writable_schema is refused).
                return apsw.SQLITE_OK
            self._denied = self._denied or f"{what} is not allowed: Quarry's SQL surface is read-only"
            return apsw.SQLITE_DENY
        if op == apsw.SQLITE_PRAGMA and p2 is not None and (p1 or "").lower() not in _READ_PRAGMAS:
            self._denied = f"PRAGMA {p1} = {p2} is not allowed: Quarry's SQL surface is read-only"
            return apsw.SQLITE_DENY
        if op == apsw.SQLITE_FUNCTION and (p2 or "").lower() == "load_extension":
            self._denied = "load_extension is not allowed: Quarry does not load SQLite extensions"
            return apsw.SQLITE_DENY
        return apsw.SQLITE_OK


class _Tagged:
    """A row of statement `k` of a multi-statement query."""

    __slots__ = ("k", "row")

    def __init__(self, k: int, row: tuple[Any, ...]) -> None:
        self.k, self.row = k, row

    @staticmethod
    def maker(k: int) -> Any:
        return lambda _cursor, row: _Tagged(k, row)


def _merge(shapes: list[list[str]], rows: list[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Statements returning different columns: one table over every column name (osquery returns each row as
    a map, so a column a statement lacks is simply absent; here it is NULL)."""
    columns = list(dict.fromkeys(name for shape in shapes for name in shape))
    where = {name: i for i, name in enumerate(columns)}
    out = []
    for row in rows:
        shape, values = (shapes[row.k], row.row) if isinstance(row, _Tagged) else (shapes[0], row)
        full: list[Any] = [None] * len(columns)
        for name, v in zip(shape, values):
            full[where[name]] = v
        out.append(tuple(full))
    return columns, out


def _sqlite_message(e: apsw.Error) -> str:
    text = str(e)
    # apsw prefixes "SQLError: " etc.; users want SQLite's own words as osquery shows them.
    if ": " in text and text.split(": ", 1)[0].endswith("Error"):
        text = text.split(": ", 1)[1]
    return text
