"""The table contract: a declarative spec plus one generator.

A table module in ``collector/tables/`` defines ``SPEC`` (or ``SPECS`` for a family sharing one parser) and
the generator function the spec names (``generate`` by default). The generator receives a ``Context`` and
yields rows as dicts keyed by column name with typed Python values (int, float, str, bytes or None).
Columns a row leaves out are NULL. The engine, not the generator, turns rows into SQLite values.
"""

from __future__ import annotations

import os

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from collector.errors import QueryCancelled
from collector.tables._passwd import Passwd, read_passwd

TEXT = "TEXT"
INTEGER = "INTEGER"
BIGINT = "BIGINT"
UNSIGNED_BIGINT = "UNSIGNED_BIGINT"
DOUBLE = "DOUBLE"
BLOB = "BLOB"
TYPES = (TEXT, INTEGER, BIGINT, UNSIGNED_BIGINT, DOUBLE, BLOB)
# In TableSpec.requires: without the capability whole rows are absent (other users' files, /etc/shadow).
ROWS = "*"

Row = dict[str, Any]
Generator = Callable[["Context"], Iterable[Row]]


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str = ""
    index: bool = False
    required: bool = False
    hidden: bool = False
    additional: bool = False
    optimized: bool = False
    collate: str | None = None
    # Columns osquery declares for other platforms only: hidden here and always NULL.
    platforms: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type}")

    @property
    def pushed(self) -> bool:
        """Constraints on this column reach the generator (osquery: index, required, additional)."""
        return self.index or self.required or self.additional


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    columns: tuple[Column, ...]
    generator: str = "generate"
    platforms: tuple[str, ...] = ("linux",)
    evented: bool = False
    cacheable: bool = False
    user_data: bool = False
    utility: bool = False
    examples: tuple[str, ...] = ()
    # Linux capabilities needed to see every row and column: (capability, columns) pairs, ROWS among the
    # columns when rows (not just values) go missing without it. Every capability a generator passes to
    # ctx.missing() is declared here (tests/deploy/test_capabilities.py); scripts/capmatrix.py publishes it.
    requires: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Quarry's own table, not in osquery's tables.json (e.g. osquery_shippers): the osquery conformance
    # test checks it has no osquery counterpart instead.
    quarry_only: bool = False

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name}.{name}")

    @property
    def needs(self) -> tuple[str, ...]:
        """The capabilities of `requires`, each once, in declaration order."""
        return tuple(cap for cap, _ in self.requires)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def schema_sql(self) -> str:
        """osqueryi's .schema form: hidden columns marked, primary key of index+additional columns."""
        parts = []
        for c in self.columns:
            decl = f"`{c.name}` {c.type.replace('_', ' ')}"
            if c.hidden or (c.platforms and "linux" not in c.platforms):
                decl += " HIDDEN"
            if c.collate:
                decl += f" COLLATE {c.collate.upper()}"
            parts.append(decl)
        keys = [c.name for c in self.columns if c.index or c.additional]
        if not any(c.index for c in self.columns):
            keys = [c.name for c in self.columns]
        parts.append("PRIMARY KEY (" + ", ".join(f"`{k}`" for k in keys) + ")")
        return f"CREATE TABLE {self.name}({', '.join(parts)}) WITHOUT ROWID;"


def col(name: str, type_: str, description: str = "", **flags: Any) -> Column:
    if "platforms" in flags:
        flags["platforms"] = tuple(flags["platforms"])
    return Column(name, type_, description, **flags)


def table(name: str, description: str, columns: Iterable[Column], **attrs: Any) -> TableSpec:
    for key in ("platforms", "examples"):
        if key in attrs:
            attrs[key] = tuple(attrs[key])
    if "requires" in attrs:
        attrs["requires"] = tuple((cap, tuple(cols)) for cap, cols in dict(attrs["requires"]).items())
    return TableSpec(name, description, tuple(columns), **attrs)


@dataclass
class Limits:
    """Bounds for scans that could otherwise walk a whole disk (osquery's read_max and friends)."""

    read_max: int = 50 * 1024 * 1024  # largest file hashed or read, bytes (osquery --read_max)
    max_depth: int = 64  # recursion depth of %% globs
    max_entries: int = 100_000  # entries one glob may yield
    hash_bytes: int = 2 * 1024 * 1024 * 1024  # bytes one query may hash in total


@dataclass
class Issue:
    """An aggregated 'this could not be read' note for one table in one query."""

    table: str
    reason: str
    capability: str | None
    fields: set[str] = field(default_factory=set)
    rows: int = 0

    def message(self) -> str:
        what = ", ".join(sorted(self.fields)) if self.fields else "rows"
        msg = f"{self.table}: {what} unreadable in {self.rows} row(s): {self.reason}"
        if self.capability:
            msg += f" (needs {self.capability})"
        return msg


