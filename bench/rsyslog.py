"""rsyslog (Debian's, C) as a peer baseline: omkafka into the same Kafka broker and omelasticsearch into the same
Elasticsearch node the shippers are measured against, with the same payloads.

    python -m bench.rsyslog --brokers HOST:PORT | --es-url URL  [--events 100000] [--rounds 3]

An rsyslogd (`-n`, TCP input on 127.0.0.1) whose one ruleset has the one action gets 10 warm-up lines and waits
for them (topic or index creation stays out of the timing); then each round times from the first byte of the
`--events` lines sent over TCP until all of them are counted in the sink (Kafka end offsets, polled
every 50 ms; the index's `_count` after `_refresh`, polled every 250 ms). For Kafka one rsyslogd and topic
serve every round; for Elasticsearch each round starts a fresh rsyslogd writing a new index. Each line is an
RFC 3164 syslog line whose message is the event's JSON; rsyslog forwards the message (`%msg%`) as is.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from bench.common import figure, rates
from collector.pipeline.api import Record

QUEUE = 'queue.type="LinkedList" queue.size="200000" queue.dequeueBatchSize="1000"'


def rsyslogd() -> str:
    path = shutil.which("rsyslogd") or shutil.which("rsyslogd", path="/usr/sbin:/sbin")
    if not path:
        raise RuntimeError("rsyslogd is missing; install with: tests/servers/setup.sh apt")
    return path


def lines(recs: list[Record]) -> bytes:
    return b"".join(b"<13>Nov 27 17:00:00 bench quarry: " + r.payload + b"\n" for r in recs)


class Rsyslog:
    """One rsyslogd with a TCP input feeding one output action; stopped on exit."""

    def __init__(self, action: str) -> None:
        self.action = action
        self.dir = Path(tempfile.mkdtemp(prefix="quarry-bench-rsyslog-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Rsyslog:
        from tests.servers.plugin import free_port

        self.port = free_port()
        conf = self.dir / "rsyslog.conf"
        conf.write_text(f"""
