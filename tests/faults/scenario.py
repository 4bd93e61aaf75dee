"""One outage scenario end to end: the real daemon streams distinct rows to one real server, the server is
stopped for a while and started again (same port, same data), the daemon drains and stops gracefully, and
what the server received is compared with the daemon's own results log (the ground truth of what was
produced). A sampler records a per-second timeline meanwhile. Used by tests/faults/ and bench/outage.py.

    target = kafka_target(manager.get("kafka"), topic="t-x", query="outage_ab12")
    result = run_outage(manager, target, tmp_dir, outage_s=60)
    result.missing, result.conflicting_ids, result.timeline ...

Rows: a differential query over a generated series joined with the clock, run every second, so each run
removes the previous `rows` rows and adds `rows` new ones (2 × rows events per second, each distinct).
An event is identified by (action, counter, n, t) on both sides; its event id must be the same wherever the
same event arrived more than once.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers.plugin import HecReceiver, KafkaServer, LumberjackServer, SearchServer, read_hec_output

ROOT = Path(__file__).resolve().parents[2]
Key = tuple[str, int, str, str]  # (action, counter, n, t)


def _norm(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def key_of(action: Any, counter: Any, columns: dict[str, Any]) -> Key:
    return (str(action), int(float(counter)), _norm(columns["n"]), _norm(columns["t"]))


def line_key(line: dict[str, Any]) -> Key:
    """Key of an osquery event-format results line (as the results log, Kafka, HEC and beats carry it)."""
    return key_of(line["action"], line["counter"], line["columns"])


def ecs_key(doc: dict[str, Any]) -> Key:
    meta = doc["osquery"]
    cols = next(v for v in meta.values() if isinstance(v, dict) and "n" in v and "t" in v)
    return key_of(doc["event"]["action"], meta["counter"], cols)


class LineCounter:
    """Counts occurrences of `token` in a growing file, reading only what was appended since the last call."""

    def __init__(self, path: Path, token: bytes = b"\n") -> None:
        self.path, self.token, self.offset, self.n, self._rest = path, token, 0, 0, b""

    def count(self) -> int:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.n
        self.offset += len(data)
        data = self._rest + data
        self.n += data.count(self.token)
        keep = len(self.token) - 1
        self._rest = data[-keep:] if keep else b""
        return self.n


# ---------------------------------------------------------------------------------------------
# targets: one shipper config, a cheap received count (for the timeline) and a full read-back


@dataclass
class Target:
    server: str  # ServerManager name
    shipper: dict[str, Any]
    query: str
    count: Callable[[], int | None]  # events received so far (duplicates included), None if unknown now
    read: Callable[[], list[tuple[Key, str]]]  # (key, event id) of every received event of `query`
    close: Callable[[], None] = lambda: None


class _Loop:
    """An asyncio loop on its own thread, for aiokafka calls made from synchronous code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="outage-kafka", daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


