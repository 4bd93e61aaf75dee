"""Pipeline benchmark: memory with a dead sink, and spool drain rate with an instant sink (prints, no asserts).

    python -m bench.pipeline [--events 1000000] [--size 300] [--dir DIR] [--json]

Phase 1: a sink that answers Retry to everything; `--events` events (~`--size` bytes of payload each, an
osquery results line shape) are submitted in runs of 1000 with default settings (spool on, 64 MiB
segments, 1 GiB cap, read-ahead queue 10,000 events). Prints peak RSS (target < 150 MB) and the submit rate.
Phase 2: the sink comes back answering Delivered at once; prints how fast the spool backlog drains
(target >= 50k events/s) with the default batch (1000 events / 1 MB) and concurrency 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.common import figure
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


async def once(events: int, size: int, state: Path) -> dict[str, Any]:
    """One dead-sink phase and one drain phase in this process (run it in a fresh process for clean RSS)."""
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
    out: dict[str, Any] = {
        "events": events, "submit_s": took, "rss_start_mb": base, "rss_peak_mb": peak,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "queued_events": snap["queued_events"], "queued_bytes": snap["queued_bytes"],
        "spool_events": snap["spool_events"], "spool_bytes": snap["spool_bytes"],
        "spool_segments": snap["spool_segments"], "in_flight": snap["in_flight"]}
    sink.dead = False
    # the retries sleep for their Retry-After; restart the pipeline so the drain starts now, as after an
    # outage where the next attempt succeeds (this also measures recovery from the spool on start)
    await p.stop(0)
    t1 = time.perf_counter()
    sink2 = Sink()
    sink2.dead = False
    p2 = Pipeline([sink2], {"bench": settings}, state, log_interval_s=3600)
    await p2.start()
    out["reopen_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    while p2.snapshot()["bench"]["spool_events"]:
        await asyncio.sleep(0.01)
    out["drain_s"] = time.perf_counter() - t2
    out["drained"] = sink2.delivered
    out["rss_after_drain_mb"] = rss_mb()
    await p2.stop(1)
    return out


def report(r: dict[str, Any]) -> None:
    events, took, drain = r["events"], r["submit_s"], r["drain_s"]
    print(f"phase 1 (dead sink): {events:,} events submitted in {took:.2f}s = {events / took:,.0f} events/s")
    print(f"  RSS: start {r['rss_start_mb']:.1f} MB, peak sampled {r['rss_peak_mb']:.1f} MB, "
          f"ru_maxrss {r['ru_maxrss_mb']:.1f} MB (target < 150 MB)")
    print(f"  queued (read-ahead) {r['queued_events']:,} events / {r['queued_bytes'] / 1e6:.1f} MB, "
          f"spool {r['spool_events']:,} events / {r['spool_bytes'] / 1e6:.1f} MB in "
          f"{r['spool_segments']} segments, in flight {r['in_flight']}")
    print(f"phase 2 (instant sink): reopened the spool in {r['reopen_s'] * 1000:.0f} ms; drained {r['drained']:,} "
          f"events in {drain:.2f}s = {r['drained'] / drain:,.0f} events/s (target >= 50,000)")
    print(f"  RSS after drain {r['rss_after_drain_mb']:.1f} MB, ratio drain/target = "
          f"{r['drained'] / drain / 50_000:.2f}x")


def run(events: int = 1_000_000, size: int = 300, runs: int = 3, timeout: float = 1800) -> dict[str, Any]:
    """`runs` rounds, each in a fresh Python process (RSS and ru_maxrss are per process), as report figures."""
    got = []
    for _ in range(runs):
        p = subprocess.run([sys.executable, "-m", "bench.pipeline", "--json", "--events", str(events), "--size",
                            str(size)], capture_output=True, text=True, timeout=timeout,
                           cwd=Path(__file__).resolve().parents[1])
        if p.returncode != 0:
            raise RuntimeError(f"bench.pipeline exited {p.returncode}: {p.stderr[-2000:]}")
        got.append(json.loads(p.stdout.strip().splitlines()[-1]))
    g = got[-1]
    return {"title": "pipeline: memory under a dead sink, spool drain",
            "intro": f"{events:,} osquery results lines (~{size + 200} B) submitted in runs of 1,000 to a pipeline "
                     "whose only sink answers Retry to everything (default settings: spool on, read-ahead queue "
                     "10,000 events); then the spool is reopened with an instant sink and drained with the default "
                     "batch and concurrency 2. Targets: peak RSS < 150 MB, drain >= 50,000 events/s. Each run is "
                     "a fresh process.",
            "figures": [figure("peak RSS with a dead sink (sampled)", [x["rss_peak_mb"] for x in got], "MB",
                               better="lower"),
                        figure("ru_maxrss of the process", [x["ru_maxrss_mb"] for x in got], "MB", better="lower"),
                        figure("RSS at start", [x["rss_start_mb"] for x in got], "MB", better="lower"),
                        figure("submit rate, dead sink (to the spool)", [x["events"] / x["submit_s"] for x in got],
                               "events/s"),
                        figure("spool drain rate, instant sink", [x["drained"] / x["drain_s"] for x in got],
                               "events/s", note="target 50,000"),
                        figure("spool reopen on start", [x["reopen_s"] * 1000 for x in got], "ms", better="lower")],
            "notes": [f"last run: spool {g['spool_events']:,} events / {g['spool_bytes'] / 1e6:.1f} MB in "
                      f"{g['spool_segments']} segments, read-ahead {g['queued_events']:,} events, drained "
                      f"{g['drained']:,} events"],
            "chart": False}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=300, help="padding bytes per event (payload ~ size + 200)")
    ap.add_argument("--dir", type=Path, default=None, help="state directory (default: a temporary one)")
    ap.add_argument("--json", action="store_true", help="print one JSON line of figures instead of text")
    args = ap.parse_args()
    state = args.dir or Path(tempfile.mkdtemp(prefix="quarry-bench-"))
    try:
        r = asyncio.run(once(args.events, args.size, state))
    finally:
        if args.dir is None:
            shutil.rmtree(state, ignore_errors=True)
    if args.json:
        print(json.dumps(r))
    else:
        report(r)


if __name__ == "__main__":
    main()
