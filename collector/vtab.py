"""One apsw virtual-table module per table spec: planning (BestIndex) and row delivery (Filter/Column).

Constraints on index, required and additional columns are pushed to the generator: `=` (and `IN`, all at
once where the column is optimized), LIKE, GLOB and ranges. SQLite re-checks every constraint (nothing is
omitted), so a generator may return a superset, e.g. a filesystem glob for LIKE. A table whose required
column gets no value plans at a prohibitive cost, so SQLite prefers join orders that feed it, and fails in
Filter with osquery's message when no such order exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import apsw

from collector.errors import QueryError, TableError
from collector.table import EQ, GE, GLOB, GT, LE, LIKE, LT, Context, Row, TableSpec
from collector.registry import Registered

_OPS = {
    apsw.SQLITE_INDEX_CONSTRAINT_EQ: EQ,
    apsw.SQLITE_INDEX_CONSTRAINT_GT: GT,
    apsw.SQLITE_INDEX_CONSTRAINT_GE: GE,
    apsw.SQLITE_INDEX_CONSTRAINT_LT: LT,
    apsw.SQLITE_INDEX_CONSTRAINT_LE: LE,
    apsw.SQLITE_INDEX_CONSTRAINT_LIKE: LIKE,
    apsw.SQLITE_INDEX_CONSTRAINT_GLOB: GLOB,
}
_SQL_TYPE = {"UNSIGNED_BIGINT": "UNSIGNED BIGINT"}
_FULL_SCAN_COST = 1e6
_NO_REQUIRED_COST = 1e18
# A join calls a table once per outer row, often with the same constraint (users WHERE uid = 0 for every root
# process). The second identical call of a query records its rows, later ones replay them (Context.memo,
# emptied per query); a first call only marks the key, so a single scan never holds its rows twice.
_SEEN = object()
_TOO_MANY = object()
_MEMO_ROWS = 10_000

ContextFactory = Callable[[TableSpec, dict[str, list[tuple[str, Any]]], frozenset[str] | None], Context]


def declare(spec: TableSpec) -> str:
    parts = []
    for c in spec.columns:
        decl = f"`{c.name}` {_SQL_TYPE.get(c.type, c.type)}"
        if c.hidden or c.platforms and "linux" not in c.platforms:
            decl += " HIDDEN"
        if c.collate:
            decl += f" COLLATE {c.collate.upper()}"
        parts.append(decl)
    return f"CREATE TABLE `{spec.name}`({', '.join(parts)})"


class Module:
    """apsw VTModule for one table; eponymous-only, so `SELECT * FROM processes` needs no CREATE."""

    def __init__(self, reg: Registered, make_context: ContextFactory) -> None:
        self.reg = reg
        self.make_context = make_context

    def Connect(self, connection: apsw.Connection, modulename: str, databasename: str, tablename: str,
                *args: Any) -> tuple[str, Table]:
        return declare(self.reg.spec), Table(self.reg, self.make_context)

    Create = Connect


class Table:
    def __init__(self, reg: Registered, make_context: ContextFactory) -> None:
        self.spec = reg.spec
        self.generate = reg.generate
        self.make_context = make_context
        self.names = [c.name for c in self.spec.columns]
        self._pushed = [c.pushed for c in self.spec.columns]
        self._optimized = [c.optimized for c in self.spec.columns]
        self._required = [c.required for c in self.spec.columns]
        self.plans: list[tuple[tuple[tuple[str, str, bool], ...], frozenset[str] | None]] = []
        self._plan_ids: dict[Any, int] = {}

    def BestIndexObject(self, info: apsw.IndexInfo) -> bool:
        args: list[tuple[str, str, bool]] = []
        has_required = not any(self._required)
        has_eq = False
        for i in range(info.nConstraint):
            if not info.get_aConstraint_usable(i):
                continue
            ci = info.get_aConstraint_iColumn(i)
            op = _OPS.get(info.get_aConstraint_op(i))
            if ci < 0 or op is None or not self._pushed[ci]:
                continue
            all_at_once = op == EQ and self._optimized[ci] and info.get_aConstraintUsage_in(i)
            if all_at_once:
                info.set_aConstraintUsage_in(i, True)
            args.append((self.names[ci], op, bool(all_at_once)))
            info.set_aConstraintUsage_argvIndex(i, len(args))
            if self._required[ci] and op in (EQ, LIKE, GLOB):
                has_required = True
            has_eq = has_eq or op == EQ
        used = info.colUsed
        used_names = None if 63 in used else frozenset(self.names[i] for i in used if i < len(self.names))
        key = (tuple(args), used_names)
        plan = self._plan_ids.get(key)
        if plan is None:
            plan = self._plan_ids[key] = len(self.plans)
            self.plans.append(key)
        info.idxNum = plan
        if not has_required:
            info.estimatedCost = _NO_REQUIRED_COST
        elif has_eq:
            info.estimatedCost = 10.0 / (1 + len(args))
            info.estimatedRows = 10
        elif args:
            info.estimatedCost = 1000.0
        else:
            info.estimatedCost = _FULL_SCAN_COST
        return True

    def Open(self) -> Cursor:
        return Cursor(self)

    def Disconnect(self) -> None:
        pass

    Destroy = Disconnect


class Cursor:
    __slots__ = ("table", "rows", "row", "rowid", "eof", "names", "_record", "_memo", "_key")

    def __init__(self, table: Table) -> None:
        self.table = table
        self.names = table.names
        self.rows: Iterator[Row] = iter(())
        self.row: Row = {}
        self.rowid = 0
        self.eof = True
        self._record: list[Row] | None = None  # rows of a repeated call, kept for the calls after it
        self._memo: dict[Any, Any] = {}
        self._key: Any = None

    def Filter(self, indexnum: int, indexname: str | None, constraintargs: tuple[Any, ...]) -> None:
        args, used = self.table.plans[indexnum]
        spec = self.table.spec
        constraints: dict[str, list[tuple[str, Any]]] = {}
        for (name, op, _all), value in zip(args, constraintargs):
            constraints.setdefault(name, []).append((op, value))
        if spec.required_columns and not any(
            op in (EQ, LIKE, GLOB) for c in spec.required_columns for op, _ in constraints.get(c, ())
        ):
            raise QueryError(f"Table {spec.name} was queried without a required column in the WHERE clause")
        ctx = self.table.make_context(spec, constraints, used)
        self._close_rows()
        self._record, self._memo, self._key = None, ctx.memo, ("rows", spec.name, indexnum, constraintargs)
        try:
            seen = self._memo.get(self._key)
        except TypeError:  # an unhashable argument: no replay
            seen = self._key = None
        if type(seen) is list:
            self.rows = iter(seen)
        else:
            if seen is _SEEN:
                self._record = []
            elif seen is None and self._key is not None:
                self._memo[self._key] = _SEEN
            try:
                self.rows = iter(self.table.generate(ctx))
            except OSError as e:
                raise _unreadable(spec.name, e) from None
        self.rowid = 0
        self.Next()

    def Eof(self) -> bool:
        return self.eof

    def Rowid(self) -> int:
        return self.rowid

    def Column(self, number: int) -> Any:
        if number < 0:
            return self.rowid
        return self.row.get(self.names[number])

    def Next(self) -> None:
        try:
            self.row = next(self.rows)
            self.rowid += 1
            self.eof = False
        except StopIteration:
            self.row = {}
            self.eof = True
            if self._record is not None:  # complete: later identical calls of this query replay it
                self._memo[self._key] = self._record
                self._record = None
            return
        except OSError as e:
            # e.g. --hostfs pointing at a tree without /proc: a clear table error, not a bare OSError.
            raise _unreadable(self.table.spec.name, e) from None
        if self._record is not None:
            self._record.append(self.row)
            if len(self._record) > _MEMO_ROWS:
                self._memo[self._key] = _TOO_MANY
                self._record = None

    def _close_rows(self) -> None:
        close = getattr(self.rows, "close", None)
        if close is not None:
            close()

    def Close(self) -> None:
        self._close_rows()


def _unreadable(table: str, e: OSError) -> TableError:
    what = f"{e.filename}: " if e.filename else ""
    return TableError(table, f"cannot read {what}{e.strerror or e}")