def kafka_target(srv: KafkaServer, topic: str, query: str) -> Target:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tp = TopicPartition(topic, 0)  # the harness broker creates topics with one partition
    loop = _Loop()
    state: dict[str, Any] = {"consumer": None}

    async def end_offset() -> int:
        if state["consumer"] is None:
            c = AIOKafkaConsumer(bootstrap_servers=srv.bootstrap_servers, request_timeout_ms=2000,
                                 enable_auto_commit=False)
            state["consumer"] = c  # drop() closes it when start fails too
            async with asyncio.timeout(3):
                await c.start()
        async with asyncio.timeout(2):
            offsets = await state["consumer"].end_offsets([tp])
        return int(offsets[tp])

    async def drop() -> None:
        c, state["consumer"] = state["consumer"], None
        if c is not None:
            try:
                async with asyncio.timeout(5):
                    await c.stop()
            except Exception:  # noqa: BLE001 - a consumer of a stopped broker may not close cleanly
                pass

    def count() -> int | None:
        try:
            return loop.run(end_offset(), timeout=6)
        except Exception:  # noqa: BLE001 - broker down: unknown now; reconnect next time
            try:
                loop.run(drop(), timeout=6)
            except Exception:  # noqa: BLE001
                pass
            return None

    async def consume_all() -> list[tuple[Key, str]]:
        c = AIOKafkaConsumer(bootstrap_servers=srv.bootstrap_servers, enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=10000)
        async with asyncio.timeout(30):
            await c.start()
        out: list[tuple[Key, str]] = []
        try:
            c.assign([tp])
            async with asyncio.timeout(120):
                end = (await c.end_offsets([tp]))[tp]
                await c.seek_to_beginning(tp)
                while await c.position(tp) < end:
                    batch = await c.getmany(tp, timeout_ms=1000, max_records=5000)
                    for m in batch.get(tp, []):
                        line = json.loads(m.value)
                        if line.get("name") == query:
                            out.append((line_key(line), m.key.decode()))
        finally:
            async with asyncio.timeout(10):
                await c.stop()
        return out

    def close() -> None:
        try:
            loop.run(drop(), timeout=6)
        finally:
            loop.close()

    # aiokafka holds a send while the broker is away; send_timeout_ms (default 45 s) then turns it into a
    # Retry. 10 s makes the outage show as "retrying" for short local outages too.
    shipper = {"type": "kafka", "brokers": [srv.bootstrap_servers], "topic": topic, "format": "osquery",
               "send_timeout_ms": 10000}
    return Target("kafka", shipper, query, count, lambda: asyncio.run(consume_all()), close)


def _post(url: str, body: dict[str, Any] | None = None, method: str = "POST", timeout: float = 30) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def search_target(srv: SearchServer, query: str) -> Target:
    pattern = f"{srv.url}/logs-osquery.*"
    match = {"term": {"osquery.query.name": query}}

    def count() -> int | None:
        try:
            return int(_post(f"{pattern}/_count", {"query": match}, timeout=2)["count"])
        except Exception:  # noqa: BLE001 - down or recovering
            return None

    def read() -> list[tuple[Key, str]]:
        _post(f"{pattern}/_refresh", timeout=60)
        page = _post(f"{pattern}/_search?scroll=1m", {"size": 5000, "query": match,
                                                      "_source": ["event.id", "event.action", "osquery"]})
        out: list[tuple[Key, str]] = []
        try:
            while page["hits"]["hits"]:
                out.extend((ecs_key(h["_source"]), h["_source"]["event"]["id"]) for h in page["hits"]["hits"])
                page = _post(f"{srv.url}/_search/scroll", {"scroll": "1m", "scroll_id": page["_scroll_id"]})
        finally:
            try:
                _post(f"{srv.url}/_search/scroll", {"scroll_id": page["_scroll_id"]}, method="DELETE")
            except Exception:  # noqa: BLE001 - an expired scroll is gone anyway
                pass
        return out

    shipper = {"type": srv.flavor, "hosts": [srv.url], "install_template": True}
    return Target(srv.flavor, shipper, query, count, read)


def hec_target(receiver: HecReceiver, query: str) -> Target:
    token = str(uuid.uuid4())
    receiver.add_token(token)
    out_file = receiver.output_file(token)
    counter = LineCounter(out_file, b'"quarry_event_id"')  # one per log record in the OTLP-JSON lines

    def read() -> list[tuple[Key, str]]:
        return [(line_key(e["event"]), e["fields"]["quarry_event_id"]) for e in read_hec_output(out_file)
                if isinstance(e["event"], dict) and e["event"].get("name") == query]

    shipper = {"type": "splunk_hec", "url": receiver.url, "token": token, "format": "osquery"}
    return Target("hec", shipper, query, counter.count, read)


def lumberjack_target(srv: LumberjackServer, query: str) -> Target:
    out_file = srv.switch_output(srv.data_dir / f"outage-{query}.jsonl")
    counter = LineCounter(out_file)

    def read() -> list[tuple[Key, str]]:
        out = []
        with open(out_file, "rb") as f:
            for raw in f:
                if raw.endswith(b"\n"):
                    ev = json.loads(raw)
                    if ev.get("name") == query:
                        out.append((line_key(ev), ev["@metadata"]["_id"]))
        return out

    shipper = {"type": "logstash", "hosts": [f"{srv.host}:{srv.port}"], "format": "osquery"}
    return Target("lumberjack", shipper, query, counter.count, read)
