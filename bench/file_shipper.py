"""File shipper throughput: osquery results lines of ~300 bytes written through FileShipper as the pipeline
drives it (encode() then send(), one write + fsync per batch), with osquery rotation (zstd of rotated files)
on and off, once end to end through the Pipeline, and a bare write + fsync of the same batches as the
baseline. Target: >= 150k events/s.

    python -m bench.file_shipper [--events 300000] [--batch 5000] [--rounds 3] [--dir /tmp/x]

Each case runs `--rounds` times into a fresh directory; the median is printed with the range, because a VM
disk's fsync time varies a lot from run to run. Use `--dir /dev/shm` to see the CPU cost without the disk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import figure
from collector.pipeline import Pipeline
from collector.pipeline.api import Delivered, Record
from collector.pipeline.config import parse_settings
from shippers.file import create

TARGET = 150_000


def records(n: int) -> list[Record]:
    out = []
    for i in range(n):
        line = {"name": "pack_incident-response_processes", "hostIdentifier": "web-01.example.com",
                "calendarTime": "Fri Nov 27 10:00:00 2026 UTC", "unixTime": 1795773600, "epoch": 0,
                "counter": i, "numerics": False, "decorations": {"host_uuid": "4c4c4544-0042-3010-8052"},
                "columns": {"pid": str(i), "name": f"proc{i}", "path": f"/usr/bin/proc{i}", "uid": "0"},
                "action": "added"}
        out.append(Record(id=f"{i:016x}", payload=json.dumps(line, separators=(",", ":")).encode(),
                          name=line["name"], time=1795773600.0))
    return out


async def direct(recs: list[Record], batch: int, d: Path, rotate: bool) -> float:
    s = create("bench", None, {"dir": str(d), "rotate": rotate})
    await s.open()
    t = time.perf_counter()
    for k in range(0, len(recs), batch):
        out = await s.send(s.encode(recs[k:k + batch]))
        assert out == Delivered(), out
    await s.close()
    return len(recs) / (time.perf_counter() - t)


async def pipeline(recs: list[Record], d: Path) -> float:
    raw = {"type": "file", "dir": str(d / "out")}
    settings, errors = parse_settings("bench", raw)
    assert not errors, errors
    p = Pipeline([create("bench", settings, raw)], {"bench": settings}, d / "state")
    await p.start()
    t = time.perf_counter()
    for k in range(0, len(recs), 1000):  # a query run's worth of rows per submit
        await p.submit_many(recs[k:k + 1000])
    while p.snapshot()["bench"]["acked"] < len(recs):
        await asyncio.sleep(0.005)
    rate = len(recs) / (time.perf_counter() - t)
    await p.stop(5)
    return rate


def bare_write(recs: list[Record], batch: int, d: Path) -> float:
    """The baseline: the same lines written per batch with one write + fsync, no shipper around it."""
    d.mkdir(parents=True, exist_ok=True)
    lines = [r.payload + b"\n" for r in recs]
    t = time.perf_counter()
    with open(d / "bare.log", "ab") as f:
        for k in range(0, len(lines), batch):
            f.write(b"".join(lines[k:k + batch]))
            f.flush()
            os.fsync(f.fileno())
    return len(recs) / (time.perf_counter() - t)


CASES = ("rotate off (one file)", "rotate 25 MiB + zstd", "through the Pipeline", "bare write + fsync")


def run(events: int = 300_000, batch: int = 5000, rounds: int = 3, where: str | None = None) -> dict[str, Any]:
    """events/s of every case, `rounds` times each into a fresh directory."""
    recs = records(events)
    size = sum(r.size + 1 for r in recs)
    base = Path(tempfile.mkdtemp(prefix="quarry-bench-file-", dir=where))
    coros = {CASES[0]: lambda d: direct(recs, batch, d, False), CASES[1]: lambda d: direct(recs, batch, d, True),
             CASES[2]: lambda d: pipeline(recs, d)}
    got: dict[str, list[float]] = {c: [] for c in CASES}
    try:
        for r in range(rounds):  # cases alternate within a round: a slow disk moment hits all of them
            for i, label in enumerate(CASES):
                d = base / f"case{i}-{r}"
                got[label].append(asyncio.run(coros[label](d)) if label in coros else bare_write(recs, batch, d))
                shutil.rmtree(d, ignore_errors=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return {"title": "file shipper",
            "intro": f"{events:,} osquery results lines of {size / events:.0f} B ({size / 2**20:.1f} MiB) written "
                     f"through FileShipper in batches of {batch:,} (one write + fsync per batch), with osquery "
                     f"rotation on and off, and end to end through the Pipeline (runs of 1,000 per submit); the "
                     f"baseline writes the same batches with a bare write + fsync. Target {TARGET:,} events/s.",
            "figures": [figure(CASES[0], got[CASES[0]], "events/s", baseline=CASES[3]),
                        figure(CASES[1], got[CASES[1]], "events/s", baseline=CASES[3]),
                        figure(CASES[2], got[CASES[2]], "events/s", baseline=CASES[3]),
                        figure(CASES[3], got[CASES[3]], "events/s")]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir under /tmp)")
    a = ap.parse_args()
    print(f"{a.events} events, batch {a.batch}, {a.rounds} rounds")
    for f in run(a.events, a.batch, a.rounds, a.dir)["figures"]:
        xs = f["samples"]
        rate = statistics.median(xs)
        print(f"{f['name']:24s} {rate:>10,.0f} events/s (min {min(xs):,.0f}, max {max(xs):,.0f})  "
              f"{rate / TARGET:.2f}x target ({TARGET:,}/s)")


if __name__ == "__main__":
    main()
