"""osquery's watchdog, in process: CPU and memory limits, stopping and denylisting the queries that break them.

osquery runs a watcher process that kills the whole worker (osquery/core/watcher.cpp). Quarry's queries run in
worker threads, so the watchdog interrupts the guilty queries' engines instead and keeps everything else
running. The limits and arithmetic are osquery's (fact sheet §5.1):

- levels: normal (0) 200 MB / 10 % / 12 s, restrictive (1) 100 MB / 5 % / 6 s, disabled (-1) 10000 / 100 / 1000;
  `--watchdog_memory_limit` (MB), `--watchdog_utilization_limit` (%), `--watchdog_latency_limit` (s) override;
- every check (3 s; this process's os.times() and /proc/self/statm) the CPU used may be
  `cores * check_ms * limit% / 100` ms; consecutive over-limit checks accumulate and the limit is broken once
  they last `latency` seconds;
- memory: the resident size minus the resident size at start must stay under the limit;
- no enforcement during `--watchdog_delay` seconds after start.

On a breach every query running at that moment is interrupted and denylisted for 24 h (State domain
"denylist": name -> expiry epoch) unless it says `denylist: false`; if none is running any more, the queries
seen running during the over-limit window are denylisted (osquery misses those: osquery#7476). Each stop and
each denylisting is a status event, `on_status(dict)`, so the shippers carry it (osquery#3604, #6790):

    {"event": "watchdog", "action": "stopped" | "denylisted" | "failed" | "exceeded", "query": NAME | None,
     "cause": "cpu" | "memory" | "crash", "value": measured, "limit": limit, "unit": "percent" | "bytes" | None,
     "duration_s": seconds over the limit, "stopped": bool, "denylisted": bool, "expiry": epoch | None,
     "pid": pid, "time": epoch, "severity": "warning", "message": text}

("denylisted": denylisted without being stopped, e.g. after a crash; "failed": a crash of a `denylist: false`
query; "exceeded": over the limits with no scheduled query to blame.)

Crash recovery is osquery's rule too: the scheduler records each query in State domain "executing_query"
before it runs and clears it after; names still there at start were running when the previous process died
("Scheduled query may have failed: NAME") and are denylisted (`recover_crashed`).
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import inspect
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from collector.enginepool import rss_bytes
from collector.model import ScheduledQuery
from collector.state import State

log = logging.getLogger("quarry.watchdog")

DENYLIST_DOMAIN = "denylist"
EXECUTING_DOMAIN = "executing_query"
DENYLIST_DURATION = 86400  # osquery: failed queries are denylisted for a day

# level: (memory MB, utilization %, latency s) — osquery's kWatchdogLimits
LEVELS: dict[int, tuple[int, int, int]] = {0: (200, 10, 12), 1: (100, 5, 6), -1: (10000, 100, 1000)}

StatusCallback = Callable[[dict[str, Any]], Awaitable[None] | None]


@dataclass(frozen=True)
class WatchdogLimits:
    memory_mb: float
    utilization: float  # percent of all logical CPUs
    latency: float  # seconds over the CPU limit before it counts as broken
    interval: float = 3.0  # seconds between checks

    @classmethod
    def for_level(cls, level: int = 0, *, memory_limit: float = 0, utilization_limit: float = 0,
                  latency_limit: float = 0, interval: float = 3.0) -> WatchdogLimits:
        """osquery's --watchdog_level with the --watchdog_*_limit overrides (0 = the level's value)."""
        if level not in LEVELS:
            raise ValueError(f"watchdog_level must be 0 (normal), 1 (restrictive) or -1 (disabled), not {level}")
        memory, utilization, latency = LEVELS[level]
        return cls(memory_limit or memory, utilization_limit or utilization, latency_limit or latency, interval)


class Denylist:
    """Denylisted query names and their expiry, mirrored in State domain "denylist" (name -> epoch)."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._until: dict[str, float] = {}
        for name, value in state.items(DENYLIST_DOMAIN):
            if isinstance(value, (int, float)):
                self._until[name] = float(value)

    def add(self, name: str, until: float) -> None:
        self._until[name] = until
        self.state.put(DENYLIST_DOMAIN, name, int(until))

    def remove(self, name: str) -> None:
        if self._until.pop(name, None) is not None:
            self.state.delete(DENYLIST_DOMAIN, name)

    def until(self, name: str, now: float) -> float | None:
        """The expiry when `name` is denylisted at `now`; an expired entry is dropped."""
        until = self._until.get(name)
        if until is None:
            return None
        if until <= now:
            self.remove(name)
            return None
        return until

    def active(self, now: float) -> dict[str, float]:
        """name -> expiry of every entry still in force (config selection's `denylisted=` takes this)."""
        return {n: u for n, u in list(self._until.items()) if self.until(n, now) is not None}


