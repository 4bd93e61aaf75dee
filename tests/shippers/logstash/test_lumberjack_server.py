"""Beats mode against the real go-lumber peer of tests/servers: every event written back, exact count and
content, with and without compression, and through the Pipeline."""

from __future__ import annotations

import json

import pytest

from collector import __version__
from collector.pipeline import Pipeline
from collector.pipeline.api import Delivered, Record
from collector.pipeline.config import create_shipper, parse_settings
from tests.pipeline.fake import wait_for
from tests.servers.plugin import read_jsonl

pytestmark = pytest.mark.realserver
N = 10_000


def line(i: int) -> dict:
    return {"name": "pack_q", "hostIdentifier": "web-1", "unixTime": 1795773600, "counter": i,
            "columns": {"pid": str(i), "path": f"/usr/bin/p{i}", "cmd": "x" * (i % 50)}, "action": "added"}


def records(n: int) -> list[Record]:
    return [Record(id=f"ev-{i}", payload=json.dumps(line(i), separators=(",", ":")).encode(), name="pack_q",
                   time=1795773600.25, host="web-1") for i in range(n)]


def expected(i: int) -> dict:
    return {"@metadata": {"beat": "quarry", "type": "_doc", "version": __version__, "_id": f"ev-{i}"},
            "@timestamp": "2026-11-27T10:00:00.250Z", **line(i)}


@pytest.mark.parametrize("level", [0, 3])
async def test_10k_events_read_back(lumberjack_server, lumberjack_output, level):
    raw = {"type": "logstash", "hosts": [f"{lumberjack_server.host}:{lumberjack_server.port}"],
           "compression_level": level}
    settings, errors = parse_settings("ls", raw)
    assert errors == []
    s = create_shipper("ls", settings, raw)
    await s.open()
    recs = records(N)
    for k in range(0, N, 1000):
        assert await s.send(s.encode(recs[k:k + 1000])) == Delivered()
    await s.close()
    assert s.stats["connects"] == 1 and s.stats["windows"] == 10 and s.stats["events"] == N
    got = read_jsonl(lumberjack_output, expected=N)
    assert len(got) == N
    assert got == [expected(i) for i in range(N)]


async def test_through_pipeline(lumberjack_server, lumberjack_output, tmp_path):
    raw = {"type": "logstash", "hosts": [f"{lumberjack_server.host}:{lumberjack_server.port}"],
           "batch": {"linger_ms": 5}}
    settings, errors = parse_settings("ls", raw)
    assert errors == [] and settings.spool_enabled
    p = Pipeline([create_shipper("ls", settings, raw)], {"ls": settings}, tmp_path)
    await p.start()
    recs = records(5000)
    for k in range(0, 5000, 500):
        await p.submit_many(recs[k:k + 500])
    await wait_for(lambda: p.snapshot()["ls"]["acked"] == 5000, timeout=30)
    await p.stop(5)
    got = read_jsonl(lumberjack_output, expected=5000)
    assert len(got) == 5000
    assert sorted(got, key=lambda e: e["counter"]) == [expected(i) for i in range(5000)]
