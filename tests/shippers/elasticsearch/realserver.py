"""Shared real-server checks for the elasticsearch and opensearch shippers (used by both test packages)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from collector.ecs import AgentFacts, EcsMapper, HostFacts
from collector.pipeline.api import Delivered, Partial, Record
from collector.pipeline.config import parse_settings


def http(url: str, method: str = "GET", body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def namespace() -> str:
    return "t" + uuid.uuid4().hex[:12]


def ecs_records(ns: str, n: int, table: str = "processes", start: int = 0) -> list[Record]:
    mapper = EcsMapper(namespace=ns)
    host, agent = HostFacts(hostname="Host1", id="hid-1"), AgentFacts(id="agent-1", name="quarry")
    out = []
    for i in range(start, start + n):
        row = {"pid": str(1000 + i), "name": f"proc{i}", "path": f"/usr/bin/proc{i}", "cmdline": f"proc{i} -x",
               "uid": "0", "parent": "1", "start_time": "1767225600"}
        eid = f"{ns}-{i}"
        doc = mapper.document(row, table=table, action="snapshot", query_name="procs", unix_time=1767225600.0 + i,
                              event_id=eid, reason="first run", host=host, agent=agent)
        out.append(Record(id=eid, payload=orjson.dumps(doc), name="procs", kind="snapshot", table=table,
                          time=1767225600.0 + i, host="Host1"))
    return out


def make(type_: str, url: str, ns: str, **extra: Any) -> Any:
    from collector.pipeline.config import create_shipper

    raw = {"type": type_, "hosts": [url], "namespace": ns, "install_template": True, **extra}
    settings, errors = parse_settings("t", raw)
    assert errors == []
    return create_shipper("t", settings, raw)


async def ship(shipper: Any, recs: list[Record]) -> Any:
    return await shipper.send(shipper.encode(recs))


def ship_once(type_: str, url: str, ns: str, recs: list[Record], **extra: Any) -> Any:
    """Open a shipper, send one request, close it: the outcome."""

    async def go() -> Any:
        sh = make(type_, url, ns, **extra)
        try:
            await sh.open()
            return await ship(sh, recs)
        finally:
            await sh.close()

    return asyncio.run(go())


def search(url: str, stream: str, size: int = 1000) -> list[dict[str, Any]]:
    http(f"{url}/{stream}/_refresh", "POST")
    res = http(f"{url}/{stream}/_search", "POST", {"size": size, "sort": [{"osquery.counter": "asc"}],
                                                     "query": {"match_all": {}}})
    return [{"_id": h["_id"], **h["_source"]} for h in res["hits"]["hits"]]


def count(url: str, stream: str) -> int:
    http(f"{url}/{stream}/_refresh", "POST")
    return int(http(f"{url}/{stream}/_count")["count"])


def run_roundtrip(type_: str, url: str) -> None:
    """N ECS documents in, the same N out (content and _id); resend → no duplicates; mapping via template."""
    ns = namespace()
    recs = ecs_records(ns, 50)
    # counter makes the search order stable
    recs = [Record(id=r.id, payload=r.payload.replace(b'"counter":0', b'"counter":%d' % i), name=r.name,
                   kind=r.kind, table=r.table, time=r.time) for i, r in enumerate(recs)]

    async def go() -> tuple[Any, Any, Any]:
        sh = make(type_, url, ns)
        try:
            await sh.open()
            h = await sh.healthcheck()
            first = await ship(sh, recs)
            again = await ship(sh, recs)
            return h, first, (again, dict(sh.stats))
        finally:
            await sh.close()

    h, first, (again, stats) = asyncio.run(go())
    assert h.ok, h.detail
    assert first == Delivered()
    assert again == Delivered()
    assert stats["duplicates"] == 50
    stream = f"logs-osquery.processes-{ns}"
    docs = search(url, stream)
    assert len(docs) == 50
    assert count(url, stream) == 50
    for i, d in enumerate(docs):
        src = json.loads(recs[i].payload)
        assert d.pop("_id") == recs[i].id
        assert d == src
    mapping = http(f"{url}/{stream}/_mapping")
    (backing,) = mapping.values()
    assert next(iter(mapping)).startswith(f".ds-{stream}")  # a real data stream, not a plain index
    props = backing["mappings"]["properties"]
    assert props["process"]["properties"]["pid"]["type"] == "long"
    assert props["@timestamp"]["type"] == "date"


def run_mapping_conflict(type_: str, url: str) -> None:
    """One document whose process.pid is not a number: rejected with the server's reason, the rest delivered."""
    ns = namespace()
    recs = ecs_records(ns, 5)
    bad = json.loads(recs[2].payload)
    bad["process"]["pid"] = "not-a-number"
    recs[2] = Record(id=recs[2].id, payload=orjson.dumps(bad), name="procs", kind="snapshot", table="processes",
                     time=recs[2].time)

    out = ship_once(type_, url, ns, recs)
    assert isinstance(out, Partial)
    assert out.retry == ()
    assert [i for i, _ in out.rejected] == [2]
    reason = out.rejected[0][1]
    assert reason.startswith("400 ") and "parsing_exception" in reason and "process.pid" in reason, reason
    stream = f"logs-osquery.processes-{ns}"
    assert count(url, stream) == 4
    assert sorted(d["_id"] for d in search(url, stream)) == sorted(r.id for i, r in enumerate(recs) if i != 2)