def status_event(*, action: str, query: str | None, cause: str, value: float | None, limit: float | None,
                 unit: str | None, stopped: bool, expiry: float | None, now: float, message: str,
                 duration_s: float | None = None) -> dict[str, Any]:
    return {"event": "watchdog", "action": action, "query": query, "cause": cause, "value": value,
            "limit": limit, "unit": unit, "duration_s": duration_s, "stopped": stopped,
            "denylisted": expiry is not None, "expiry": int(expiry) if expiry is not None else None,
            "pid": os.getpid(), "time": int(now), "severity": "warning", "message": message}


def recover_crashed(state: State, denylist: Denylist, queries: Mapping[str, ScheduledQuery], now: float,
                    duration: float = DENYLIST_DURATION) -> list[dict[str, Any]]:
    """Denylist the queries that were executing when the previous process died; returns status events."""
    events = []
    for name, _started in list(state.items(EXECUTING_DOMAIN)):
        state.delete(EXECUTING_DOMAIN, name)
        log.warning("Scheduled query may have failed: %s", name)
        query = queries.get(name)
        deny = query is None or query.denylist
        expiry = now + duration if deny else None
        if expiry is not None:
            denylist.add(name, expiry)
        message = (f"Scheduled query may have failed: {name} (it was running when the previous process ended)"
                   + (f"; denylisted until {_iso(expiry)}" if expiry is not None else "; not denylisted (denylist: false)"))
        events.append(status_event(action="denylisted" if deny else "failed", query=name, cause="crash",
                                   value=None, limit=None, unit=None, stopped=False, expiry=expiry, now=now,
                                   message=message))
    return events


class Supervised(Protocol):
    """What the watchdog needs from the scheduler."""

    def running(self) -> Mapping[str, ScheduledQuery]: ...

    def query(self, name: str) -> ScheduledQuery | None: ...

    def stop_query(self, name: str, reason: str) -> bool: ...

    def denylist_query(self, name: str, until: float, cause: str) -> None: ...


def process_sample() -> tuple[float, int]:
    """(user + system CPU seconds of all threads, resident bytes) of this process."""
    t = os.times()
    return t.user + t.system, rss_bytes()


