"""Kafka shipper throughput against kcat (librdkafka) sending the same messages to the same broker in the
same run: 200,000 osquery results lines of ~1 KB, key = event id, zstd, acks=all, idempotence on both.
Targets: >= 100k events/s and >= 0.3x kcat.

    python -m bench.kafka [--events 200000] [--batch 2000] [--concurrency 2] [--codec zstd] [--rounds 3]
                          [--brokers host:port]   (default: start a broker with tests/servers/kafka.sh)

The shipper is driven as the pipeline drives it: encode() a batch of records, send() it, `concurrency`
requests in flight. Times run from the first send to the last acknowledgement (kcat: process start to exit,
which includes its final flush). Each side writes its own new topic.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import figure, rates, send_batches
from collector.pipeline.api import Delivered, Record
from shippers.kafka import create

REPO = Path(__file__).resolve().parents[1]


def make_records(n: int) -> list[Record]:
    """~1 KB osquery event-format lines with per-row variety (paths, hashes, numbers), so compression is real."""
    rnd = random.Random(42)
    out = []
    for i in range(n):
        pid = rnd.randrange(1, 4_000_000)
        h = hashlib.sha256(i.to_bytes(8, "little")).hexdigest()
        cmd = " ".join(rnd.choice(["--verbose", "-c", "/etc/app.conf", "--port", str(rnd.randrange(65536)),
                                   "--user", f"svc{rnd.randrange(100)}", "-x"]) for _ in range(8))
        cols = (f'"pid":"{pid}","name":"proc{pid % 997}","path":"/usr/lib/app{pid % 53}/bin/worker-{pid % 17}",'
                f'"cmdline":"/usr/lib/app{pid % 53}/bin/worker {cmd}","state":"S","cwd":"/var/lib/app{pid % 53}",'
                f'"root":"/","uid":"{1000 + pid % 50}","gid":"{1000 + pid % 50}","euid":"0","egid":"0",'
                f'"on_disk":"1","wired_size":"0","resident_size":"{rnd.randrange(10**9)}",'
                f'"total_size":"{rnd.randrange(10**10)}","user_time":"{rnd.randrange(10**6)}",'
                f'"system_time":"{rnd.randrange(10**6)}","start_time":"{1795700000 + i}","parent":"{pid // 3}",'
                f'"pgroup":"{pid // 3}","threads":"{rnd.randrange(1, 64)}","nice":"0","sha256":"{h}",'
                f'"cgroup_path":"/system.slice/app{pid % 53}.service","disk_bytes_read":"{rnd.randrange(10**9)}",'
                f'"disk_bytes_written":"{rnd.randrange(10**9)}","upid":"","uppid":"","cpu_type":"","cpu_subtype":""')
        body = (f'{{"name":"pack_incident-response_processes","hostIdentifier":"web-{i % 7}.example.net",'
                f'"calendarTime":"Fri Nov 27 10:00:00 2026 UTC","unixTime":1795773600,"epoch":0,"counter":{i},'
                f'"numerics":false,"decorations":{{"host_uuid":"4740D59F-699E-5B29-960B-979AAF9BBEEB"}},'
                f'"columns":{{{cols}}},"action":"added"}}')
        out.append(Record(id=str(uuid.UUID(int=rnd.getrandbits(128))), payload=body.encode(),
                          name="pack_incident-response_processes", host=f"web-{i % 7}", time=1795773600.0))
    return out


async def run_shipper(brokers: str, topic: str, recs: list[Record], batch: int, concurrency: int,
                      codec: str, extra: dict[str, int] | None = None) -> float:
    s = create("bench", None, {"type": "kafka", "brokers": [brokers], "topic": topic, "compression": codec,
                               **(extra or {})})
    await s.open()
    warm = await s.send(s.encode(make_records(10)))  # topic creation and metadata out of the timing
    assert warm == Delivered(), warm
    try:
        return await send_batches(s, [recs[i:i + batch] for i in range(0, len(recs), batch)], concurrency)
    finally:
        await s.close()


def run_kcat(kcat: str, brokers: str, topic: str, recs: list[Record], codec: str) -> float:
    data = b"".join(r.id.encode() + b"\t" + r.payload + b"\n" for r in recs)
    warm = b"".join(r.id.encode() + b"\t" + r.payload + b"\n" for r in make_records(10))
    base = [kcat, "-b", brokers, "-P", "-t", topic, "-K", "\t", "-z", codec, "-X", "acks=all",
            "-X", "enable.idempotence=true"]
    subprocess.run(base, input=warm, check=True, timeout=120, capture_output=True)
    t = time.perf_counter()
    subprocess.run(base, input=data, check=True, timeout=600, capture_output=True)
    return time.perf_counter() - t


def timed_rounds(kcat: str, brokers: str, recs: list[Record], batch: int, concurrency: int, codec: str,
                 rounds: int, extra: dict[str, int] | None = None) -> tuple[list[float], list[float]]:
    """Seconds of the shipper and of kcat per round, alternating, each into its own new topic."""
    ship_t, kcat_t = [], []
    for _ in range(rounds):
        run_id = uuid.uuid4().hex[:8]
        ship_t.append(asyncio.run(run_shipper(brokers, f"bench-quarry-{run_id}", recs, batch, concurrency, codec,
                                              extra)))
        kcat_t.append(run_kcat(kcat, brokers, f"bench-kcat-{run_id}", recs, codec))
    return ship_t, kcat_t


def run(brokers: str, events: int = 200_000, batch: int = 2000, concurrency: int = 2, codec: str = "zstd",
        rounds: int = 3, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The report section: shipper and kcat events/s; `extra` are more baseline figures measured against the
    same broker (rsyslog omkafka)."""
    kcat = shutil.which("kcat")
    if not kcat:
        raise RuntimeError("kcat is missing: tests/servers/setup.sh apt (apt-get install -y kcat)")
    recs = make_records(events)
    mb = sum(r.size for r in recs) / 1e6
    ship_t, kcat_t = timed_rounds(kcat, brokers, recs, batch, concurrency, codec, rounds)
    extra = extra or []
    return {"title": "kafka shipper",
            "intro": f"{events:,} osquery results lines ({mb:.1f} MB, ~{mb * 1e6 / events:.0f} B each), key = event "
                     f"id, {codec}, acks=all + idempotence on both sides, batches of {batch:,} with {concurrency} in "
                     "flight; kcat (librdkafka) sends the same messages to the same broker, alternating rounds, "
                     "timed from process start to exit. Targets: >= 100,000 events/s and >= 0.3x kcat.",
            "figures": [figure("quarry kafka shipper", rates(events, ship_t), "events/s",
                               baseline=["kcat (librdkafka)", *(f["name"] for f in extra)]),
                        figure("kcat (librdkafka)", rates(events, kcat_t), "events/s"), *extra]}


