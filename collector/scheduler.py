"""The schedule: when each query runs, in which worker, and what happens around the run.

    pool = EnginePool(root="/", runtime=runtime, limits=limits)
    sched = Scheduler(queries, state=state, run_query=pool.run, on_result=deliver,
                      decorators=config.decorators, run_decorators=pool.decorate, interrupt=pool.interrupt,
                      runtime=runtime, on_status=status_sink, workers=2, splay_percent=10, schedule_timeout=0)
    await sched.run()                 # until stop() or schedule_timeout
    change = await sched.update(new_queries, decorators=new_decorators)   # hot reload
    await sched.stop(timeout=10)

Timing (collector.splay): osquery's splay, kept across restarts; runs on multiples of the splayed interval
in Unix time, so nothing drifts; a late loop (host asleep, clock jumped forward) runs a query once, without
replaying missed runs; a clock jumped backwards re-places runs from the new time instead of stalling.

Execution: `run_query(query) -> QueryRun` runs in a bounded thread pool (`workers`), so a slow query stalls
neither the loop nor the other queries. A query due while its previous run still executes is skipped and
counted (`skipped`), never started twice. Results are delivered by awaiting `on_result(run, decorations)` on
the loop, one delivery at a time per query and in order; while it has not returned, that query's next due run
waits (it runs once delivery finishes, later runs collapse into it), and the wait is added to the query's
`backpressure_ms`, counted in `delayed_runs` and logged. Failed runs (QueryRun.error) are logged and counted,
not delivered, so a failure never looks like "every row removed". `on_result` must accept concurrent calls for
different queries.

Decorations (collector.decorations): `on_result` gets the decorations of that run (load, interval, then the
`always` ones run right before it); `Scheduler.decorations` holds the current load + interval ones.

Safety: the watchdog (collector.watchdog) finds running queries with running(), stops one with stop_query()
(the `interrupt(thread_id)` callable, e.g. EnginePool.interrupt), and denylists with denylist_query(). Denylisted
queries are skipped until expiry (`denylist: false` queries never are). Before each run the query's name is
recorded in State domain "executing_query" and cleared after, so a crash denylists it at the next start.
Counters (collector.querystats) live in State domain "stats" and feed Runtime.record_run. Each query's
timing (splayed interval, next due time, phase, waiting since) goes to Runtime.set_timing whenever it
changes, for Quarry's osquery_scheduler table: engine threads read it under the runtime's lock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from collector.decorations import Decorations, RunDecorators
from collector.model import Decorators, QueryRun, ScheduledQuery
from collector.querystats import QueryStats, StatsBook, output_size
from collector.runtime import Runtime
from collector.splay import next_multiple, splay, stored_splay
from collector.state import State
from collector.watchdog import EXECUTING_DOMAIN, Denylist, StatusCallback, emit_all, recover_crashed

__all__ = ["ScheduleChange", "Scheduler", "next_multiple", "splay"]

log = logging.getLogger("quarry.scheduler")

EPSILON = 0.001  # wake-up jitter tolerated when deciding that a run time has come


@dataclass
class ScheduleChange:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # SQL or interval changed: new splay, timing, counters
    updated: list[str] = field(default_factory=list)  # other fields changed; timing and counters kept
    unchanged: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        """For the reload log line: 'added: a, b; removed: c; changed: d' (or 'no change')."""
        parts = [f"{what}: {', '.join(names)}" for what, names in
                 (("added", self.added), ("removed", self.removed), ("changed", self.changed),
                  ("updated", self.updated)) if names]
        return "; ".join(parts) or "no change"


@dataclass(eq=False)
class _Entry:
    query: ScheduledQuery
    splayed: int
    next_run: float
    generation: int = 0  # bumped when SQL/interval change: a run of the old query is not delivered
    phase: str = "idle"  # idle | executing | delivering
    task: asyncio.Task[None] | None = None
    deferred: float | None = None  # monotonic time a due run started waiting for delivery (backpressure)
    waiting_since: float | None = None  # the same moment on the scheduler's clock (osquery_scheduler)
    thread_id: int | None = None
    stop_reason: str | None = None
    removed: bool = False
    denylisted: bool = False


class Scheduler:
    def __init__(self, queries: Iterable[ScheduledQuery], *, state: State,
                 run_query: Callable[[ScheduledQuery], QueryRun],
                 on_result: Callable[[QueryRun, dict[str, str]], Awaitable[None]],
                 workers: int = 2, splay_percent: int = 10, schedule_timeout: float = 0,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 decorators: Decorators | None = None, run_decorators: RunDecorators | None = None,
                 runtime: Runtime | None = None, interrupt: Callable[[int], Any] | None = None,
                 on_status: StatusCallback | None = None, lognames: bool = False, max_sleep: float = 1.0,
                 stop_timeout: float = 10.0, rng: random.Random | None = None) -> None:
        self.state = state
        self._run_query, self._on_result = run_query, on_result
        self.workers = max(1, workers)
        self.splay_percent = splay_percent
        self.schedule_timeout = schedule_timeout
        self._clock, self._sleep = clock, sleep
        self._interrupt = interrupt
        self._on_status = on_status
        self.lognames = lognames
        self.max_sleep = max_sleep  # the loop looks at the clock at least this often (suspend, clock jumps)
        self.stop_timeout = stop_timeout
        self._rng = rng or random.Random()
        self.stats = StatsBook(state, runtime)
        self._runtime = runtime
        self.denylist = Denylist(state)
        self.backpressure_ms = 0  # all queries, since start
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="quarry-query")
        self._decorations = Decorations(decorators or Decorators(), run_decorators, self._pool)
        self._entries: dict[str, _Entry] = {}
        self._tasks: set[asyncio.Future[None]] = set()
        self._wake = asyncio.Event()
        self._done = asyncio.Event()
        self._running = self._stopping = False
        now = self._clock()
        for q in _unique(queries):
            self._entries[q.name] = self._entry(q, now)

    # --- public ---------------------------------------------------------------------------------------------
    @property
    def decorations(self) -> dict[str, str]:
        """Current load + interval decorations (status logs); a run's own, with `always`, go to on_result."""
        return self._decorations.current()

    @property
    def decorators(self) -> Decorators:
        return self._decorations.decorators

    def queries(self) -> list[ScheduledQuery]:
        return [e.query for e in self._entries.values()]

    def query(self, name: str) -> ScheduledQuery | None:
        e = self._entries.get(name)
        return e.query if e else None

    def splayed_interval(self, name: str) -> int:
        return self._entries[name].splayed

    def next_run(self, name: str) -> float:
        return self._entries[name].next_run

    def query_stats(self, name: str) -> QueryStats | None:
        return self.stats.get(name)

    def running(self) -> dict[str, ScheduledQuery]:
        """Queries executing in a worker right now."""
        return {n: e.query for n, e in list(self._entries.items())
                if e.phase == "executing" and e.thread_id is not None}

    def stop_query(self, name: str, reason: str) -> bool:
        """Interrupt a running query; its run is reported failed with `reason`, partial rows dropped."""
        e = self._entries.get(name)
        tid = e.thread_id if e else None
        if e is None or tid is None:
            return False
        e.stop_reason = reason
        if self._interrupt is None:
            log.warning("%s: cannot interrupt (no interrupt callable); its result will be dropped", name)
            return False
        result = self._interrupt(tid)
        return result is None or bool(result)

    def denylist_query(self, name: str, until: float, cause: str) -> None:
        self.denylist.add(name, until)
        e = self._entries.get(name)
        if e is not None:
            e.denylisted = True
        self.stats.set_denylisted(name, until)
        log.warning("%s: denylisted until %s (%s)", name, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(until)),
                    cause)

    async def wait_idle(self) -> None:
        """Until no run is executing or being delivered (tests, orderly reloads)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def run(self) -> None:
        """Schedule until stop() or `schedule_timeout` seconds; then wait for running queries (stop_timeout)."""
        if self._running:
            raise RuntimeError("the scheduler is already running")
        self._running = True
        try:
            await self._start()
            await self._loop()
        finally:
            await self._drain(self.stop_timeout)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop scheduling; wait for running queries up to `timeout` (default stop_timeout), then interrupt."""
        if timeout is not None:
            self.stop_timeout = timeout
        self._stopping = True
        self._wake.set()
        if self._running:
            await self._done.wait()
        elif not self._done.is_set():
            await self._drain(self.stop_timeout)

    async def update(self, queries: Iterable[ScheduledQuery], decorators: Decorators | None = None) -> ScheduleChange:
        """Hot reload: unchanged SQL+interval keep next run, splay and counters; removed ones are cancelled."""
        change = ScheduleChange()
        new = {q.name: q for q in _unique(queries)}
        now = self._clock()
        for name in [n for n in self._entries if n not in new]:
            self.stop_query(name, "removed from the schedule")  # a run in flight is interrupted, not delivered
            self._entries.pop(name).removed = True
            self.stats.forget(name)
            change.removed.append(name)
        for name, q in new.items():
            e = self._entries.get(name)
            if e is None:
                added = self._entries[name] = self._entry(q, now)
                change.added.append(name)
                if self._running and q.run_at_start and not self._stopping:
                    self._due(added, now)
            elif e.query.sql == q.sql and e.query.interval == q.interval:
                (change.unchanged if e.query == q else change.updated).append(name)
                e.query = q
            else:
                e.generation += 1
                e.query, e.splayed = q, self._splay(q)
                e.next_run = next_multiple(now, e.splayed)
                e.denylisted = q.denylist and self.denylist.until(name, now) is not None
                self.stats.register(q)
                self._publish(e)
                change.changed.append(name)
        if decorators is not None:
            self._decorations.replace(decorators, now)
        if self._running:
            await self._decorations.load()
        self._wake.set()
        return change

    # --- loop -----------------------------------------------------------------------------------------------
    async def _start(self) -> None:
        now = self._clock()
        queries = {n: e.query for n, e in self._entries.items()}
        events = await asyncio.get_running_loop().run_in_executor(
            None, recover_crashed, self.state, self.denylist, queries, now)
        for event in events:
            if event["denylisted"] and event["query"] in self._entries:
                self._entries[event["query"]].denylisted = True
                self.stats.set_denylisted(event["query"], event["expiry"])
        await emit_all(self._on_status, events)
        if self._stopping:  # stop() came while the crash records were read: start no run
            return
        await self._decorations.load()
        now = self._clock()
        for e in self._entries.values():
            e.next_run = next_multiple(now, e.splayed)
            self._publish(e)
        self._decorations.place(now)
        startup = sorted((e for e in self._entries.values() if e.query.startup_priority is not None),
                         key=lambda e: (e.query.startup_priority, e.query.name))
        for e in self._entries.values():
            if e.query.run_at_start and e.query.startup_priority is None:
                self._due(e, now)
        if startup:
            self._track(asyncio.ensure_future(self._startup([e.query.name for e in startup])))

    async def _startup(self, names: list[str]) -> None:
        """osquery's startup_priority: run once at start, one after the other, ascending."""
        for name in names:
            e = self._entries.get(name)
            if e is None or self._stopping:
                continue
            self._due(e, self._clock())
            if e.task is not None:
                await asyncio.wait({e.task})

    async def _loop(self) -> None:
        elapsed, last = 0.0, self._clock()
        while not self._stopping:
            self._wake.clear()
            now = self._clock()
            elapsed += max(0.0, now - last)  # a clock jumped backwards does not extend schedule_timeout
            last = now
            if self.schedule_timeout and elapsed >= self.schedule_timeout:
                log.info("schedule_timeout of %s s reached: stopping the scheduler", self.schedule_timeout)
                return
            self._tick(now)
            wake = min([e.next_run for e in self._entries.values()] + list(self._decorations.next.values()),
                       default=now + self.max_sleep)
            delay = min(wake - now, self.max_sleep)
            if self.schedule_timeout:
                delay = min(delay, self.schedule_timeout - elapsed)
            sleeper = asyncio.ensure_future(self._sleep(max(0.0, delay)))
            waker = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            sleeper.cancel()
            waker.cancel()

    def _tick(self, now: float) -> None:
        for e in list(self._entries.values()):
            if e.next_run - now > e.splayed:
                log.info("%s: the clock went back; next run re-placed from the new time", e.query.name)
                e.next_run = next_multiple(now, e.splayed)
                self._publish(e)
            elif now >= e.next_run - EPSILON:
                if now - e.next_run >= e.splayed:
                    log.info("%s: %d run(s) missed (host asleep or clock jumped); running once", e.query.name,
                             int((now - e.next_run) // e.splayed))
                e.next_run = next_multiple(max(now, e.next_run), e.splayed)
                self._due(e, now)
        for key in self._decorations.due(now, EPSILON):
            self._track(asyncio.ensure_future(self._decorations.interval(key)))

    def _due(self, e: _Entry, now: float) -> None:
        name = e.query.name
        if self._denied(e, now):
            self.stats.bump(name, "denylist_skips")
            log.debug("%s: denylisted, not run", name)
        elif e.phase == "executing":
            self.stats.bump(name, "skipped")
            log.warning("%s: still running from its previous schedule; this run is skipped", name)
        elif e.phase == "delivering":
            if e.deferred is None:
                e.deferred, e.waiting_since = time.monotonic(), now
            else:
                self.stats.bump(name, "skipped")
        else:
            e.phase = "executing"  # before the task starts, so nothing can start it twice
            e.task = asyncio.ensure_future(self._cycle(e, e.generation))
            self._track(e.task)
            return  # the task publishes its timing
        self._publish(e)

    def _denied(self, e: _Entry, now: float) -> bool:
        # `denylist: false` queries are never kept denylisted (osquery), even with an entry left from before
        if e.query.denylist and self.denylist.until(e.query.name, now) is not None:
            e.denylisted = True
            return True
        if e.denylisted:
            e.denylisted = False
            self.stats.set_denylisted(e.query.name, None)
            log.info("%s: %s; the query runs again", e.query.name,
                     "denylist expired" if e.query.denylist else "denylist: false")
        return False

    async def _cycle(self, e: _Entry, generation: int) -> None:
        loop = asyncio.get_running_loop()
        name = e.query.name
        try:
            while True:
                e.phase, e.stop_reason = "executing", None
                self._publish(e)
                if self.lognames:
                    log.info("Executing scheduled query %s: %s", name, e.query.sql)
                run, decorations = await loop.run_in_executor(self._pool, self._execute, e, generation)
                if e.removed or e.generation != generation:
                    log.info("%s: result dropped: the query was removed or changed while it ran", name)
                    return
                if run.error is not None:
                    log.error("%s: query failed: %s", name, run.error)
                else:
                    e.phase = "delivering"
                    self._publish(e)
                    try:
                        await self._on_result(run, decorations)
                    except Exception:  # task boundary: one query's delivery failure must not stop the others
                        log.exception("%s: delivering the results failed", name)
                if e.deferred is None or self._stopping:
                    return
                waited = int((time.monotonic() - e.deferred) * 1000)
                e.deferred = e.waiting_since = None
                self.backpressure_ms += waited
                self.stats.delayed(name, waited, at=int(self._clock()))
                log.warning("%s: run delayed %.1f s by backpressure (the previous results were not yet accepted)",
                            name, waited / 1000)
                if self._denied(e, self._clock()):
                    return
        finally:
            e.phase, e.task, e.deferred, e.waiting_since = "idle", None, None, None
            self._publish(e)

    def _execute(self, e: _Entry, generation: int) -> tuple[QueryRun, dict[str, str]]:
        """In a worker thread: decorators `always`, the query, counters; the executing_query record around it."""
        query, name = e.query, e.query.name
        e.thread_id = threading.get_ident()
        self.state.put(EXECUTING_DOMAIN, name, self._clock())
        try:
            decorations = self._decorations.for_run()
            try:
                if e.stop_reason is not None:  # stopped while its decorators ran
                    run = QueryRun(query, [], [], self._clock(), error=e.stop_reason)
                else:
                    run = self._run_query(query)
            except Exception as ex:  # task boundary: run_query should return errors, but never kill the worker
                log.exception("%s: run_query raised", name)
                run = QueryRun(query, [], [], self._clock(), error=f"{type(ex).__name__}: {ex}")
        finally:
            e.thread_id = None
            self.state.delete(EXECUTING_DOMAIN, name)
        if e.stop_reason is not None:
            run.error, run.rows = e.stop_reason, []
            self.stats.bump(name, "stopped")
        if e.generation == generation and not e.removed:
            size = 0 if run.error is not None else output_size(run.rows)
            self.stats.record(name, run, output_size=size, finished=int(self._clock()))
        return run, decorations

    async def _drain(self, timeout: float) -> None:
        self._stopping = True
        pending = set(self._tasks)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=timeout)
        if pending:
            names = list(self.running())
            log.warning("stopping: interrupting queries still running after %s s: %s", timeout, ", ".join(names))
            for name in names:
                self.stop_query(name, "stopped: the scheduler is shutting down")
            _, pending = await asyncio.wait(pending, timeout=2.0)
            for task in pending:
                task.cancel()
        self.stats.save_all()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._done.set()

    # --- helpers --------------------------------------------------------------------------------------------
    def _entry(self, q: ScheduledQuery, now: float) -> _Entry:
        splayed = self._splay(q)
        self.stats.register(q)
        denied = q.denylist and self.denylist.until(q.name, now) is not None
        if denied:
            self.stats.set_denylisted(q.name, self.denylist.until(q.name, now))
        e = _Entry(q, splayed, next_multiple(now, splayed), denylisted=denied)
        self._publish(e)
        return e

    def _publish(self, e: _Entry) -> None:
        if self._runtime is not None and not e.removed:
            waiting = int(e.waiting_since) if e.waiting_since is not None else None
            self._runtime.set_timing(e.query.name, splayed_interval=e.splayed, next_run=int(e.next_run),
                                     phase=e.phase, waiting_since=waiting)

    def _splay(self, q: ScheduledQuery) -> int:
        return stored_splay(self.state, q, self.splay_percent, self._rng)

    def _track(self, task: asyncio.Future[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _unique(queries: Iterable[ScheduledQuery]) -> list[ScheduledQuery]:
    seen: dict[str, ScheduledQuery] = {}
    for q in queries:
        if q.name in seen:
            log.warning("%s: scheduled twice; the first definition is kept", q.name)
            continue
        seen[q.name] = q
    return list(seen.values())