class Watchdog:
    def __init__(self, scheduler: Supervised, limits: WatchdogLimits, *, delay: float = 60.0,
                 on_status: StatusCallback | None = None, sample: Callable[[], tuple[float, int]] = process_sample,
                 cores: int | None = None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 duration: float = DENYLIST_DURATION) -> None:
        self.scheduler = scheduler
        self.limits = limits
        self.delay = delay
        self.on_status = on_status
        self._sample = sample
        self.cores = cores or os.cpu_count() or 1
        self._clock, self._mono, self._sleep = clock, monotonic, sleep
        self.duration = duration
        self.events: deque[dict[str, Any]] = deque(maxlen=1000)  # the latest status events, for introspection
        self._stopping = asyncio.Event()
        self._started = self._mono()
        self._last: tuple[float, float] | None = None  # (monotonic, cpu seconds)
        self._baseline: int | None = None
        self._rebaseline = False
        self._over_s = 0.0  # consecutive seconds over the CPU limit
        self._window: dict[str, ScheduledQuery] = {}  # queries seen running while over the CPU limit

    async def run(self) -> None:
        """Check every `limits.interval` seconds until stop()."""
        self._started = self._mono()
        self.check()  # baseline: the footprint at start
        while not self._stopping.is_set():
            sleeper = asyncio.ensure_future(self._sleep(self.limits.interval))
            waker = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            for t in (sleeper, waker):
                t.cancel()
            if self._stopping.is_set():
                break
            for event in self.check():
                await self._emit(event)

    def stop(self) -> None:
        self._stopping.set()

    def check(self) -> list[dict[str, Any]]:
        """One watchdog check; returns the status events of what it stopped or denylisted."""
        now_mono = self._mono()
        cpu, rss = self._sample()
        last, self._last = self._last, (now_mono, cpu)
        if self._baseline is None or self._rebaseline:
            self._baseline = max(self._baseline or 0, rss)
            self._rebaseline = False
            return []
        if last is None or now_mono <= last[0]:
            return []
        elapsed = now_mono - last[0]
        used_ms = (cpu - last[1]) * 1000
        allowed_ms = self.cores * elapsed * 1000 * self.limits.utilization / 100
        utilization = used_ms / (self.cores * elapsed * 1000) * 100
        running = dict(self.scheduler.running())
        if used_ms > allowed_ms:
            self._over_s += elapsed
            self._window.update(running)
        else:
            self._over_s = 0.0
            self._window.clear()
        if now_mono - self._started < self.delay:
            return []
        memory = rss - self._baseline
        memory_limit = int(self.limits.memory_mb * 1024 * 1024)
        if memory > memory_limit:
            log.warning("Quarry (%d) memory limits exceeded: %d bytes over the start footprint (limit %d)",
                        os.getpid(), memory, memory_limit)
            events = self._enforce("memory", memory, memory_limit, "bytes", running, running)
            self._release_memory()
            return events
        if self._over_s >= self.limits.latency:
            log.warning("Quarry (%d) system performance limits exceeded: CPU %.1f%% > %s%% for %.1f s",
                        os.getpid(), utilization, self.limits.utilization, self._over_s)
            blamed = running or dict(self._window)
            events = self._enforce("cpu", round(utilization, 1), self.limits.utilization, "percent", running,
                                   blamed, duration=round(self._over_s, 1))
            self._over_s = 0.0
            self._window.clear()
            return events
        return []

    # --- internals ------------------------------------------------------------------------------------------
    def _enforce(self, cause: str, value: float, limit: float, unit: str, running: Mapping[str, ScheduledQuery],
                 blamed: Mapping[str, ScheduledQuery], duration: float | None = None) -> list[dict[str, Any]]:
        now = self._clock()
        what = (f"CPU {value}% over the {limit}% limit for {duration} s" if cause == "cpu"
                else f"memory {value} bytes over the start footprint, limit {limit}")
        if not blamed:
            message = f"Quarry exceeded its watchdog limits ({what}) while no scheduled query was running"
            log.warning("%s", message)
            return [status_event(action="exceeded", query=None, cause=cause, value=value, limit=limit, unit=unit,
                                 stopped=False, expiry=None, now=now, message=message, duration_s=duration)]
        events = []
        for name, query in sorted(blamed.items()):
            current = self.scheduler.query(name) or query
            stopped = name in running and self.scheduler.stop_query(name, f"stopped by the watchdog: {what}")
            expiry = now + self.duration if current.denylist else None
            if expiry is not None:
                self.scheduler.denylist_query(name, expiry, cause)
            verb = "stopped" if stopped else "ran while the limit was exceeded"
            tail = (f"; denylisted until {_iso(expiry)}" if expiry is not None
                    else "; not denylisted (denylist: false)")
            message = f"Query {name} {verb}: {what}{tail}"
            log.warning("%s", message)
            events.append(status_event(action="stopped" if stopped else "denylisted", query=name, cause=cause,
                                       value=value, limit=limit, unit=unit, stopped=stopped, expiry=expiry,
                                       now=now, message=message, duration_s=duration))
        return events

    def _release_memory(self) -> None:
        # The interrupted query's memory goes back to the allocator, not always to the OS; without a new
        # baseline every later check would blame whatever query runs next (osquery respawns the worker).
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        self._rebaseline = True

    async def _emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if self.on_status is None:
            return
        try:
            result = self.on_status(event)
            if inspect.isawaitable(result):
                await result
        except Exception:  # task boundary: a failing status sink must not stop the watchdog
            log.exception("status callback failed for %s", event.get("query"))


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


async def emit_all(on_status: StatusCallback | None, events: Iterable[dict[str, Any]]) -> None:
    """Deliver status events through a sync or async callback (used by the scheduler for crash recovery)."""
    if on_status is None:
        return
    for event in events:
        try:
            result = on_status(event)
            if inspect.isawaitable(result):
                await result
        except Exception:  # task boundary
            log.exception("status callback failed for %s", event.get("query"))
