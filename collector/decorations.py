"""osquery's decorators as the scheduler runs them (fact sheet §1.8).

`load` queries run when the config is loaded or reloaded, `interval` ones when the clock reaches a multiple of
their key (seconds), `always` ones before every scheduled query (in that query's worker). The SQL is run by
the daemon's `run_decorators(kind, queries) -> dict[str, str]` (e.g. EnginePool.decorate: first row of each
query, values as strings). Merge order, later wins: load, interval keys ascending, always.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor

from collector.model import Decorators
from collector.splay import next_multiple

log = logging.getLogger("quarry.scheduler")

RunDecorators = Callable[[str, Sequence[str]], dict[str, str]]


class Decorations:
    def __init__(self, decorators: Decorators, run: RunDecorators | None, executor: Executor) -> None:
        self.decorators = decorators
        self._run = run
        self._executor = executor
        self._load: dict[str, str] = {}
        self._interval: dict[int, dict[str, str]] = {}
        self.next: dict[int, float] = {}  # interval key -> next clock time it runs

    def current(self) -> dict[str, str]:
        """load + interval decorations; called from worker threads, so it reads one snapshot of each."""
        merged, interval = dict(self._load), self._interval
        for key in sorted(interval):
            merged.update(interval[key])
        return merged

    def for_run(self) -> dict[str, str]:
        """In a worker thread, right before a query: current() plus the `always` decorators run now."""
        merged = self.current()
        if self.decorators.always and self._run is not None:
            try:
                merged.update(self._run("always", self.decorators.always))
            except Exception:  # a broken decorator must not stop the query
                log.exception("always decorators failed")
        return merged

    def replace(self, decorators: Decorators, now: float) -> None:
        keys = dict(decorators.interval)
        self.decorators = decorators
        self._interval = {k: v for k, v in self._interval.items() if k in keys}
        self.place(now)

    def place(self, now: float) -> None:
        self.next = {k: next_multiple(now, k) for k, _ in self.decorators.interval}

    def due(self, now: float, epsilon: float) -> list[int]:
        """Interval keys whose time has come (placed like queries: a jump back re-places, no replay)."""
        keys = []
        for key, at in list(self.next.items()):
            if at - now > key:
                self.next[key] = next_multiple(now, key)
            elif now >= at - epsilon:
                self.next[key] = next_multiple(max(now, at), key)
                keys.append(key)
        return keys

    async def load(self) -> None:
        if not self.decorators.load:
            self._load = {}
        elif self._run is not None:
            self._load = await self._decorate("load", self.decorators.load)

    async def interval(self, key: int) -> None:
        sqls = dict(self.decorators.interval).get(key)
        if sqls and self._run is not None:
            value = await self._decorate("interval", sqls)
            self._interval = {**self._interval, key: value}  # replaced, never mutated: workers read it

    async def _decorate(self, kind: str, sqls: Sequence[str]) -> dict[str, str]:
        assert self._run is not None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, kind, sqls)
        except Exception:  # task boundary: decorations are best effort
            log.exception("%s decorators failed", kind)
            return {}
