"""Per-query performance counters that survive restarts (osquery_schedule, plus what osquery lacks).

osquery keeps these in memory only, so every restart zeroes them (osquery#7694, fleet#15449). Quarry stores
one JSON record per scheduled query in State domain "stats" and restores it at start, as long as the
query's SQL and interval are the ones the counters were measured with (osquery's Runtime/osquery_schedule
also starts a new row when either changes).

    stats = StatsBook(state, runtime)
    s = stats.register(query)            # restored or fresh; also registers the osquery_schedule row
    stats.record(query.name, run, output_size=..., finished=...)   # from any thread
    stats.delayed(query.name, waited_ms, at=...)                   # a run held back by backpressure
    stats.save(query.name)

The runtime gets the osquery_schedule counters and, for Quarry's osquery_scheduler, the failures, skips and
backpressure delays (the scheduler adds its timing there itself).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

import orjson

from collector.model import QueryRun, Row, ScheduledQuery
from collector.runtime import Runtime
from collector.state import State

log = logging.getLogger("quarry.scheduler")

DOMAIN = "stats"

# Counters shared with collector.runtime.ScheduleStats (the osquery_schedule columns), restored into it.
_RUNTIME_FIELDS = ("executions", "last_executed", "denylisted", "output_size", "wall_time_ms",
                   "last_wall_time_ms", "user_time", "last_user_time", "system_time", "last_system_time",
                   "average_memory", "last_memory")
# Counters shown in collector.runtime.QueryTiming (Quarry's osquery_scheduler), restored into it.
_DELAY_FIELDS = ("delayed_runs", "backpressure_ms", "last_backpressure_ms", "last_delay_time")
_TIMING_FIELDS = (*_DELAY_FIELDS, "skipped", "errors", "last_error", "last_error_time")


@dataclass
class QueryStats:
    sql: str
    interval: int
    executions: int = 0
    last_executed: int = 0  # unix time the last execution finished
    output_size: int = 0  # bytes of JSON rows produced, all executions
    last_output_size: int = 0
    rows: int = 0
    last_rows: int = 0
    wall_time_ms: int = 0
    last_wall_time_ms: int = 0
    user_time: int = 0  # ms
    last_user_time: int = 0
    system_time: int = 0  # ms
    last_system_time: int = 0
    average_memory: int = 0  # bytes
    last_memory: int = 0
    errors: int = 0
    last_error: str | None = None
    last_error_time: int = 0
    skipped: int = 0  # due while the previous run was still executing (never started twice)
    denylist_skips: int = 0  # due while denylisted
    stopped: int = 0  # interrupted by the watchdog
    denylisted: bool = False
    denylisted_until: int = 0  # unix time; 0 when not denylisted
    backpressure_ms: int = 0  # total time runs waited because on_result had not accepted the previous one
    last_backpressure_ms: int = 0
    delayed_runs: int = 0  # runs that waited so (backpressure_ms is their total wait)
    last_delay_time: int = 0  # unix time the last delayed run could start

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QueryStats | None:
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            return None

    def fold(self, run: QueryRun, *, output_size: int, finished: int) -> None:
        """One execution, as osquery's Config::recordQueryPerformance folds it (failed runs count too)."""
        self.executions += 1
        self.last_executed = finished
        self.output_size += output_size
        self.last_output_size = output_size
        self.rows += len(run.rows)
        self.last_rows = len(run.rows)
        self.wall_time_ms += run.wall_ms
        self.last_wall_time_ms = run.wall_ms
        self.user_time += run.user_ms
        self.last_user_time = run.user_ms
        self.system_time += run.system_ms
        self.last_system_time = run.system_ms
        self.average_memory = (self.average_memory * (self.executions - 1) + run.memory) // self.executions
        self.last_memory = run.memory
        if run.error is not None:
            self.errors += 1
            self.last_error = run.error
            self.last_error_time = finished


