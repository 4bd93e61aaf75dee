"""Shared real-server checks for the elasticsearch and opensearch shippers (used by both test packages)."""

from __future__ import annotations

import asyncio
import json
import urllib.request
import uuid
from typing import Any

import orjson

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


def ecs_records(ns: str, n: int, table: str = "processes") -> list[Record]:
    mapper = EcsMapper(namespace=ns)
    host, agent = HostFacts(hostname="Host1", id="hid-1"), AgentFacts(id="agent-1", name="quarry")
    out = []
    for i in range(n):
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
