"""Chaos 2: a sink that goes down and up every second or two while a steady stream flows.

The real lumberjack peer sits behind a FlakyProxy that stops listening and cuts every open connection (in
the middle of a window) on each down phase. Nothing may be lost, a resend must carry the same event id,
the duplicates are bounded by the windows in flight at each cut, and the metrics show the retries.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.common import beats_ids, make_pipeline, wait_for
from tests.chaos.proxy import FlakyProxy
from tests.pipeline.fake import rec

N = 30_000
CHUNK = 250  # per submit, every 50 ms: 5,000 events/s for 6 s
BATCH = 500
CONCURRENCY = 2


@pytest.mark.realserver
async def test_flapping_sink_loses_nothing_and_shows_retries(tmp_path, lumberjack_server, lumberjack_output):
    proxy = FlakyProxy(lumberjack_server.host, lumberjack_server.port)
    await proxy.start()
    pipeline = make_pipeline(tmp_path / "state", {"beats": {
        "type": "logstash", "hosts": [proxy.address], "connect_timeout_s": 2, "ack_timeout_s": 5,
        "batch": {"max_events": BATCH, "linger_ms": 20}, "concurrency": CONCURRENCY, "request_timeout_s": 10,
        # short backoff so a 0.7 s outage is not followed by a long sleep; the ceiling still applies
        "retry": {"initial_s": 0.1, "max_s": 0.5}, "spool": {"fsync_ms": 200}}})
    await pipeline.start()
    flap = proxy.flap(up_s=1.0, down_s=0.7)
    try:
        for i in range(0, N, CHUNK):
            await pipeline.submit_many([rec(j) for j in range(i, i + CHUNK)])
            await asyncio.sleep(0.05)
        await wait_for(lambda: proxy.downs >= 4, 30, "four outages")
        flap.cancel()
        await asyncio.gather(flap, return_exceptions=True)
        await proxy.up()
        drained = await wait_for(lambda: pipeline.snapshot()["beats"]["spool_events"] == 0, 60, "the spool to drain")
        snap = pipeline.snapshot()["beats"]
    finally:
        flap.cancel()
        await pipeline.stop(5)
        await proxy.close()
    got = beats_ids(lumberjack_output)
    assert all(event_id == f"id-{i}" for event_id, i in got)  # a resend is the same event
    ids = [i for _, i in got]
    assert set(ids) == set(range(N)), f"{len(set(range(N)) - set(ids))} of {N} events lost"
    dups = len(ids) - N
    assert dups <= proxy.cuts * CONCURRENCY * BATCH, (dups, proxy.cuts)
    assert proxy.downs >= 4 and proxy.cuts >= 1
    assert snap["retried"] > 0 and snap["last_error"], snap
    assert N <= snap["acked"] <= len(ids) and snap["dropped_total"] == 0 and snap["dead_lettered"] == 0, snap
    print(f"{proxy.downs} outages, {proxy.cuts} connections cut, {snap['retried']} retried, {dups} duplicates, "
          f"drained {drained:.1f}s after the last outage")
