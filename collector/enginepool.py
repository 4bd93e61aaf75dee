"""One Engine per scheduler worker thread, and the blocking calls the scheduler runs in its pool.

apsw connections must not be shared between threads running at once, so each worker thread lazily builds
its own Engine. The pool remembers which engine belongs to which thread, so the watchdog can interrupt the
query a given worker is running.

    pool = EnginePool(root="/", runtime=runtime, limits=limits)
    Scheduler(..., run_query=pool.run, run_decorators=pool.decorate, interrupt=pool.interrupt)
"""

from __future__ import annotations

import logging
import os
import resource
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from collector.engine import Engine
from collector.errors import QuarryError
from collector.model import QueryRun, Row, ScheduledQuery
from collector.table import Limits

log = logging.getLogger("quarry.scheduler")

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    """Resident set size of this process (/proc/self/statm: cheap enough to read around every run)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class EnginePool:
    def __init__(self, *, root: str = "/", runtime: Any = None, limits: Limits | None = None,
                 timeout: float | None = None, factory: Callable[[], Engine] | None = None) -> None:
        """`factory` replaces Engine(root=, runtime=, limits=) (tests give engines with a few tables)."""
        self._factory = factory or (lambda: Engine(root=root, runtime=runtime, limits=limits))
        self.timeout = timeout  # per-query engine timeout, seconds; None = none
        self._local = threading.local()
        self._lock = threading.Lock()
        self._by_thread: dict[int, Engine] = {}

    def engine(self) -> Engine:
        """This thread's engine, built on first use."""
        engine: Engine | None = getattr(self._local, "engine", None)
        if engine is None:
            engine = self._local.engine = self._factory()
            with self._lock:
                self._by_thread[threading.get_ident()] = engine
        return engine

    def engine_for(self, thread_id: int) -> Engine | None:
        with self._lock:
            return self._by_thread.get(thread_id)

    def interrupt(self, thread_id: int) -> bool:
        """Interrupt whatever the engine of that worker thread runs; False when the thread has no engine."""
        engine = self.engine_for(thread_id)
        if engine is None:
            return False
        engine.interrupt()
        return True

    # --- the scheduler's callables (run in a worker thread) --------------------------------------------------
    def run(self, query: ScheduledQuery) -> QueryRun:
        """Execute one scheduled query, measuring wall, this thread's user/system CPU and RSS growth."""
        engine = self.engine()
        started = time.time()
        t0 = time.perf_counter()
        ru0 = resource.getrusage(resource.RUSAGE_THREAD)
        rss0 = rss_bytes()
        columns: list[str] = []
        rows: list[Row] = []
        warnings: list[str] = []
        error: str | None = None
        try:
            result = engine.query(query.sql, timeout=self.timeout)
            columns, rows, warnings = result.columns, result.dicts(), result.warnings
        except QuarryError as e:
            error = str(e)
        except Exception as e:  # task boundary: a table bug must not take the worker down
            log.exception("%s: unexpected failure", query.name)
            error = f"{type(e).__name__}: {e}"
        ru1 = resource.getrusage(resource.RUSAGE_THREAD)
        return QueryRun(
            query=query, columns=columns, rows=rows, started=started,
            wall_ms=int((time.perf_counter() - t0) * 1000),
            user_ms=int((ru1.ru_utime - ru0.ru_utime) * 1000),
            system_ms=int((ru1.ru_stime - ru0.ru_stime) * 1000),
            memory=max(0, rss_bytes() - rss0), error=error, warnings=warnings)

    def decorate(self, kind: str, queries: Sequence[str]) -> dict[str, str]:
        """osquery's decorators: the first row of each query, every column a string; later columns win."""
        engine = self.engine()
        out: dict[str, str] = {}
        for sql in queries:
            try:
                result = engine.query(sql, timeout=self.timeout)
            except QuarryError as e:
                log.warning("%s decorator failed: %s: %s", kind, sql, e)
                continue
            if not result.rows:
                continue
            if len(result.rows) > 1:
                log.warning("%s decorator returned %d rows, only the first is used: %s", kind, len(result.rows), sql)
            for column, value in zip(result.columns, result.rows[0]):
                out[column] = _text(value)
        return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