class Report:
    """Warnings collected while one query runs; shown by the shell and logged by the daemon."""

    def __init__(self) -> None:
        self.issues: dict[tuple[str, str, str | None], Issue] = {}
        self.notes: list[str] = []

    def missing(self, table: str, fields: Iterable[str], reason: str, capability: str | None, rows: int) -> None:
        key = (table, reason, capability)
        issue = self.issues.get(key)
        if issue is None:
            issue = self.issues[key] = Issue(table, reason, capability)
        issue.fields.update(fields)
        issue.rows += rows

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def messages(self) -> list[str]:
        return [i.message() for i in self.issues.values()] + list(self.notes)


EQ, GT, GE, LT, LE, LIKE, GLOB, NE = "=", ">", ">=", "<", "<=", "LIKE", "GLOB", "!="


class Context:
    """What a generator may know about the query that called it.

    constraints: per column, the (op, value) pairs SQLite pushed down; an IN list arrives as one
    ("=", set-of-values) pair for optimized columns, or as one call per value otherwise.
    """

    def __init__(
        self,
        spec: TableSpec,
        constraints: dict[str, list[tuple[str, Any]]],
        used: frozenset[str] | None,
        *,
        root: str = "/",
        limits: Limits | None = None,
        report: Report | None = None,
        runtime: Any = None,
        deadline: float | None = None,
        cancelled: Callable[[], bool] | None = None,
        memo: dict[Any, Any] | None = None,
    ) -> None:
        self.spec = spec
        self.table = spec.name
        self.constraints = constraints
        self._used = used
        self.root = root.rstrip("/") or "/"
        self.limits = limits or Limits()
        self.report = report or Report()
        self.runtime = runtime
        self.deadline = deadline
        self._cancelled = cancelled
        # Scratch space shared by every call of one query: a join calls a generator once per outer row,
        # and what does not depend on the constraints (a namespace's socket list) is read once.
        self.memo: dict[Any, Any] = {} if memo is None else memo

    # --- constraints -------------------------------------------------------------------------------
    def eq(self, column: str) -> set[Any] | None:
        """Values the column must equal (from = and IN), or None when not constrained that way."""
        values: set[Any] | None = None
        for op, value in self.constraints.get(column, ()):
            if op != EQ:
                continue
            vals = set(value) if isinstance(value, (set, frozenset, list, tuple)) else {value}
            values = vals if values is None else values & vals
        return values

    def like(self, column: str) -> list[str]:
        return [v for op, v in self.constraints.get(column, ()) if op == LIKE and isinstance(v, str)]

    def ops(self, column: str) -> list[tuple[str, Any]]:
        return list(self.constraints.get(column, ()))

    def used(self, column: str) -> bool:
        """Whether the query reads this column; generators skip costly columns nobody selected."""
        return self._used is None or column in self._used

    # --- host root ---------------------------------------------------------------------------------
    def path(self, path: str) -> str:
        """A host path under the host root (--hostfs), for reading."""
        if self.root == "/":
            return path
        return self.root + (path if path.startswith("/") else "/" + path)

    def host_path(self, real: str) -> str:
        """The inverse of path(): what the host calls a file found under the root."""
        if self.root == "/" or not real.startswith(self.root):
            return real
        return real[len(self.root) :] or "/"

    # --- honest data -------------------------------------------------------------------------------
    def missing(self, fields: Iterable[str] | str, reason: str, capability: str | None = None, rows: int = 1) -> None:
        if isinstance(fields, str):
            fields = (fields,)
        self.report.missing(self.table, fields, reason, capability, rows)

    def note(self, text: str) -> None:
        self.report.note(f"{self.table}: {text}")

    # --- cancellation ------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise QueryCancelled when the query was interrupted or ran past its deadline."""
        if self._cancelled is not None and self._cancelled():
            raise QueryCancelled(f"{self.table}: query cancelled")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise QueryCancelled(f"{self.table}: query timed out")

    # --- users (osquery user_data semantics) -------------------------------------------------------
    def users(self) -> Iterator[Passwd]:
        """Accounts whose data a user_data table reads: those constrained by uid/username, else the caller."""

        uids = self.eq("uid")
        names = self.eq("username")
        entries = read_passwd(self.path("/etc/passwd"))
        if uids is None and names is None:
            me = os.getuid()
            found = [e for e in entries if e.pw_uid == me]
            yield from found[:1]
            return
        want_uids = {int(u) for u in uids if _is_int(u)} if uids is not None else None
        for e in entries:
            if want_uids is not None and e.pw_uid not in want_uids:
                continue
            if names is not None and e.pw_name not in names:
                continue
            yield e


def _is_int(v: Any) -> bool:
    try:
        int(v)
    except (TypeError, ValueError):
        return False
    return True