global(workDirectory="{self.dir}" maxMessageSize="64k")
module(load="imtcp")
module(load="omkafka")
module(load="omelasticsearch")
template(name="msg" type="string" string="%msg%")
input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="bench")
ruleset(name="bench" queue.type="LinkedList" queue.size="200000") {{
  {self.action}
}}
""")
        log = open(self.dir / "rsyslogd.log", "wb")
        self.proc = subprocess.Popen([rsyslogd(), "-n", "-f", str(conf), "-i", str(self.dir / "rsyslogd.pid")],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"rsyslogd did not open its TCP input: {self.log()}")
                time.sleep(0.1)

    def log(self) -> str:
        p = self.dir / "rsyslogd.log"
        return p.read_text(errors="replace")[-2000:] if p.exists() else ""

    def send(self, data: bytes) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=60) as s:
            s.sendall(data)

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


async def _kafka_rounds(brokers: str, topic: str, rs: Rsyslog, warm: bytes, data: bytes, n: int, rounds: int,
                        timeout: float) -> list[float]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    c = AIOKafkaConsumer(bootstrap_servers=brokers, request_timeout_ms=10000)
    await c.start()

    async def count() -> int:
        # the topic was created with one partition (the consumer's cached metadata would only learn about a
        # new topic at its next refresh, minutes away)
        return sum((await c.end_offsets([TopicPartition(topic, 0)])).values())

    async def until(expected: int, since: float, limit: float) -> float:
        while (got := await count()) < expected:
            if time.perf_counter() - since > limit:
                raise RuntimeError(f"rsyslog omkafka: {got} of {expected} messages after {limit}s: {rs.log()}")
            await asyncio.sleep(0.05)
        return time.perf_counter() - since

    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, rs.send, warm)
        await until(10, time.perf_counter(), timeout)
        out = []
        for k in range(rounds):
            t = time.perf_counter()
            await loop.run_in_executor(None, rs.send, data)
            out.append(await until(10 + (k + 1) * n, t, timeout))
        return out
    finally:
        await c.stop()


async def _create_topic(brokers: str, topic: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=brokers, request_timeout_ms=30000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


def kafka_rounds(brokers: str, recs: list[Record], warm: list[Record], rounds: int, codec: str = "zstd",
                 timeout: float = 600) -> list[float]:
    """Seconds per round; one rsyslogd and one topic (created first, one partition like the auto-created ones)."""
    topic = f"bench-rsyslog-{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_topic(brokers, topic))
    action = (f'action(type="omkafka" broker=["{brokers}"] topic="{topic}" template="msg" {QUEUE} '
              f'confParam=["compression.codec={codec}", "acks=all", "enable.idempotence=true"])')
    with Rsyslog(action) as rs:
        return asyncio.run(_kafka_rounds(brokers, topic, rs, lines(warm), lines(recs), len(recs), rounds, timeout))


def _es_count(url: str, index: str) -> int:
    try:
        urllib.request.urlopen(urllib.request.Request(f"{url}/{index}/_refresh", method="POST"), timeout=30).close()
        with urllib.request.urlopen(f"{url}/{index}/_count", timeout=30) as r:
            return int(json.load(r)["count"])
    except urllib.error.HTTPError as e:
        if e.code == 404:  # until rsyslog's first bulk request created the index
            return 0
        raise


def es_round(url: str, recs: list[Record], warm: list[Record], timeout: float = 600) -> float:
    index = f"bench-rsyslog-{uuid.uuid4().hex[:8]}"
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    action = (f'action(type="omelasticsearch" server="{host}" serverport="{port}" searchIndex="{index}" '
              f'template="msg" bulkmode="on" esVersion.major="9" {QUEUE} queue.workerThreads="2")')

    def until(expected: int, since: float) -> float:
        while (got := _es_count(url, index)) < expected:
            if time.perf_counter() - since > timeout:
                raise RuntimeError(f"rsyslog omelasticsearch: {got} of {expected} docs after {timeout}s: {rs.log()}")
            time.sleep(0.25)
        return time.perf_counter() - since

    with Rsyslog(action) as rs:
        rs.send(lines(warm))
        until(10, time.perf_counter())
        t = time.perf_counter()
        rs.send(lines(recs))
        dt = until(10 + len(recs), t)
    try:
        urllib.request.urlopen(urllib.request.Request(f"{url}/{index}", method="DELETE"), timeout=30).close()
    except OSError:
        pass
    return dt


def kafka_figure(brokers: str, events: int, rounds: int) -> dict[str, Any]:
    from bench.kafka import make_records

    recs, warm = make_records(events), make_records(10)
    return figure("rsyslog omkafka", rates(events, kafka_rounds(brokers, recs, warm, rounds)),
                  "events/s", note="same lines through imtcp → omkafka (zstd, acks=all, idempotence)")


def es_figure(url: str, events: int, rounds: int) -> dict[str, Any]:
    from tests.shippers.elasticsearch import realserver as rs

    recs, warm = rs.ecs_records("bench", events), rs.ecs_records("warm", 10)
    return figure("rsyslog omelasticsearch", rates(events, [es_round(url, recs, warm) for _ in range(rounds)]),
                  "events/s", note="same ECS documents through imtcp → omelasticsearch (bulk, 2 workers, plain "
                                   "index)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--brokers")
    ap.add_argument("--es-url")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if not (a.brokers or a.es_url):
        sys.exit("give --brokers and/or --es-url")
    for f in ([kafka_figure(a.brokers, a.events, a.rounds)] if a.brokers else []) + (
            [es_figure(a.es_url, a.events, a.rounds)] if a.es_url else []):
        xs = f["samples"]
        print(f"{f['name']:24s} {statistics.median(xs):>10,.0f} events/s (min {min(xs):,.0f}, max {max(xs):,.0f})")


if __name__ == "__main__":
    main()
