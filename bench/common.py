"""Timing helpers: medians with min-max over repeated runs."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Timing:
    median: float
    low: float
    high: float
    runs: int

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
    return Timing(statistics.median(samples), min(samples), max(samples), runs)