class StatsBook:
    """The counters of every scheduled query; thread-safe (workers fold runs, the loop reads)."""

    def __init__(self, state: State, runtime: Runtime | None = None) -> None:
        self.state = state
        self.runtime = runtime
        self._lock = threading.Lock()
        self._stats: dict[str, QueryStats] = {}

    def register(self, query: ScheduledQuery) -> QueryStats:
        """Restore the stored counters when SQL and interval match, else start afresh."""
        stored = self.state.get(DOMAIN, query.name)
        stats = QueryStats.from_dict(stored) if isinstance(stored, dict) else None
        if stats is None or stats.sql != query.sql or stats.interval != query.interval:
            if stats is not None:
                log.info("%s: SQL or interval changed, performance counters start afresh", query.name)
            stats = QueryStats(query.sql, query.interval)
        with self._lock:
            self._stats[query.name] = stats
        if self.runtime is not None:
            row = self.runtime.add_query(query.name, query.sql, query.interval)
            with self.runtime.lock:
                for name in _RUNTIME_FIELDS:
                    setattr(row, name, getattr(stats, name))
            self.runtime.set_timing(query.name, **{name: getattr(stats, name) for name in _TIMING_FIELDS})
        return stats

    def forget(self, name: str) -> None:
        """The query left the schedule: its osquery_schedule row goes; the stored record stays for a return."""
        with self._lock:
            self._stats.pop(name, None)
        if self.runtime is not None:
            self.runtime.remove_query(name)

    def get(self, name: str) -> QueryStats | None:
        with self._lock:
            s = self._stats.get(name)
            return QueryStats(**asdict(s)) if s is not None else None

    def all(self) -> dict[str, QueryStats]:
        with self._lock:
            return {n: QueryStats(**asdict(s)) for n, s in self._stats.items()}

    def record(self, name: str, run: QueryRun, *, output_size: int, finished: int) -> None:
        with self._lock:
            stats = self._stats.get(name)
            if stats is None:
                return
            stats.fold(run, output_size=output_size, finished=finished)
            errors = stats.errors
        if self.runtime is not None:
            try:
                self.runtime.record_run(name, wall_ms=run.wall_ms, user_ms=run.user_ms, system_ms=run.system_ms,
                                        memory=run.memory, output_size=output_size, finished=finished)
            except KeyError:
                pass  # removed from the runtime by a reload while it ran
            if run.error is not None:
                self.runtime.set_timing(name, errors=errors, last_error=run.error, last_error_time=finished)
        self.save(name)

    def bump(self, name: str, counter: str, amount: int = 1, *, last: str | None = None) -> None:
        """Add to one counter (skipped, denylist_skips, stopped), optionally setting a last_*."""
        with self._lock:
            stats = self._stats.get(name)
            if stats is None:
                return
            setattr(stats, counter, getattr(stats, counter) + amount)
            if last is not None:
                setattr(stats, last, amount)
            shown = {k: getattr(stats, k) for k in (counter, last) if k in _TIMING_FIELDS}
        if shown and self.runtime is not None:
            self.runtime.set_timing(name, **shown)

    def delayed(self, name: str, waited_ms: int, *, at: int) -> None:
        """A run that waited `waited_ms` for the previous results' delivery (backpressure) starts at `at`."""
        with self._lock:
            stats = self._stats.get(name)
            if stats is None:
                return
            stats.delayed_runs += 1
            stats.backpressure_ms += waited_ms
            stats.last_backpressure_ms = waited_ms
            stats.last_delay_time = at
            shown = {k: getattr(stats, k) for k in _DELAY_FIELDS}
        if self.runtime is not None:
            self.runtime.set_timing(name, **shown)

    def set_denylisted(self, name: str, until: float | None) -> None:
        with self._lock:
            stats = self._stats.get(name)
            if stats is None:
                return
            stats.denylisted = until is not None
            stats.denylisted_until = int(until) if until is not None else 0
        if self.runtime is not None:
            with self.runtime.lock:
                row = self.runtime.schedule.get(name)
                if row is not None:
                    row.denylisted = until is not None
        self.save(name)

    def save(self, name: str) -> None:
        with self._lock:
            stats = self._stats.get(name)
            data = stats.to_dict() if stats is not None else None
        if data is not None:
            self.state.put(DOMAIN, name, data)

    def save_all(self) -> None:
        for name in list(self._stats):
            self.save(name)


def output_size(rows: list[Row]) -> int:
    """Bytes of the rows as JSON: osquery_schedule's output_size (bytes are decoded as the loggers do)."""
    return len(orjson.dumps(rows, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
