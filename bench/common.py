"""Timing helpers: medians with min-max over repeated runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timing:
    median: float
    low: float
    high: float
    runs: int
    samples: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, samples: list[float]) -> Timing:
        return cls(statistics.median(samples), min(samples), max(samples), len(samples), list(samples))

    def ms(self) -> str:
        return f"{self.median * 1000:.2f} ms (min {self.low * 1000:.2f}, max {self.high * 1000:.2f}, n={self.runs})"


def measure(fn: Callable[[], object], runs: int = 7, warmup: int = 1) -> Timing:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return Timing(statistics.median(samples), min(samples), max(samples), runs, samples)


def figure(name: str, samples: list[float], unit: str, *, better: str = "higher",
           baseline: str | list[str] | None = None, note: str = "") -> dict[str, Any]:
    """One reported figure: every run's value (the report shows median and min-max) and, when a peer was
    measured in the same run, the name(s) of the baseline figure(s) in the same section to divide by."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', not {better!r}")
    if not samples:
        raise ValueError(f"figure {name!r} has no samples")
    bases = [baseline] if isinstance(baseline, str) else list(baseline or [])
    return {"name": name, "unit": unit, "samples": [float(x) for x in samples], "better": better,
            "baseline": bases, "note": note}


def rates(events: int, seconds: list[float]) -> list[float]:
    """events/s for each timed run."""
    return [events / s for s in seconds]


async def send_batches(shipper: Any, batches: list[list[Any]], concurrency: int) -> float:
    """Seconds for `concurrency` workers to encode and send every batch through one opened shipper.

    Exits with the first non-delivered outcome: a throughput figure is only meaningful when all arrived.
    """
    import asyncio

    from collector.pipeline.api import Delivered

    todo = list(reversed(batches))
    failed: list[tuple[int, Any]] = []

    async def worker() -> None:
        while todo:
            batch = todo.pop()
            out = await shipper.send(shipper.encode(batch))
            if out != Delivered():
                failed.append((len(batch), out))

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    dt = time.perf_counter() - t
    if failed:
        raise SystemExit(f"{shipper.name}: {sum(n for n, _ in failed)} events not delivered, first: {failed[0][1]}")
    return dt