def run_osquery_format(type_: str, url: str) -> None:
    ns = namespace()
    lines = [orjson.dumps({"name": "procs", "hostIdentifier": "h", "action": "added", "unixTime": 1767225600 + i,
                           "columns": {"pid": str(i)}, "counter": i}) for i in range(3)]
    recs = [Record(id=f"{ns}-{i}", payload=p, name="procs", table="processes", time=1767225600.0 + i)
            for i, p in enumerate(lines)]

    assert ship_once(type_, url, ns, recs, format="osquery") == Delivered()
    docs = search(url, f"logs-osquery.processes-{ns}")
    assert [d["osquery"]["columns"]["pid"] for d in docs] == ["0", "1", "2"]
    assert docs[0]["@timestamp"] == "2026-01-01T00:00:00.000Z"


def run_unreachable(type_: str) -> None:
    from collector.pipeline.api import Retry

    async def go() -> Any:
        sh = make(type_, "http://127.0.0.1:9", "default", timeout_s=2, healthcheck_timeout_s=2)
        try:
            await sh.open()  # never raises
            h = await sh.healthcheck()
            return h, await ship(sh, ecs_records("default", 2))
        finally:
            await sh.close()

    h, out = asyncio.run(go())
    assert not h.ok
    assert isinstance(out, Retry)


def run_status_events(type_: str, url: str) -> None:
    """Status events rendered for the ecs format are accepted by a data stream (they need @timestamp)."""
    from collector.shipping import Item, render

    ns = namespace()
    docs = [{"host": "web-1", "time": 1767225600.0 + i, "severity": "warning", "message": f"query q{i} denylisted",
             "query": f"q{i}", "pid": 4242} for i in range(3)]
    recs = [render(Item(None, d), "ecs") for d in docs]

    assert ship_once(type_, url, ns, recs) == Delivered()
    stream = f"logs-osquery.status-{ns}"
    http(f"{url}/{stream}/_refresh", "POST")
    hits = http(f"{url}/{stream}/_search", "POST", {"size": 10, "sort": [{"@timestamp": "asc"}]})["hits"]["hits"]
    assert [h["_source"]["message"] for h in hits] == [f"query q{i} denylisted" for i in range(3)]
    assert [h["_source"]["osquery"]["status"]["query"] for h in hits] == ["q0", "q1", "q2"]
    assert hits[0]["_source"]["host"] == {"name": "web-1"} and hits[0]["_source"]["log"]["level"] == "warning"



# --- drain after an outage -------------------------------------------------------------------------------
@dataclass
class Drain:
    """One outage run, times in time.monotonic(). Delays are counted from `server_up`."""

    server_up: float  # a probe outside the clients got its first _bulk accepted after the restart
    first_accepted: float  # the shipper's first accepted batch after the restart
    node_first: list[float | None]  # per proxy node: its first 2xx answer after server_up (None: none seen)
    delivered: int
    expected: int
    requests_after_up: int  # _bulk requests the shipper made from server_up on
    failed_after_up: int  # of which found no node (connection refused: the dead node)

    @property
    def delay_s(self) -> float:
        return self.first_accepted - self.server_up

    @property
    def rejoin_s(self) -> float | None:
        """When every node had served again; None if one did not within the observation window."""
        if any(t is None for t in self.node_first):
            return None
        return max((t for t in self.node_first if t is not None), default=self.server_up) - self.server_up


