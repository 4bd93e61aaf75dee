from __future__ import annotations

import asyncio

import pytest

from collector.pipeline.queue import BoundedQueue, QueueClosed
from tests.pipeline.fake import rec


def items(n: int, start: int = 0, size: int = 0):
    return [(i, rec(i, size=size)) for i in range(start, start + n)]


async def test_block_waits_for_room_and_counts_the_wait():
    q = BoundedQueue(max_events=3, max_bytes=1 << 20, when_full="block")
    for it in items(3):
        assert await q.put(it)
    blocked = asyncio.create_task(q.put(items(1, 3)[0]))
    await asyncio.sleep(0.05)
    assert not blocked.done() and len(q) == 3
    assert [s for s, _ in q.take_nowait(1, 1 << 20)] == [0]
    assert await asyncio.wait_for(blocked, 1) is True
    assert [s for s, _ in q.drain_nowait()] == [1, 2, 3]
    assert q.waits == 1 and q.wait_s >= 0.04


async def test_drop_newest_and_drop_oldest_are_counted_by_reason():
    dropped: list[tuple[list[int], str]] = []

    def on_drop(its, reason):
        dropped.append(([s for s, _ in its], reason))

    q = BoundedQueue(2, 1 << 20, "drop_newest", on_drop)
    for it in items(4):
        await q.put(it)
    assert [s for s, _ in q.drain_nowait()] == [0, 1]
    assert dropped == [([2], "queue_full_drop_newest"), ([3], "queue_full_drop_newest")]
    dropped.clear()
    q = BoundedQueue(2, 1 << 20, "drop_oldest", on_drop)
    for it in items(4):
        await q.put(it)
    assert [s for s, _ in q.drain_nowait()] == [2, 3]
    assert dropped == [([0], "queue_full_drop_oldest"), ([1], "queue_full_drop_oldest")]


async def test_byte_limit_and_an_oversized_item_is_admitted_alone():
    q = BoundedQueue(100, 3000, "drop_newest", lambda its, r: None)
    big = items(3, size=1000)  # ~1010 bytes each: two fit
    assert [await q.put(it) for it in big] == [True, True, False]
    assert q.bytes <= 3000
    q.drain_nowait()
    huge = (9, rec(9, size=10_000))
    assert await q.put(huge) and len(q) == 1


async def test_get_batch_limits_by_count_bytes_and_linger():
    q = BoundedQueue(1000, 1 << 20)
    for it in items(10, size=100):
        await q.put(it)
    assert len(await q.get_batch(4, 1 << 20, 0)) == 4
    b = await q.get_batch(100, 250, 0)  # ~110 bytes each: two fit in 250
    assert len(b) == 2
    late = asyncio.get_running_loop().call_later(0.02, lambda: q._push((99, rec(99))))
    b = await q.get_batch(100, 1 << 20, 0.2)  # takes the 4 queued, lingers, and catches the late one
    late.cancel()
    assert [s for s, _ in b] == [6, 7, 8, 9, 99]


async def test_close_wakes_blocked_puts_and_getters():
    q = BoundedQueue(1, 1 << 20)
    await q.put(items(1)[0])
    blocked = asyncio.create_task(q.put(items(1, 1)[0]))
    await asyncio.sleep(0.01)
    q.close()
    with pytest.raises(QueueClosed):
        await blocked
    assert len(await q.get_batch(10, 1 << 20, 0)) == 1
    assert await q.get_batch(10, 1 << 20, 0) == []