def start_broker(tmp: Path) -> tuple[str, Path]:
    from tests.servers.plugin import free_port

    port, cport = free_port(), free_port()
    subprocess.run([str(REPO / "tests/servers/kafka.sh"), "start", str(tmp), str(port), str(cport)], check=True,
                   timeout=300, capture_output=True)
    return f"127.0.0.1:{port}", tmp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--codec", default="zstd")
    ap.add_argument("--brokers")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-batch-size", type=int, help="shipper option max_batch_size (default: its default)")
    ap.add_argument("--producers", type=int, help="shipper option producers (default: its default)")
    args = ap.parse_args()
    kcat = shutil.which("kcat")
    if not kcat:
        sys.exit("kcat is missing: tests/servers/setup.sh apt (apt-get install -y kcat)")
    tmp = Path(tempfile.mkdtemp(prefix="quarry-bench-kafka-"))
    brokers = args.brokers
    started = None
    if not brokers:
        brokers, started = start_broker(tmp / "kafka")
    try:
        recs = make_records(args.events)
        mb = sum(r.size for r in recs) / 1e6
        print(f"{args.events} events, {mb:.1f} MB (avg {mb * 1e6 / args.events:.0f} B), codec {args.codec}, "
              f"acks=all + idempotence, broker {brokers}, {args.rounds} alternating rounds (median)")
        extra = {"max_batch_size": args.max_batch_size} if args.max_batch_size else {}
        if args.producers:
            extra["producers"] = args.producers
        ship_t, kcat_t = timed_rounds(kcat, brokers, recs, args.batch, args.concurrency, args.codec, args.rounds,
                                      extra)
        for n, (a, b) in enumerate(zip(ship_t, kcat_t)):
            print(f"  round {n + 1}: shipper {args.events / a:,.0f}/s, kcat {args.events / b:,.0f}/s")
        t_ship, t_kcat = statistics.median(ship_t), statistics.median(kcat_t)
        ship_rate, kcat_rate = args.events / t_ship, args.events / t_kcat
        print(f"quarry kafka shipper: {ship_rate:>10,.0f} events/s  {mb / t_ship:6.1f} MB/s  ({t_ship:.2f} s; "
              f"batch {args.batch}, {args.concurrency} in flight)  target >= 100,000")
        print(f"kcat (librdkafka)   : {kcat_rate:>10,.0f} events/s  {mb / t_kcat:6.1f} MB/s  ({t_kcat:.2f} s)")
        print(f"ratio shipper/kcat  : {ship_rate / kcat_rate:.2f}x  target >= 0.3x")
    finally:
        if started:
            subprocess.run([str(REPO / "tests/servers/kafka.sh"), "stop", str(started)], timeout=120,
                           capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