def closed_port() -> int:
    """A port nothing listens on (bound, then released): a node that refuses connections."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _probe_bulk(url: str, index: str) -> bool:
    """One raw _bulk of one document into an existing index: does the server accept writes?"""
    body = (json.dumps({"index": {"_index": index}}) + "\n" + json.dumps({"probe": 1}) + "\n").encode()
    req = urllib.request.Request(f"{url}/_bulk", data=body, method="POST",
                                 headers={"content-type": "application/x-ndjson"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status == 200 and json.loads(resp.read()).get("errors") is False
    except (OSError, ValueError):
        return False


async def _wait_accepts_writes(url: str, index: str) -> float:
    """time.monotonic() when the server first accepts a write. A probe starts every 0.1 s without waiting for
    the last one: a write that reached the server early may wait there for its shard and be the first through."""
    probes: set[asyncio.Future[bool]] = set()
    while True:
        probes.add(asyncio.ensure_future(asyncio.to_thread(_probe_bulk, url, index)))
        done, probes = await asyncio.wait(probes, timeout=0.1, return_when=asyncio.FIRST_COMPLETED)
        if any(f.result() for f in done):
            return time.monotonic()


def run_drain_after_outage(servers: Any, type_: str, url: str, port: int, *, nodes: int = 2, dead_nodes: int = 0,
                           down_s: float = 3.0, pending: int = 4, observe_s: float = 20.0) -> Drain:
    """The whole cluster goes down and comes back; how soon do batches flow again, and through every node?

    The shipper's pool has `nodes` nodes, each a NodeProxy in front of the one real server (0: the server's
    URL itself), plus `dead_nodes` that refuse connections. Deliver a batch, stop the server, keep `pending`
    batches retrying, start it again, then keep batches flowing for up to `observe_s` after a probe outside the
    clients sees the server accept writes. The pipeline's backoff is pinned to at most 0.2 s, so what is left
    of a delay is the client's (node parking, retries of its own)."""
    from collector.pipeline.config import create_shipper
    from collector.pipeline.metrics import ShipperMetrics
    from collector.pipeline.sender import RateLimiter, Sender
    from tests.shippers.elasticsearch.nodeproxy import NodeProxy

    ns = namespace()
    probe_index = f"probe-{ns}"
    http(f"{url}/{probe_index}", "PUT")  # created now: after the restart the probe needs no index creation
    accepted: list[float] = []
    made = 0

    def chunk(n: int = 5) -> list[tuple[int, Record]]:
        nonlocal made
        recs = ecs_records(ns, n, start=made)
        made += n
        return list(enumerate(recs, start=made - n))

    async def go() -> Drain:
        async with contextlib.AsyncExitStack() as stack:
            proxies = [await stack.enter_async_context(NodeProxy(port)) for _ in range(nodes)]
            hosts = [p.url for p in proxies] or [url]
            hosts += [f"http://127.0.0.1:{closed_port()}" for _ in range(dead_nodes)]
            raw = {"type": type_, "hosts": hosts, "namespace": ns,
                   "install_template": True, "timeout_s": 5, "healthcheck_timeout_s": 5,
                   "retry": {"initial_s": 0.2, "max_s": 0.2}}
            settings, errors = parse_settings("t", raw)
            assert errors == []
            sh: Any = create_shipper("t", settings, raw)  # a BulkShipper: its stats are read below
            stack.push_async_callback(sh.close)
            sender = Sender(sh, settings, ShipperMetrics(),
                            lambda items: accepted.extend([time.monotonic()] * len(items)),
                            lambda dead: pytest.fail(f"dead-lettered: {dead[:1]}"), RateLimiter(0))
            await sh.open()
            await sender.deliver(chunk())
            assert len(accepted) == 5
            before = len(accepted)
            await asyncio.to_thread(servers.stop, type_)
            tasks = [asyncio.create_task(sender.deliver(chunk())) for _ in range(pending)]
            await asyncio.sleep(down_s)
            assert len(accepted) == before, "the server was stopped but batches got through"
            restart = asyncio.create_task(asyncio.to_thread(servers.start_again, type_))
            try:
                up = await _wait_accepts_writes(url, probe_index)
                stats_up = dict(sh.stats)
                deadline = up + observe_s

                def every_node_served() -> bool:
                    return all(p.accepted(up) for p in proxies)

                async def feed() -> None:  # a steady stream, so that a node back in the pool gets traffic
                    while time.monotonic() < deadline and not every_node_served():
                        await sender.deliver(chunk())
                        await asyncio.sleep(0.05)

                async with asyncio.timeout(observe_s + 60):
                    await asyncio.gather(*tasks, feed(), feed())
            finally:
                await restart
            firsts = [min(p.accepted(up), default=None) for p in proxies]
            return Drain(up, accepted[before], firsts, len(accepted), made,
                         sh.stats["requests"] - stats_up["requests"],
                         sh.stats["connect_errors"] - stats_up["connect_errors"])

    return asyncio.run(go())


FIRST_BATCH_S = 5.0  # measured: the first batch goes through with the probe's first write (within ~0.3 s)
EVERY_NODE_S = 15.0  # parking is at most 8 s (pool.DEAD_MAX_S); measured 2.6 s (ES), 5.7 s (OpenSearch)


def run_outage_drain(servers: Any, srv: Any) -> None:
    """Two nodes (proxies to the one server) and one that refuses connections: after an outage of the whole
    cluster the first batch goes through as soon as the server accepts writes, both nodes carry batches again
    within EVERY_NODE_S, and the dead node is skipped rather than tried on every request."""
    d = run_drain_after_outage(servers, srv.flavor, srv.url, srv.port, nodes=2, dead_nodes=1,
                               observe_s=EVERY_NODE_S + 5)
    per_node = [None if t is None else round(t - d.server_up, 2) for t in d.node_first]
    assert d.delivered == d.expected
    assert d.delay_s <= FIRST_BATCH_S, f"first batch {d.delay_s:.2f}s after the server accepted writes"
    assert d.rejoin_s is not None and d.rejoin_s <= EVERY_NODE_S, \
        f"a node carried no batch for {EVERY_NODE_S:g}s after the outage (first 2xx per node: {per_node})"
    assert d.failed_after_up <= max(3, d.requests_after_up // 5), \
        f"the dead node was tried {d.failed_after_up} times in {d.requests_after_up} requests"
