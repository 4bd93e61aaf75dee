"""osquery's differential results engine on Quarry's State (osquery: core/query.cpp, sql/diff_results.cpp).

    store = DiffStore(state, epoch=flags["schedule_epoch"])
    result = store.apply(run)                      # -> DiffResult(added, removed, epoch, counter, reason)
    result = store.apply(run, event_table=True)    # *_events queries: every row is new

Semantics (reference sheet §3):
- Rows are compared as multisets of whole rows: each current row consumes one equal previous row; unmatched
  current rows are `added` (in result order), unmatched previous rows `removed` (in stored order).
- A (re)initial run logs every row as added with counter 0: the name has no stored results (REASON_FIRST_RUN),
  `--schedule_epoch` differs from the stored epoch (REASON_EPOCH), the stored results cannot be read
  (REASON_STATE_LOST), or the query's SQL changed (REASON_SQL_CHANGED). **Quarry differs from osquery on the
  last one**: osquery resets the counter but keeps diffing against the rows the *old* SQL returned, so the
  first run of the new SQL logs a meaningless mix of added and removed rows; Quarry starts a new baseline.
- Otherwise (REASON_CHANGE) `counter` = previous + 1, incremented only when the diff is non-empty, and the
  stored set is replaced only then. `removed: false` drops the removed rows from the result, but the stored
  set is still the full current set and the counter still moves (so logged counters can skip numbers).
- Snapshot queries keep no state: `DiffResult.snapshot` holds the rows, counter 0, REASON_SNAPSHOT.
- Event tables (`*_events`, osquery's addNewEvents with --events_optimize): no diff, every row of the run is
  added; the counter resets to **1** (not 0: they never hold "all records") and moves only on non-empty runs.

Value normalisation (what makes a restart never produce false diffs): every value is reduced to what osquery
holds after `sqlite3_column_*` — int, finite float or text — NULL becomes "" (osquery's --nullvalue), BLOBs
and text are escaped (bytes < 0x20 and invalid UTF-8 -> \\xHH, as osquery's escapeResults; snapshots only
get invalid UTF-8 repaired since osquery does not escape them), infinities become their text form. Rows are
then compared on the *text form* of their values (what a line shows with numerics off: int 1 -> "1", float
0.1 -> "0.10000000000000001"), so a JSON round trip through the State, or a table changing a value's Python
type but not its text, never shows as a change. Stored rows keep their types (int/float/str survive orjson
exactly), so `removed` rows logged after a restart still honour --logger_numerics.

Each result also carries `baseline`: the unix time of the run that started the current counter sequence,
persisted in State domain "diff". Event ids (collector.events) include it, so after a reset the counters
1, 2, ... of the new baseline never collide with those of an older one.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping

from collector import osquery_json as oj
from collector.model import (
    REASON_CHANGE,
    REASON_EPOCH,
    REASON_FIRST_RUN,
    REASON_SNAPSHOT,
    REASON_SQL_CHANGED,
    REASON_STATE_LOST,
    DiffResult,
    QueryRun,
    Row,
)
from collector.state import Results, State, StateError

log = logging.getLogger("quarry.diff")

DOMAIN = "diff"  # State kv domain: name -> {"baseline": unix time of the run that reset the counter}

# Reasons after which every row of the run is "added" from an empty previous set.
RESET_REASONS = frozenset({REASON_FIRST_RUN, REASON_EPOCH, REASON_SQL_CHANGED, REASON_STATE_LOST})

RowKey = tuple[tuple[str, str], ...]


# --- normalisation ------------------------------------------------------------------------------------------
def _normal_value(v: object, escape: bool) -> str | int | float:
    # Most common types first: this runs for every value of every run.
    if isinstance(v, str):
        return oj.escape(v) if escape else oj.repair(v)
    if isinstance(v, int):
        # bool and int subclasses become plain ints; beyond 64 bits (never from SQLite) the text is kept,
        # since the State's JSON cannot hold it as a number
        return int(v) if -(2**63) <= v < 2**64 else str(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else oj.double_text(v)
    if v is None:
        return ""
    if isinstance(v, bytes | bytearray | memoryview):
        s = bytes(v).decode("utf-8", "surrogateescape")
        return oj.escape(s) if escape else oj.repair(s)
    return oj.escape(str(v)) if escape else oj.repair(str(v))


def normalize(row: Mapping[str, object], *, escape: bool = True) -> Row:
    """A row as Quarry stores, compares and logs it (see the module docstring)."""
    return {str(k): _normal_value(v, escape) for k, v in row.items()}


def row_key(row: Mapping[str, object]) -> RowKey:
    """The identity of a row for the multiset comparison: its columns with their text forms."""
    return tuple(sorted([(k, v if type(v) is str else oj.text(v)) for k, v in row.items()]))


def multiset_diff(previous: list[Row], current: list[Row]) -> tuple[list[Row], list[Row]]:
    """(added, removed): current rows without an equal previous row, previous rows left unmatched."""
    pool: dict[RowKey, deque[int]] = defaultdict(deque)
    for i, r in enumerate(previous):
        pool[row_key(r)].append(i)
    added: list[Row] = []
    for r in current:
        slots = pool.get(row_key(r))
        if slots:
            slots.popleft()
        else:
            added.append(r)
    left = sorted(i for slots in pool.values() for i in slots)
    return added, [previous[i] for i in left]


# --- which tables a query reads -----------------------------------------------------------------------------
_STRINGS = re.compile(r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/", re.S)
_FROM = re.compile(r"\b(?:from|join)\s+[\"`\[]?([A-Za-z_][A-Za-z0-9_]*)", re.I)


def referenced_tables(sql: str) -> list[str]:
    """Tables named after FROM/JOIN, in order (string literals and comments ignored); a heuristic."""
    seen: list[str] = []
    for m in _FROM.finditer(_STRINGS.sub(" ", sql)):
        name = m.group(1).lower()
        if name not in seen and name not in ("select", "values"):
            seen.append(name)
    return seen


def is_event_query(sql: str) -> bool:
    """True when the query reads an evented table (osquery: any EVENT_BASED table among those scanned)."""
    return any(t.endswith("_events") for t in referenced_tables(sql))


# --- the store ----------------------------------------------------------------------------------------------
class DiffStore:
    """Differential results per scheduled query name, persisted in `state` (survives restarts and reloads).

    `epoch` is --schedule_epoch; the daemon may assign a new value on reload. Thread-safe: runs of different
    queries may be applied from several worker threads.
    """

    def __init__(self, state: State, epoch: int = 0) -> None:
        self.state = state
        self.epoch = int(epoch)
        self._lock = threading.Lock()
        self._problem = ""  # the last StateError text, for the status log

    def apply(self, run: QueryRun, *, event_table: bool = False) -> DiffResult:
        if run.error is not None:
            raise ValueError(f"{run.query.name}: a failed run has no results to diff ({run.error})")
        q = run.query
        if q.snapshot:
            rows = [normalize(r, escape=False) for r in run.rows]
            return DiffResult(q.name, [], [], self.epoch, 0, REASON_SNAPSHOT, snapshot=rows,
                              baseline=run.started)
        current = [normalize(r) for r in run.rows]
        with self._lock:
            previous, reason = self._previous(run)
            if event_table:
                return self._events(run, current, previous, reason)
            return self._diff(run, current, previous, reason)

    def forget(self, name: str) -> None:
        """Drop a query's stored results (its next run is a first run)."""
        with self._lock:
            self.state.forget_results(name)
            self.state.delete(DOMAIN, name)

    # --- internals ----------------------------------------------------------------------------------------
    def _previous(self, run: QueryRun) -> tuple[Results | None, str]:
        name = run.query.name
        try:
            prev = self.state.results(name)
            if prev is not None:
                prev.rows = _checked_rows(name, prev.rows)
        except StateError as e:
            self._problem = str(e)
            return None, REASON_STATE_LOST
        if prev is None:
            return None, REASON_FIRST_RUN
        if prev.epoch != self.epoch:
            return None, REASON_EPOCH
        if prev.sql != run.query.sql:
            return None, REASON_SQL_CHANGED
        return prev, REASON_CHANGE

    def _log_reset(self, name: str, reason: str) -> None:
        """osquery's status texts for a reset, plus the reason Quarry records on every row of the run."""
        if reason == REASON_FIRST_RUN:
            log.info("Storing initial results for new scheduled query: %s", name)
        elif reason == REASON_EPOCH:
            log.info("New Epoch %d for scheduled query %s: all rows are logged as added (reason: %s)",
                     self.epoch, name, reason)
        elif reason == REASON_SQL_CHANGED:
            log.info("Scheduled query has been updated: %s: Quarry starts a new baseline, all rows are "
                     "logged as added with counter 0 (reason: %s; osquery would diff against the old "
                     "SQL's rows)",
                     name, reason)
        else:
            log.warning("Previous results of scheduled query %s are unreadable (%s): all rows are logged as "
                        "added with counter 0 (reason: %s)", name, self._problem, reason)

    def _baseline(self, name: str) -> float:
        data = self.state.get(DOMAIN, name) or {}
        value = data.get("baseline", 0.0) if isinstance(data, dict) else 0.0
        return float(value) if isinstance(value, int | float) else 0.0

    def _reset_baseline(self, run: QueryRun) -> float:
        self.state.put(DOMAIN, run.query.name, {"baseline": run.started})
        return run.started

    def _diff(self, run: QueryRun, current: list[Row], prev: Results | None, reason: str) -> DiffResult:
        q = run.query
        if prev is None:
            self._log_reset(q.name, reason)
            baseline = self._reset_baseline(run)
            self.state.save_results(Results(q.name, q.sql, self.epoch, 0, current))
            return DiffResult(q.name, current, [], self.epoch, 0, reason, baseline=baseline)
        added, removed = multiset_diff(prev.rows, current)
        counter = prev.counter
        if added or removed:
            counter += 1
            self.state.save_results(Results(q.name, q.sql, self.epoch, counter, current))
        return DiffResult(q.name, added, removed if q.removed else [], self.epoch, counter, reason,
                          baseline=self._baseline(q.name))

    def _events(self, run: QueryRun, current: list[Row], prev: Results | None, reason: str) -> DiffResult:
        q = run.query
        if prev is None:
            if not current:
                # Nothing to log and nothing to count: the next run with events is still the first one.
                return DiffResult(q.name, [], [], self.epoch, 1, reason, baseline=run.started)
            self._log_reset(q.name, reason)
            baseline, counter = self._reset_baseline(run), 1
        else:
            baseline, counter = self._baseline(q.name), prev.counter + (1 if current else 0)
        if current:
            # Events are never diffed: the stored set stays empty, only epoch/SQL/counter are kept.
            self.state.save_results(Results(q.name, q.sql, self.epoch, counter, []))
        return DiffResult(q.name, current, [], self.epoch, counter, reason, baseline=baseline)


_STORED_VALUE = (str, int, float, type(None))


def _checked_rows(name: str, rows: Iterable[object]) -> list[Row]:
    """Stored rows, validated: anything but objects of text/number values means the state is unreadable."""
    out: list[Row] = []
    for r in rows:
        if type(r) is not dict or not all(type(v) in _STORED_VALUE for v in r.values()):
            raise StateError(f"stored results of {name} hold a row that is not an object of values: "
                             f"{r!r:.80}")
        out.append(normalize(r))
    return out
