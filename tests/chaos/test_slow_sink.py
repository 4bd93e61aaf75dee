"""Chaos 3: a sink that answers each request after 1 s beside a fast one, in one pipeline.

The fast lane (logstash shipper -> the real lumberjack peer) must deliver at its own rate: its completion
time beside the slow lane is compared with a run where the same HEC lane answers at once (a generous ratio,
not an absolute time; the same encoding and spool work, so only the slowness differs). The slow lane
(splunk_hec shipper -> a FlakyProxy holding every answer for 1 s -> the real OTel HEC receiver) must still
get every event.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace

import pytest

from tests.chaos.common import beats_ids, make_pipeline, wait_for
from tests.chaos.proxy import FlakyProxy
from tests.pipeline.fake import rec
from tests.servers.plugin import read_hec_output

N = 20_000
HEC_BATCH = 2_000  # slow: 10 requests of 1 s, two in flight, about 5 s
RATIO = 2.0  # the fast lane may take at most twice as long beside the slow HEC as beside a quick one


def fast_shipper(lumberjack_server) -> dict:
    return {"type": "logstash", "hosts": [f"{lumberjack_server.host}:{lumberjack_server.port}"],
            "batch": {"max_events": 2000, "linger_ms": 20}}


async def run(tmp, lumberjack_server, hec_receiver, prefix: str, delay: float):
    """(fast lane's completion time, HEC lane's acked share at that moment, HEC lane's time after it,
    snapshot, what the receiver got)."""
    host, port = hec_receiver.url.removeprefix("http://").rsplit(":", 1)
    proxy = FlakyProxy(host, int(port), reply_delay_s=delay)
    await proxy.start()
    token = str(uuid.uuid4())
    hec_receiver.add_token(token)
    pipeline = make_pipeline(tmp / prefix, {
        "fast": fast_shipper(lumberjack_server),
        "hec": {"type": "splunk_hec", "url": f"http://{proxy.address}", "token": token, "request_timeout_s": 30,
                "batch": {"max_events": HEC_BATCH, "max_bytes": 8_000_000, "linger_ms": 20},
                "max_request_bytes": 8_000_000}})
    await pipeline.start()
    try:
        records = [replace(r, id=f"{prefix}-{r.id}") for r in (rec(i) for i in range(N))]
        start = time.monotonic()
        for i in range(0, N, 1000):
            await pipeline.submit_many(records[i:i + 1000])
        await wait_for(lambda: pipeline.snapshot()["fast"]["acked"] >= N, 60, f"{prefix}: the fast lane")
        took = time.monotonic() - start
        hec_then = pipeline.snapshot()["hec"]["acked"] / N
        hec_after = await wait_for(lambda: pipeline.snapshot()["hec"]["acked"] >= N, 60, f"{prefix}: the HEC lane")
        snap = pipeline.snapshot()
    finally:
        await pipeline.stop(5)
        await proxy.close()
    got = read_hec_output(hec_receiver.output_file(token), expected=N)
    return took, hec_then, hec_after, snap, got


def check_hec(prefix: str, snap: dict, got: list[dict]) -> None:
    ids = {e["fields"]["quarry_event_id"] for e in got}
    assert ids == {f"{prefix}-id-{i}" for i in range(N)}, f"{prefix}: {N - len(ids)} lost"
    assert snap["hec"]["dropped_total"] == 0 and snap["hec"]["dead_lettered"] == 0


@pytest.mark.realserver
async def test_slow_sink_does_not_hold_back_the_fast_one(tmp_path, lumberjack_server, lumberjack_output,
                                                         hec_receiver):
    alone, _, _, snap, got = await run(tmp_path, lumberjack_server, hec_receiver, "quick", 0.0)
    check_hec("quick", snap, got)
    beside, slow_then, slow_after, snap, got = await run(tmp_path, lumberjack_server, hec_receiver, "slow", 1.0)
    check_hec("slow", snap, got)
    beats = beats_ids(lumberjack_output)
    for prefix in ("quick", "slow"):
        ids = {event_id for event_id, _ in beats if event_id.startswith(prefix + "-")}
        assert ids == {f"{prefix}-id-{i}" for i in range(N)}, f"{prefix}: {N - len(ids)} lost"
    requests = snap["hec"]["requests"]
    assert requests >= N // HEC_BATCH
    assert slow_then < 1.0 and slow_after > 1.0  # the slow lane was still busy when the fast one had finished
    assert beside <= RATIO * alone, (alone, beside)
    print(f"fast lane: {N} events in {alone:.2f}s beside a quick HEC, {beside:.2f}s beside a 1 s/answer HEC "
          f"(ratio {beside / alone:.2f}); the slow HEC had {slow_then:.0%} then and finished {slow_after:.1f}s "
          f"later in {requests} requests")
