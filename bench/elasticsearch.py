"""Elasticsearch/OpenSearch shipper throughput vs curl posting the same `_bulk` bodies (print only).

    python bench/elasticsearch.py [URL] [--events N] [--flavor elasticsearch|opensearch]

Without URL a node is started with tests/servers/elasticsearch.sh (or opensearch.sh) and stopped afterwards.
Both sides send 1000-event batches with 2 requests in flight (the pipeline's default concurrency) into fresh
data streams (template installed first). curl sends the uncompressed bodies; the shipper its default
(gzip level 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# this file is named like the client package: keep bench/ off the path so `import elasticsearch` is the client
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import send_batches
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("url", nargs="?")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--flavor", default="elasticsearch")
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
        recs = rs.ecs_records("bench", a.events)
        batches = [recs[i:i + 1000] for i in range(0, len(recs), 1000)]
        asyncio.run(run_shipper(a.flavor, url, batches[:5]))  # warm-up: template, JIT, connections
        run_curl(a.flavor, url, batches[:5])
        res = []
        for _ in range(2):  # alternate to even out the node's warm-up
            c = run_curl(a.flavor, url, batches)
            s = asyncio.run(run_shipper(a.flavor, url, batches))
            res.append((s, c))
        s = min(r[0] for r in res)
        c = min(r[1] for r in res)
        print(f"{a.flavor} {a.events} events, 1000/batch, 2 in flight")
        print(f"  quarry shipper : {a.events / s:10.0f} events/s ({s:.2f} s)")
        print(f"  curl _bulk     : {a.events / c:10.0f} events/s ({c:.2f} s)")
        print(f"  ratio shipper/curl = {c / s:.2f}")
    finally:
        if data:
            subprocess.run([str(script), "stop", data], capture_output=True)


if __name__ == "__main__":
    main()
