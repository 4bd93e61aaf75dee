"""Logstash beats-mode throughput into the go-lumber peer of tests/servers (which writes every event to a JSON
lines file and ACKs after the write), with and without zlib, against the harness's minimal lumberjack client
(tests/servers/lumberjack_client.py) sending the same events in the same windows.

    python -m bench.logstash [--events 200000] [--batch 2048] [--rounds 3]

Shipper and client alternate, `--rounds` times each; medians are printed. The shipper's events are ~90 bytes
longer than the client's (the @metadata and @timestamp it adds), which the peer has to parse too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from collector.pipeline.api import Delivered
from shippers.logstash import create
from tests.servers.lumberjack_client import LumberjackClient

from .file_shipper import records

SCRIPT = Path(__file__).resolve().parent.parent / "tests" / "servers" / "lumberjack.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def shipper_rate(port: int, recs: list, batch: int, level: int) -> float:
    s = create("bench", None, {"hosts": [f"127.0.0.1:{port}"], "compression_level": level})
    await s.open()
    t = time.perf_counter()
    for k in range(0, len(recs), batch):
        out = await s.send(s.encode(recs[k:k + batch]))
        assert out == Delivered(), out
    rate = len(recs) / (time.perf_counter() - t)
    await s.close()
    return rate


async def client_rate(port: int, recs: list, batch: int, compress: bool) -> float:
    events = [json.loads(r.payload) for r in recs]
    t = time.perf_counter()
    async with LumberjackClient("127.0.0.1", port) as c:
        for k in range(0, len(events), batch):
            await c.send(events[k:k + batch], compress=compress)
    return len(events) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    recs = records(a.events)
    d = Path(tempfile.mkdtemp(prefix="quarry-bench-lj-"))
    port = free_port()
    subprocess.run(["bash", str(SCRIPT), "start", str(d), str(port)], check=True, capture_output=True)
    try:
        print(f"{a.events} events of ~{recs[0].size} bytes, windows of {a.batch}, go-lumber peer on :{port}")
        for level, compress in ((0, False), (3, True)):
            mines, refs = [], []
            for _ in range(a.rounds):
                mines.append(asyncio.run(shipper_rate(port, recs, a.batch, level)))
                refs.append(asyncio.run(client_rate(port, recs, a.batch, compress)))
            mine, ref = statistics.median(mines), statistics.median(refs)
            label = f"zlib level {level}" if level else "plain"
            print(f"{label:14s} shipper {mine:>9,.0f} events/s   harness client {ref:>9,.0f} events/s   "
                  f"ratio {mine / ref:.2f}x")
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(d)], capture_output=True, check=False)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
