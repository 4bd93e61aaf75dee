"""Splunk HEC shipper throughput into the real receiver (OpenTelemetry Collector `splunkhec` → file exporter
of tests/servers/hec.sh), against a replay of the same pre-encoded bodies with a bare httpx client (the
receiver's own ceiling) in the same run. 100,000 osquery results lines of ~1 KB (bench.kafka's generator),
gzip on, 500 events per request. Target: >= 50k events/s.

    python -m bench.hec [--events 100000] [--batch 500] [--concurrency 2] [--rounds 3] [--gzip-level 1]
                        [--url http://host:port --token T]   (default: start a receiver with hec.sh)

Times run from the first send to the last 200 (no ack mode: the receiver acks on acceptance anyway). The
last round also waits for every event to be in the receiver's output file and counts them exactly.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.common import figure, rates, send_batches
from bench.kafka import make_records
from collector.pipeline.api import Record
from shippers.splunk_hec import create
from shippers.splunk_hec.encode import compress

REPO = Path(__file__).resolve().parents[1]


async def run_shipper(url: str, token: str, recs: list[Record], batch: int, concurrency: int,
                      level: int) -> float:
    s = create("bench", None, {"type": "splunk_hec", "url": url, "token": token, "gzip_level": level,
                               "max_connections": concurrency})
    await s.open()
    try:
        dt = await send_batches(s, [recs[i:i + batch] for i in range(0, len(recs), batch)], concurrency)
    finally:
        await s.close()
    return dt


async def run_replay(url: str, token: str, bodies: list[bytes], concurrency: int) -> float:
    queue = list(bodies)
    headers = {"Authorization": f"Splunk {token}", "Content-Encoding": "gzip",
               "X-Splunk-Request-Channel": str(uuid.uuid4())}
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        async def worker() -> None:
            while queue:
                r = await c.post("/services/collector/event", content=queue.pop(0), headers=headers)
                if r.status_code != 200:
                    raise SystemExit(f"replay: {r.status_code} {r.text}")

        t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - t


async def null_sink_rate(recs: list[Record], batch: int, concurrency: int, level: int) -> float:
    """The shipper's own ceiling: the same run against a minimal asyncio HEC that answers success at once."""

    writers: set[asyncio.StreamWriter] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        ok = b'{"text":"Success","code":0}'
        reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(ok), ok)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                n = int(next(x.split(b":", 1)[1] for x in head.split(b"\r\n") if x.lower().startswith(b"content-length")))
                await reader.readexactly(n)
                writer.write(reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        return await run_shipper(f"http://127.0.0.1:{port}", "t", recs, batch, concurrency, level)
    finally:
        server.close()
        for w in writers:  # the handlers then see EOF and end before the loop closes
            w.close()
        await asyncio.sleep(0.1)


def start_receiver(tmp: Path) -> tuple[str, Path, str]:
    from tests.servers.plugin import HecReceiver, free_port

    port, token = free_port(), str(uuid.uuid4())
    subprocess.run([str(REPO / "tests/servers/hec.sh"), "start", str(tmp), str(port), token], check=True,
                   timeout=120, capture_output=True)
    HecReceiver("127.0.0.1", port, tmp, tmp / "otelcol.log", token).add_token(token, timeout=30)
    return f"http://127.0.0.1:{port}", tmp, token


def add_token(data: Path, url: str) -> str:
    from tests.servers.plugin import HecReceiver

    token = str(uuid.uuid4())
    HecReceiver("127.0.0.1", int(url.rsplit(":", 1)[1]), data, data / "otelcol.log", token).add_token(token)
    return token


def run(url: str, data: Path | None, events: int = 100_000, batch: int = 500, concurrency: int = 2,
        rounds: int = 3, level: int = 1, token: str | None = None) -> dict[str, Any]:
    """The figures as data. `data` is the receiver's folder (tests/servers/hec.sh): each run then gets its own
    token, and the last run's events are read back from the receiver's file and counted exactly. Without it,
    `token` is used for every run and nothing is read back."""
    recs = make_records(events)
    probe = create("p", None, {"url": url, "token": "x", "gzip_level": level})
    t = time.perf_counter()
    bodies = [compress(probe.encode(recs[i:i + batch]).body.raw, level) for i in range(0, len(recs), batch)]
    enc = time.perf_counter() - t
    ship, replay, null = [], [], []
    last_token = ""
    for _ in range(rounds):
        tok = add_token(data, url) if data else token
        replay.append(asyncio.run(run_replay(url, tok, bodies, concurrency)))
        last_token = tok = add_token(data, url) if data else token
        ship.append(asyncio.run(run_shipper(url, tok, recs, batch, concurrency, level)))
        null.append(asyncio.run(null_sink_rate(recs, batch, concurrency, level)))
    out: dict[str, Any] = {
        "events": events, "payload_bytes": sum(len(r.payload) for r in recs) / events,
        "wire_bytes": sum(map(len, bodies)) / events, "encode_rate": events / enc,
        "shipper_s": ship, "replay_s": replay, "null_s": null}
    if data:
        from tests.servers.plugin import read_hec_output

        t = time.perf_counter()
        got = read_hec_output(data / "out" / f"{last_token}.jsonl", expected=events, timeout=120)
        out["read_back"] = len(got)
        out["read_back_ids"] = len({e["fields"]["quarry_event_id"] for e in got})
        out["read_back_wait_s"] = time.perf_counter() - t
    return out


def section(r: dict[str, Any], batch: int, concurrency: int, level: int) -> dict[str, Any]:
    events = r["events"]
    notes = [f"encode+gzip alone: {r['encode_rate']:,.0f} events/s, {r['wire_bytes']:.0f} B/event on the wire"]
    if "read_back" in r:
        notes.append(f"read back from the receiver's file after the last run: {r['read_back']:,} events, "
                     f"{r['read_back_ids']:,} distinct ids (of {events:,})")
        if r["read_back"] != events or r["read_back_ids"] != events:
            raise RuntimeError(f"HEC receiver did not get exactly every event: {notes[-1]}")
    return {"title": "splunk HEC shipper",
            "intro": f"{events:,} osquery results lines (~{r['payload_bytes']:.0f} B) into the real receiver "
                     "(OpenTelemetry Collector `splunkhec` → file exporter), gzip level "
                     f"{level}, {batch} events per request, {concurrency} in flight; the baseline replays the same "
                     "pre-encoded bodies with a bare httpx client (the receiver's own ceiling) in the same run. "
                     "Target >= 50,000 events/s.",
            "figures": [figure("quarry HEC shipper", rates(events, r["shipper_s"]), "events/s",
                               baseline="httpx replay of the same bodies"),
                        figure("httpx replay of the same bodies", rates(events, r["replay_s"]), "events/s"),
                        figure("shipper into a null HEC (its own ceiling)", rates(events, r["null_s"]),
                               "events/s")],
            "notes": notes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gzip-level", type=int, default=1)
    ap.add_argument("--url")
    ap.add_argument("--token")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-hec-"))
    tmp.chmod(0o755)
    own = not a.url
    try:
        if own:
            url, data, _ = start_receiver(tmp)
        else:
            url, data = a.url, None
        r = run(url, data, a.events, a.batch, a.concurrency, a.rounds, a.gzip_level, a.token)
        print(f"{a.events} events, {r['payload_bytes']:.0f} B payload each, batch {a.batch}, concurrency "
              f"{a.concurrency}, gzip level {a.gzip_level}; encode+gzip alone {r['encode_rate']:,.0f} events/s, "
              f"{r['wire_bytes']:.0f} B/event on the wire")
        ship = r["shipper_s"]
        s, rp, null = statistics.median(ship), statistics.median(r["replay_s"]), statistics.median(r["null_s"])
        print(f"shipper into a null HEC (its own ceiling, same process): {a.events / null:,.0f} events/s")
        print(f"shipper (encode+gzip+send): {a.events / s:,.0f} events/s  (median of {a.rounds}; "
              f"min {a.events / max(ship):,.0f}, max {a.events / min(ship):,.0f})")
        print(f"replay of pre-encoded bodies: {a.events / rp:,.0f} events/s")
        print(f"ratio shipper/replay: {rp / s:.2f}x; vs target 50k/s: {a.events / s / 50_000:.2f}x")
        if own:
            print(f"read back from the receiver's file: {r['read_back']} events, {r['read_back_ids']} distinct ids "
                  f"(waited {r['read_back_wait_s']:.1f}s after the last send)")
            if r["read_back"] != a.events or r["read_back_ids"] != a.events:
                raise SystemExit("receiver did not get exactly every event")
    finally:
        if own:
            subprocess.run([str(REPO / "tests/servers/hec.sh"), "stop", str(tmp)], check=False, timeout=60,
                           capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
