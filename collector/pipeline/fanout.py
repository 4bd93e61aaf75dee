"""The pipeline: every event to every (selected) shipper, each through its own lane.

    pipeline = Pipeline(shippers, settings, state_dir, render=render, on_status=on_status)
    await pipeline.start()
    await pipeline.submit(event)                        # every shipper
    await pipeline.submit(event, shippers=["kafka"])    # routing: the daemon picks the shippers
    await pipeline.submit_many(events)                  # one call per query run: cheaper
    pipeline.snapshot()                                 # {shipper name: metrics dict} for `quarry status`
    await pipeline.stop(grace=10)

`render(event, format) -> Record` is the daemon's: the pipeline knows no Event internals. An event is
rendered once per format in use and handed to each target lane.

When submit returns: each target shipper has accepted the event — spooled (written to the spool file,
safe from SIGKILL), queued in memory (shippers without a spool), or dropped under that shipper's
`when_full` policy (counted, reported). Backpressure: with `block`, submit waits while one target is full,
so the scheduler slows down. With a spool, "full" means the spool cap (1 GiB by default), not the queue: a
dead network sink stalls submit only after its spool filled up, and never if its policy is drop_*. Other
lanes keep sending what they have meanwhile; a lane never waits for another one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from collector.pipeline.api import Record, Shipper
from collector.pipeline.config import ShipperSettings
from collector.pipeline.metrics import StatusFn, StatusReporter, status_line
from collector.pipeline.runner import Runner, Stopped
from collector.pipeline.spool import WriteFn

log = logging.getLogger("quarry.pipeline")
RenderFn = Callable[[Any, str], Record]


class PipelineStopped(Exception):
    """submit() after stop() began."""


def _passthrough(event: Any, fmt: str) -> Record:
    if isinstance(event, Record):
        return event
    raise TypeError(f"no render function was given and {type(event).__name__} is not a Record")


class Pipeline:
    def __init__(self, shippers: Sequence[Shipper], settings: Mapping[str, ShipperSettings] | None = None,
                 state_dir: str | os.PathLike[str] = ".", *, render: RenderFn | None = None,
                 on_status: StatusFn | None = None, status_interval_s: float = 1.0,
                 log_interval_s: float = 60.0, spool_write: WriteFn = os.write) -> None:
        self.state_dir = Path(state_dir)
        self._render = render or _passthrough
        self.reporter = StatusReporter(on_status)
        self.status_interval_s, self.log_interval_s = status_interval_s, log_interval_s
        self.runners: dict[str, Runner] = {}
        for sh in shippers:
            if sh.name in self.runners:
                raise ValueError(f"two shippers are named {sh.name!r}")
            s = (settings or {}).get(sh.name) or ShipperSettings(name=sh.name, type=sh.type, format=sh.format)
            self.runners[sh.name] = Runner(sh, s, self.state_dir, reporter=self.reporter,
                                           spool_write=spool_write)
        # The shipper decides what it sends (elasticsearch defaults to ecs): render for its format, not the
        # settings' generic default.
        self._formats = {name: r.shipper.format for name, r in self.runners.items()}
        self._accepting = False
        self._task: asyncio.Task[None] | None = None

    @property
    def names(self) -> list[str]:
        return list(self.runners)

    async def start(self) -> None:
        """Open the spools (recovering after a crash) and start every lane; never waits for a destination."""
        started = []
        try:
            for r in self.runners.values():
                await r.start()
                started.append(r)
        except BaseException:  # e.g. a spool locked by another process: leave nothing running behind
            for r in started:
                r.abort()
            raise
        self._accepting = True
        self._task = asyncio.create_task(self._status_loop(), name="pipeline-status")

    async def submit(self, event: Any, shippers: Collection[str] | None = None) -> float:
        return await self.submit_many([event], shippers)

    async def submit_many(self, events: Iterable[Any], shippers: Collection[str] | None = None) -> float:
        """Hand events to each target shipper (all when `shippers` is None); see the module docstring.

        Returns the seconds spent (≈ 0 unless a `block` policy applied backpressure)."""
        start = time.monotonic()
        if not self._accepting:
            raise PipelineStopped("the pipeline is not accepting events")
        targets = self._targets(shippers)
        if not targets:
            return 0.0
        events = list(events)
        rendered: dict[str, list[Record]] = {}
        work = []
        for runner in targets:
            fmt = runner.shipper.format
            if fmt not in rendered:
                rendered[fmt] = self._render_all(events, fmt, runner)
            if rendered[fmt]:
                work.append(runner.put(rendered[fmt]))
        try:
            if len(work) == 1:
                await work[0]
            elif work:
                await asyncio.gather(*work)
        except Stopped as e:
            raise PipelineStopped(f"shipper {e} is stopping") from e
        return time.monotonic() - start

    def _targets(self, shippers: Collection[str] | None) -> list[Runner]:
        if shippers is None:
            return list(self.runners.values())
        unknown = [s for s in shippers if s not in self.runners]
        if unknown:
            raise ValueError(f"unknown shipper(s): {', '.join(unknown)} (configured: {', '.join(self.runners)})")
        return [self.runners[s] for s in shippers]

    def _render_all(self, events: list[Any], fmt: str, runner: Runner) -> list[Record]:
        render = self._render
        try:  # the common case in one comprehension; on a failure, again one by one to isolate it
            return [render(ev, fmt) for ev in events]
        except Exception:  # noqa: BLE001 - reported below, per event
            pass
        out = []
        for ev in events:
            try:
                out.append(self._render(ev, fmt))
            except Exception as e:  # the daemon's renderer failed on one event: count it, keep the rest
                log.exception("cannot render an event as %s", fmt)
                for r in self.runners.values():
                    if r.shipper.format == fmt:
                        r.metrics.drop("render_failed", 1)
                self.reporter.add("drop", runner.name, f"render as {fmt} failed: {e}", [], rows=1, size=0)
        return out

    def report(self, shipper: str, event: str, reason: str, records: list[Record]) -> None:
        """A drop, truncation or split decided outside the pipeline (routing, the daemon): counted, reported."""
        self.runners[shipper].report(event, reason, records)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: r.snapshot() for name, r in self.runners.items()}

    async def _status_loop(self) -> None:
        last_log = time.monotonic()
        while True:
            await asyncio.sleep(self.status_interval_s)
            self.reporter.flush()
            if time.monotonic() - last_log >= self.log_interval_s:
                last_log = time.monotonic()
                for name, snap in self.snapshot().items():
                    log.info("%s", status_line(name, snap))

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, drain every lane for up to `grace` seconds (together), leave the rest spooled."""
        self._accepting = False
        deadline = time.monotonic() + grace
        await asyncio.gather(*(r.stop(deadline) for r in self.runners.values()))
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.reporter.flush()
        for name, snap in self.snapshot().items():
            log.info("%s", status_line(name, snap))

    def abort(self) -> None:
        """Stop now: no drain, no fsync, no cursor save — the state SIGKILL leaves (for tests)."""
        self._accepting = False
        for r in self.runners.values():
            r.abort()
        if self._task is not None:
            self._task.cancel()
