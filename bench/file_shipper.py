"""File shipper throughput: osquery results lines of ~300 bytes written through FileShipper as the pipeline
drives it (encode() then send(), one write + fsync per batch), with osquery rotation (zstd of rotated files)
on and off, and once end to end through the Pipeline. Target: >= 150k events/s.

    python -m bench.file_shipper [--events 300000] [--batch 5000] [--rounds 3] [--dir /tmp/x]

Each case runs `--rounds` times into a fresh directory; the median is printed with the range, because a VM
disk's fsync time varies a lot from run to run. Use `--dir /dev/shm` to see the CPU cost without the disk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir under /tmp)")
    a = ap.parse_args()
    recs = records(a.events)
    size = sum(r.size + 1 for r in recs)
    print(f"{a.events} events, {size / a.events:.0f} bytes per line, {size / 2**20:.1f} MiB, batch {a.batch}")
    base = Path(tempfile.mkdtemp(prefix="quarry-bench-file-", dir=a.dir))
    try:
        for label, coro in (("rotate off (one file)", lambda d: direct(recs, a.batch, d, False)),
                            ("rotate 25 MiB + zstd", lambda d: direct(recs, a.batch, d, True)),
                            ("through the Pipeline", lambda d: pipeline(recs, d))):
            rates = []
            for r in range(a.rounds):
                d = base / f"{label.split()[0]}-{r}"
                rates.append(asyncio.run(coro(d)))
                shutil.rmtree(d, ignore_errors=True)
            rate = statistics.median(rates)
            print(f"{label:24s} {rate:>10,.0f} events/s (min {min(rates):,.0f}, max {max(rates):,.0f})  "
                  f"{rate / TARGET:.2f}x target ({TARGET:,}/s)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
