"""Smoke test: 10,000 events over lumberjack v2 to the go-lumber peer, read back from its JSON lines."""

from __future__ import annotations

import pytest

from tests.servers.lumberjack_client import LumberjackClient
from tests.servers.plugin import read_jsonl

pytestmark = pytest.mark.realserver
N = 10_000
WINDOW = 500


def _event(i: int) -> dict:
    return {"@timestamp": f"2026-01-01T00:00:{i % 60:02d}.000Z", "seq": i, "message": f"line {i}",
            "host": {"name": "web01"}, "tags": ["quarry"]}


async def test_lumberjack_10k(lumberjack_server, lumberjack_output):
    acked = 0
    async with LumberjackClient(lumberjack_server.host, lumberjack_server.port) as c:
        for start in range(0, N, WINDOW):
            # alternate compressed and plain windows
            acked += await c.send([_event(i) for i in range(start, start + WINDOW)], compress=(start // WINDOW) % 2 == 0)
    assert acked == N
    # ACK comes after the server wrote the events, so everything is on disk now
    got = read_jsonl(lumberjack_output)
    assert len(got) == N
    assert got == [_event(i) for i in range(N)]
