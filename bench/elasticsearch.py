"""Elasticsearch/OpenSearch shipper throughput vs curl posting the same `_bulk` bodies (print only).

    python bench/elasticsearch.py [URL] [--events N] [--flavor elasticsearch|opensearch] [--rounds 3]

Without URL a node is started with tests/servers/elasticsearch.sh (or opensearch.sh) and stopped afterwards.
Both sides send 1000-event batches with 2 requests in flight (the pipeline's default concurrency) into fresh
data streams (template installed first). curl sends the uncompressed bodies; the shipper its default
(gzip level 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# this file is named like the client package: keep bench/ off the path so `import elasticsearch` is the client
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import figure, rates, send_batches
from tests.servers.plugin import free_port
from tests.shippers.elasticsearch import realserver as rs


async def run_shipper(flavor: str, url: str, batches: list[list], conc: int = 2) -> float:
    ns = rs.namespace()
    sh = rs.make(flavor, url, ns)
    await sh.open()
    try:
        return await send_batches(sh, batches, conc)
    finally:
        await sh.close()


def run_curl(flavor: str, url: str, batches: list[list], conc: int = 2) -> float:
    from shippers.elasticsearch.bulk import Router, encode_batch

    ns = rs.namespace()
    router = Router("logs-osquery.{table}-{namespace}", ns)
    tmp = Path(tempfile.mkdtemp())
    files = []
    for i, b in enumerate(batches):
        p = tmp / f"b{i}.ndjson"
        p.write_bytes(encode_batch(b, router, "ecs"))
        files.append(p)
    cmds = []
    for w in range(conc):
        args = ["curl", "-sS", "-o", "/dev/null"]
        for j, f in enumerate(files[w::conc]):
            if j:
                args.append("--next")
            args += ["-o", "/dev/null", "-H", "content-type: application/x-ndjson", "--data-binary", f"@{f}",
                     f"{url}/_bulk"]
        cmds.append(args)
    t = time.perf_counter()
    procs = [subprocess.Popen(c) for c in cmds]
    for p in procs:
        p.wait()
    dt = time.perf_counter() - t
    n = rs.count(url, f"logs-osquery.processes-{ns}")
    assert n == sum(len(b) for b in batches), n
    return dt


def run(flavor: str, url: str, events: int = 100_000, rounds: int = 3,
        extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """events/s of the shipper and of curl `_bulk`, alternating `rounds` times after a warm-up. `extra` are
    more baseline figures measured against the same node (rsyslog omelasticsearch), added to the section."""
    recs = rs.ecs_records("bench", events)
    batches = [recs[i:i + 1000] for i in range(0, len(recs), 1000)]
    asyncio.run(run_shipper(flavor, url, batches[:5]))  # warm-up: template, JIT, connections
    run_curl(flavor, url, batches[:5])
    ship, curl = [], []
    for _ in range(rounds):  # alternate to even out the node's warm-up
        curl.append(run_curl(flavor, url, batches))
        ship.append(asyncio.run(run_shipper(flavor, url, batches)))
    extra = extra or []
    return {"title": f"{flavor} shipper",
            "intro": f"{events:,} ECS documents into fresh data streams (template installed first), batches of "
                     "1,000 with 2 requests in flight on both sides. curl posts the same `_bulk` bodies "
                     "uncompressed; the shipper sends its default (gzip level 1). Both are counted back.",
            "figures": [figure("quarry shipper", rates(events, ship), "events/s",
                               baseline=["curl _bulk", *(f["name"] for f in extra)]),
                        figure("curl _bulk", rates(events, curl), "events/s"), *extra]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url", nargs="?")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--flavor", default="elasticsearch")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    url, data = a.url, None
    script = Path(__file__).resolve().parents[1] / "tests/servers" / f"{a.flavor}.sh"
    if not url:
        data = tempfile.mkdtemp(prefix="quarry-bench-es-", dir="/tmp")
        os.chmod(data, 0o777)
        port = free_port()
        subprocess.run([str(script), "start", data, str(port)], check=True, capture_output=True)
        url = f"http://127.0.0.1:{port}"
    try:
        ship, curl = run(a.flavor, url, a.events, a.rounds)["figures"][:2]
        s, c = statistics.median(ship["samples"]), statistics.median(curl["samples"])
        print(f"{a.flavor} {a.events} events, 1000/batch, 2 in flight, median of {a.rounds}")
        print(f"  quarry shipper : {s:10.0f} events/s (min {min(ship['samples']):.0f}, max {max(ship['samples']):.0f})")
        print(f"  curl _bulk     : {c:10.0f} events/s (min {min(curl['samples']):.0f}, max {max(curl['samples']):.0f})")
        print(f"  ratio shipper/curl = {s / c:.2f}")
    finally:
        if data:
            subprocess.run([str(script), "stop", data], capture_output=True)


if __name__ == "__main__":
    main()
