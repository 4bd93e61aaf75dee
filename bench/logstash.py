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
from typing import Any

from collector.pipeline.api import Delivered
from shippers.logstash import create
from tests.servers.lumberjack_client import LumberjackClient

from .common import figure
from .file_shipper import records

SCRIPT = Path(__file__).resolve().parent.parent / "tests" / "servers" / "lumberjack.sh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def shipper_rate(host: str, port: int, recs: list, batch: int, level: int) -> float:
    s = create("bench", None, {"hosts": [f"{host}:{port}"], "compression_level": level})
    await s.open()
    t = time.perf_counter()
    for k in range(0, len(recs), batch):
        out = await s.send(s.encode(recs[k:k + batch]))
        assert out == Delivered(), out
    rate = len(recs) / (time.perf_counter() - t)
    await s.close()
    return rate


async def client_rate(host: str, port: int, recs: list, batch: int, compress: bool) -> float:
    events = [json.loads(r.payload) for r in recs]
    t = time.perf_counter()
    async with LumberjackClient(host, port) as c:
        for k in range(0, len(events), batch):
            await c.send(events[k:k + batch], compress=compress)
    return len(events) / (time.perf_counter() - t)


def run(host: str, port: int, events: int = 200_000, batch: int = 2048, rounds: int = 3) -> dict[str, Any]:
    """events/s of the shipper and of the harness client, plain and zlib, alternating `rounds` times."""
    recs = records(events)
    figs = []
    for level, compress in ((0, False), (3, True)):
        mines, refs = [], []
        for _ in range(rounds):
            mines.append(asyncio.run(shipper_rate(host, port, recs, batch, level)))
            refs.append(asyncio.run(client_rate(host, port, recs, batch, compress)))
        label = f"zlib level {level}" if level else "plain"
        figs.append(figure(f"shipper, {label}", mines, "events/s", baseline=f"harness client, {label}"))
        figs.append(figure(f"harness client, {label}", refs, "events/s"))
    return {"title": "logstash (beats) shipper",
            "intro": f"{events:,} events of ~{recs[0].size} B in windows of {batch:,} into the go-lumber peer of "
                     "tests/servers (writes every event to a JSON-lines file, ACKs after the write), against the "
                     "harness's minimal lumberjack client sending the same events in the same windows. The "
                     "shipper's events are ~90 B longer (the @metadata and @timestamp it adds).",
            "figures": figs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix="quarry-bench-lj-"))
    port = free_port()
    subprocess.run(["bash", str(SCRIPT), "start", str(d), str(port)], check=True, capture_output=True)
    try:
        print(f"{a.events} events, windows of {a.batch}, go-lumber peer on :{port}")
        figs = run("127.0.0.1", port, a.events, a.batch, a.rounds)["figures"]
        for mine, ref in zip(figs[::2], figs[1::2]):
            m, r = statistics.median(mine["samples"]), statistics.median(ref["samples"])
            print(f"{mine['name'][9:]:14s} shipper {m:>9,.0f} events/s   harness client {r:>9,.0f} events/s   "
                  f"ratio {m / r:.2f}x")
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(d)], capture_output=True, check=False)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
