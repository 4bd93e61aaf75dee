"""Clocks and recorders shared by the scheduler and watchdog tests."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

from collector.model import QueryRun, ScheduledQuery

START = 1_699_999_200.0  # a multiple of 3600 (and so of 5, 60, 600): runs land at known times


class FakeTime:
    """Simulated wall clock. sleep() first lets every in-flight run finish, then advances the clock by the
    requested delay plus an optional random lateness, so simulated days pass in milliseconds."""

    def __init__(self, start: float = START, jitter: float = 0.0, seed: int = 7) -> None:
        self.now = start
        self.jitter = jitter
        self.rng = random.Random(seed)
        self.sched: Any = None
        self.hook: Callable[[FakeTime], Any] | None = None  # called before each advance (jumps, reloads)

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        if self.sched is not None:
            await self.sched.wait_idle()
        if self.hook is not None:
            result = self.hook(self)
            if asyncio.iscoroutine(result):
                await result
        self.now += delay + (self.rng.uniform(0, self.jitter) if self.jitter else 0.0)
        await asyncio.sleep(0)


class ScaledTime:
    """Real time running `speed` times faster: integer-second intervals in tenths of real seconds."""

    def __init__(self, speed: float = 10.0, start: float = START) -> None:
        self.speed, self.start, self.m0 = speed, start, time.monotonic()

    def clock(self) -> float:
        return self.start + (time.monotonic() - self.m0) * self.speed

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay / self.speed)


class Recorder:
    """run_query + on_result that log what ran when (by the scheduler's clock)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.runs: list[tuple[str, float]] = []
        self.delivered: list[tuple[str, dict[str, str]]] = []
        self.behaviour: dict[str, Callable[[ScheduledQuery], QueryRun]] = {}

    def run_query(self, q: ScheduledQuery) -> QueryRun:
        now = self.clock()
        self.runs.append((q.name, now))
        if q.name in self.behaviour:
            return self.behaviour[q.name](q)
        return QueryRun(q, ["x"], [{"x": 1}], now)

    async def on_result(self, run: QueryRun, decorations: dict[str, str]) -> None:
        self.delivered.append((run.query.name, decorations))

    def times(self, name: str) -> list[float]:
        return [t for n, t in self.runs if n == name]
