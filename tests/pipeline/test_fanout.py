"""The Pipeline: fan-out, routing, full queues, shutdown, restart after a crash, bounded memory."""

from __future__ import annotations

import asyncio

import pytest

from collector.pipeline import Pipeline, PipelineStopped, Record
from collector.pipeline.segment import list_segments
from tests.pipeline.fake import FakeShipper, ids_of, rec, settings, wait_for


async def test_a_dead_sink_does_not_stall_the_others(tmp_path):
    good, dead, slow = FakeShipper("good"), FakeShipper("dead"), FakeShipper("slow", delay=0.02)
    dead.dead = True
    p = Pipeline([good, dead, slow], {n: settings(n) for n in ("good", "dead", "slow")}, tmp_path)
    await p.start()
    for i in range(0, 2000, 100):
        await p.submit_many([rec(j) for j in range(i, i + 100)])
    await wait_for(lambda: len(good.delivered) == 2000 and len(slow.delivered) == 2000)
    snap = p.snapshot()
    assert snap["dead"]["acked"] == 0 and snap["dead"]["spool_events"] == 2000
    assert snap["dead"]["health"] == "retrying" and snap["good"]["health"] == "ok"
    await p.stop(0.2)


async def test_routing_and_one_render_per_format(tmp_path):
    a, b, c = FakeShipper("a"), FakeShipper("b"), FakeShipper("c")
    b.format = c.format = "ecs"  # a shipper's declared format is what it is rendered in
    calls: list[tuple[int, str]] = []

    def render(event: int, fmt: str) -> Record:
        calls.append((event, fmt))
        return rec(event, name=fmt)

    sets = {"a": settings("a"), "b": settings("b", format="ecs"), "c": settings("c", format="ecs")}
    p = Pipeline([a, b, c], sets, tmp_path, render=render)
    await p.start()
    await p.submit(1)
    await p.submit(2, shippers=["a"])
    await p.submit(3, shippers=["b", "c"])
    with pytest.raises(ValueError, match="unknown shipper.*nope"):
        await p.submit(4, shippers=["nope"])
    await wait_for(lambda: len(a.delivered) == 2 and len(b.delivered) == 2 and len(c.delivered) == 2)
    assert ids_of(a.delivered) == [1, 2] and ids_of(b.delivered) == [1, 3] == ids_of(c.delivered)
    assert {r.name for r in b.delivered} == {"ecs"} and {r.name for r in a.delivered} == {"osquery"}
    assert sorted(calls) == [(1, "ecs"), (1, "osquery"), (2, "osquery"), (3, "ecs")]
    await p.stop(1)


async def test_full_queue_block_makes_submit_wait(tmp_path):
    sh = FakeShipper()
    sh.dead = True
    p = Pipeline([sh], {"fake": settings(spool=False, queue={"max_events": 50},
                                         batch={"max_events": 10, "linger_ms": 0})}, tmp_path)
    await p.start()
    await p.submit_many([rec(i) for i in range(50 + 20)])  # 2 batches of 10 in flight, 50 queued
    waits = p.snapshot()["fake"]["put_waits"]
    blocked = asyncio.create_task(p.submit(rec(999)))
    await asyncio.sleep(0.1)
    assert not blocked.done()
    snap = p.snapshot()["fake"]
    assert snap["queued_events"] == 50 and snap["put_waits"] == waits + 1
    sh.dead = False
    await asyncio.wait_for(blocked, 5)
    await wait_for(lambda: len(sh.delivered) == 71)
    assert p.snapshot()["fake"]["put_wait_s"] >= 0.09 and p.snapshot()["fake"]["dropped_total"] == 0
    await p.stop(1)


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
async def test_full_queue_drop_policies_count_and_report(tmp_path, policy):
    sh = FakeShipper()
    sh.dead = True
    status: list[dict] = []
    p = Pipeline([sh], {"fake": settings(spool=False, queue={"max_events": 50, "when_full": policy},
                                         batch={"max_events": 10, "linger_ms": 0}, concurrency=1)},
                 tmp_path, on_status=status.append, status_interval_s=0.01)
    await p.start()
    await p.submit_many([rec(i) for i in range(10)])
    await wait_for(lambda: sh.calls >= 1)  # batch 0..9 in flight
    await p.submit_many([rec(i) for i in range(10, 110)])  # 100 more into a queue of 50
    snap = p.snapshot()["fake"]
    assert snap["dropped"] == {f"queue_full_{policy}": 50} and snap["queued_events"] == 50
    sh.dead = False
    await wait_for(lambda: len(sh.delivered) == 60)
    expected = list(range(60)) if policy == "drop_newest" else list(range(10)) + list(range(60, 110))
    assert sorted(ids_of(sh.delivered)) == expected
    await wait_for(lambda: sum(s["rows"] for s in status if s["event"] == "drop") == 50)
    s = next(s for s in status if s["event"] == "drop")
    assert s["reason"] == f"queue_full_{policy}" and s["query"] == "pack_q" and s["host"] == "h1"
    await p.stop(1)


