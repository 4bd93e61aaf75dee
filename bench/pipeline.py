"""Pipeline benchmark: memory with a dead sink, and spool drain rate with an instant sink (prints, no asserts).

    python -m bench.pipeline [--events 1000000] [--size 500] [--dir DIR]

Phase 1: a sink that answers Retry to everything; `--events` events (~`--size` bytes of payload each, an
osquery results line shape) are submitted in runs of 1000 with default settings (spool on, 64 MiB
segments, 1 GiB cap, read-ahead queue 10,000 events). Prints peak RSS (target < 150 MB) and the submit rate.
Phase 2: the sink comes back answering Delivered at once; prints how fast the spool backlog drains
(target >= 50k events/s) with the default batch (1000 events / 1 MB) and concurrency 2.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import tempfile
import time
from pathlib import Path

import orjson

from collector.pipeline import Delivered, Health, Pipeline, Record, Request, Retry, ShipperSettings


class Sink:
    name, type, format = "bench", "bench", "osquery"

    def __init__(self) -> None:
        self.dead = True
        self.delivered = 0

    async def open(self) -> None:
        pass

    async def healthcheck(self) -> Health:
        return Health(True)

    def encode(self, batch: list[Record]) -> Request:
        return Request(records=batch, body=None, size=0)

    async def send(self, request: Request) -> Delivered | Retry:
        if self.dead:
            return Retry("down", after=3600)
        self.delivered += len(request.records)
        return Delivered()

    async def close(self) -> None:
        pass


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def records(start: int, n: int, size: int, host: str = "bench-host") -> list[Record]:
    out = []
    for i in range(start, start + n):
        line = orjson.dumps({"name": "pack_bench_processes", "hostIdentifier": host, "calendarTime":
                             "Thu Jan  1 00:00:00 2026 UTC", "unixTime": 1767225600, "epoch": 0, "counter": i,
                             "numerics": False, "columns": {"pid": str(i), "cmdline": "x" * size},
                             "action": "added"})
        out.append(Record(id=f"{i:016x}", payload=line, name="pack_bench_processes", table="processes",
                          time=1767225600.0, host=host))
    return out


async def run(events: int, size: int, state: Path) -> None:
    sink = Sink()
    settings = ShipperSettings(name="bench", type="bench")
    p = Pipeline([sink], {"bench": settings}, state, log_interval_s=3600)
    await p.start()
    base = rss_mb()
    peak = base
    t0 = time.perf_counter()
    for i in range(0, events, 1000):
        await p.submit_many(records(i, min(1000, events - i), size))
        if i % 50_000 == 0:
            peak = max(peak, rss_mb())
    took = time.perf_counter() - t0
    await asyncio.sleep(0.5)
    snap = p.snapshot()["bench"]
    peak = max(peak, rss_mb())
    print(f"phase 1 (dead sink): {events:,} events submitted in {took:.2f}s = {events / took:,.0f} events/s")
    print(f"  RSS: start {base:.1f} MB, peak sampled {peak:.1f} MB, "
          f"ru_maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MB (target < 150 MB)")
    print(f"  queued (read-ahead) {snap['queued_events']:,} events / {snap['queued_bytes'] / 1e6:.1f} MB, "
          f"spool {snap['spool_events']:,} events / {snap['spool_bytes'] / 1e6:.1f} MB in "
          f"{snap['spool_segments']} segments, in flight {snap['in_flight']}")
    sink.dead = False
    # the retries sleep for their Retry-After; restart the pipeline so the drain starts now, as after an
    # outage where the next attempt succeeds (this also measures recovery from the spool on start)
    await p.stop(0)
    t1 = time.perf_counter()
    sink2 = Sink()
    sink2.dead = False
    p2 = Pipeline([sink2], {"bench": settings}, state, log_interval_s=3600)
    await p2.start()
    opened = time.perf_counter() - t1
    t2 = time.perf_counter()
    while p2.snapshot()["bench"]["spool_events"]:
        await asyncio.sleep(0.01)
    drain = time.perf_counter() - t2
    print(f"phase 2 (instant sink): reopened the spool in {opened * 1000:.0f} ms; drained {sink2.delivered:,} "
          f"events in {drain:.2f}s = {sink2.delivered / drain:,.0f} events/s (target >= 50,000)")
    print(f"  RSS after drain {rss_mb():.1f} MB, ratio drain/target = {sink2.delivered / drain / 50_000:.2f}x")
    await p2.stop(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=300, help="padding bytes per event (payload ~ size + 200)")
    ap.add_argument("--dir", type=Path, default=None, help="state directory (default: a temporary one)")
    args = ap.parse_args()
    state = args.dir or Path(tempfile.mkdtemp(prefix="quarry-bench-"))
    try:
        asyncio.run(run(args.events, args.size, state))
    finally:
        if args.dir is None:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