async def test_graceful_stop_leaves_the_rest_in_the_spool_and_restart_sends_it(tmp_path):
    sh = FakeShipper(delay=0.05)
    p = Pipeline([sh], {"fake": settings(batch={"max_events": 10, "linger_ms": 0})}, tmp_path)
    await p.start()
    await p.submit_many([rec(i) for i in range(1000)])
    # On a loaded host the first batch can take longer than the grace: stop once delivery is under way
    # (1000 events at 10 per 50 ms take about 2.5 s, so most are still pending).
    await wait_for(lambda: len(sh.delivered) > 0)
    await p.stop(grace=0.2)
    with pytest.raises(PipelineStopped):
        await p.submit(rec(5000))
    sent = sorted(ids_of(sh.delivered))
    assert 0 < len(sent) < 1000 and sh.closed == 1
    left = p.snapshot()["fake"]["spool_events"]
    assert left == 1000 - len(sent)
    sh2 = FakeShipper()
    p2 = Pipeline([sh2], {"fake": settings()}, tmp_path)
    await p2.start()
    await wait_for(lambda: len(sh2.delivered) == left)
    assert sorted(sent + ids_of(sh2.delivered)) == list(range(1000))  # none lost, none twice
    await p2.stop(1)


async def test_graceful_stop_drains_within_grace(tmp_path):
    sh = FakeShipper()
    p = Pipeline([sh], {"fake": settings(), "mem": settings("mem", spool=False)}, tmp_path)
    mem = FakeShipper("mem")
    p = Pipeline([sh, mem], {"fake": settings(), "mem": settings("mem", spool=False)}, tmp_path)
    await p.start()
    await p.submit_many([rec(i) for i in range(3000)])
    await p.stop(grace=10)
    assert len(sh.delivered) == 3000 and len(mem.delivered) == 3000
    assert p.snapshot()["fake"]["spool_events"] == 0


async def test_stop_without_spool_counts_what_is_left_as_dropped(tmp_path):
    sh = FakeShipper()
    sh.dead = True
    status: list[dict] = []
    p = Pipeline([sh], {"fake": settings(spool=False)}, tmp_path, on_status=status.append)
    await p.start()
    await p.submit_many([rec(i) for i in range(300)])
    await p.stop(grace=0.1)
    assert p.snapshot()["fake"]["dropped"] == {"shutdown": 300}
    assert sum(s["rows"] for s in status if s["reason"] == "shutdown") == 300


async def test_kill_and_restart_resends_unacked_only(tmp_path):
    sh = FakeShipper()
    p = Pipeline([sh], {"fake": settings(batch={"max_events": 10, "linger_ms": 0})}, tmp_path)
    await p.start()
    await p.submit_many([rec(i) for i in range(500)])
    await wait_for(lambda: len(sh.delivered) == 500)
    await p.runners["fake"].spool.sync()  # the periodic cursor save
    sh.dead = True
    await p.submit_many([rec(i) for i in range(500, 800)])
    await wait_for(lambda: sh.calls >= 60)
    p.abort()  # SIGKILL: no drain, no final cursor save
    sh2 = FakeShipper()
    p2 = Pipeline([sh2], {"fake": settings()}, tmp_path)
    await p2.start()
    await wait_for(lambda: len(sh2.delivered) == 300)
    await asyncio.sleep(0.05)
    assert sorted(ids_of(sh2.delivered)) == list(range(500, 800))  # acked ones not re-sent
    assert [r.id for r in sh2.delivered] == [f"id-{i}" for i in range(500, 800)]
    await p2.stop(1)


async def test_memory_stays_bounded_with_a_dead_sink(tmp_path):
    sh = FakeShipper()
    sh.dead = True
    p = Pipeline([sh], {"fake": settings(queue={"max_events": 10_000},
                                         spool={"segment_bytes": 4 << 20, "max_bytes": 1 << 30})}, tmp_path)
    await p.start()
    peak = 0
    for i in range(0, 200_000, 1000):
        await p.submit_many([rec(j) for j in range(i, i + 1000)])
        peak = max(peak, p.snapshot()["fake"]["queued_events"])
        await asyncio.sleep(0)
    await wait_for(lambda: p.snapshot()["fake"]["queued_events"] == 10_000)  # the read-ahead is full
    snap = p.snapshot()["fake"]
    assert peak <= 10_000 and snap["spool_events"] == 200_000
    assert snap["spool_bytes"] > 10_000 * 100 and len(list_segments(tmp_path / "spool" / "fake")) > 3
    assert snap["in_flight"] + snap["queued_events"] <= 10_000 + 2 * 100
    await p.stop(0.1)
