"""The bulk fast paths keep the one-at-a-time rules: put_many() queues the prefix that fits and hands the rest
to put()'s policy item by item; take_nowait() cuts by count and bytes as before; SegmentReader.take() reads
exactly what next() would, corrupt frames and chunk borders included."""

from __future__ import annotations

import asyncio
import os

from collector.pipeline.queue import BoundedQueue
from collector.pipeline.segment import SegmentReader, encode_frame
from tests.pipeline.fake import rec


def items(n: int, start: int = 0, size: int = 0):
    return [(i, rec(i, size=size)) for i in range(start, start + n)]


def seqs(xs) -> list[int]:
    return [s for s, _ in xs]


async def test_put_many_drop_newest_queues_the_prefix_and_drops_each_item_that_does_not_fit():
    dropped: list[tuple[list[int], str]] = []
    q = BoundedQueue(max_events=5, max_bytes=1 << 20, when_full="drop_newest",
                     on_drop=lambda xs, why: dropped.append((seqs(xs), why)))
    assert await q.put_many(items(3)) == 3
    assert await q.put_many(items(4, 3)) == 2
    assert seqs(q.drain_nowait()) == [0, 1, 2, 3, 4]
    assert dropped == [([5], "queue_full_drop_newest"), ([6], "queue_full_drop_newest")]


async def test_put_many_drop_newest_by_bytes_keeps_a_smaller_later_item():
    dropped: list[list[int]] = []
    q = BoundedQueue(max_events=100, max_bytes=100, when_full="drop_newest",
                     on_drop=lambda xs, why: dropped.append(seqs(xs)))
    small, big = items(1, 0)[0], items(1, 1, size=200)[0]
    small2 = items(1, 2)[0]
    assert len(small[1].payload) < 50 and len(big[1].payload) > 100
    assert await q.put_many([small, big, small2]) == 2  # the big one goes, the small one after it fits
    assert seqs(q.drain_nowait()) == [0, 2] and dropped == [[1]]


async def test_put_many_drop_oldest_evicts_from_the_head_in_order():
    dropped: list[list[int]] = []
    q = BoundedQueue(max_events=4, max_bytes=1 << 20, when_full="drop_oldest",
                     on_drop=lambda xs, why: dropped.append(seqs(xs)))
    assert await q.put_many(items(6)) == 6
    assert seqs(q.drain_nowait()) == [2, 3, 4, 5] and dropped == [[0], [1]]


async def test_put_many_block_waits_for_room_and_keeps_the_order():
    q = BoundedQueue(max_events=3, max_bytes=1 << 20, when_full="block")
    task = asyncio.create_task(q.put_many(items(5)))
    await asyncio.sleep(0.05)
    assert not task.done() and seqs(q.take_nowait(10, 1 << 20)) == [0, 1, 2]
    assert await asyncio.wait_for(task, 1) == 5
    assert seqs(q.drain_nowait()) == [3, 4] and q.waits == 1 and q.bytes == 0


async def test_put_many_oversized_item_is_admitted_alone():
    q = BoundedQueue(max_events=10, max_bytes=100, when_full="block")
    big = items(1, 0, size=300)
    assert await q.put_many(big) == 1 and len(q) == 1 and q.bytes == len(big[0][1].payload)
    task = asyncio.create_task(q.put_many(items(2, 1)))
    await asyncio.sleep(0.05)
    assert not task.done()  # the queue is over its byte limit: the next one waits
    assert seqs(q.take_nowait(10, 100)) == [0]  # an oversized head still goes alone
    assert await asyncio.wait_for(task, 1) == 2 and seqs(q.drain_nowait()) == [1, 2]


async def test_take_nowait_cuts_by_count_and_bytes_and_keeps_the_byte_count():
    q = BoundedQueue(max_events=100, max_bytes=1 << 20)
    xs = items(10, size=50)
    await q.put_many(xs)
    one = len(xs[0][1].payload)
    assert all(len(r.payload) == one for _, r in xs)
    assert seqs(q.take_nowait(3, 1 << 20)) == [0, 1, 2]
    assert seqs(q.take_nowait(100, 2 * one + one // 2)) == [3, 4]
    assert q.bytes == 5 * one
    assert seqs(q.take_nowait(100, 1 << 20)) == [5, 6, 7, 8, 9] and q.bytes == 0 and len(q) == 0
    assert q.take_nowait(100, 1 << 20) == []


def _segment(path, n: int, corrupt: set[int]) -> int:
    frames = [encode_frame(i, rec(i, size=i % 7 * 10)) for i in range(n)]
    data = bytearray()
    for i, f in enumerate(frames):
        if i in corrupt:  # flip a payload byte: the CRC no longer matches
            f = bytearray(f)
            f[-2] ^= 0xFF
        data += f
    path.write_bytes(bytes(data))
    return len(data)


def _read_with_next(path, limit: int) -> list[tuple[int, bytes]]:
    r = SegmentReader(path, 0)
    out = []
    while (it := r.next(limit)) is not None:
        out.append((it[0], it[1].payload))
    r.close()
    return out


def test_segment_take_reads_what_next_reads_across_chunks_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setattr(SegmentReader, "CHUNK", 1000)  # many refills, frames straddling them
    path = tmp_path / "00000000000000000000.seg"
    limit = _segment(path, 300, corrupt={5, 6, 150, 299})
    expected = _read_with_next(path, limit)
    assert [s for s, _ in expected] == [i for i in range(300) if i not in {5, 6, 150, 299}]
    for max_events, max_bytes in ((1, 1 << 30), (7, 1 << 30), (1000, 1 << 30), (1000, 500)):
        r = SegmentReader(path, 0)
        got: list[tuple[int, bytes]] = []
        while batch := r.take(limit, max_events, max_bytes):
            assert len(batch) <= max_events
            assert len(batch) == 1 or sum(len(x.payload) for _, x in batch[:-1]) < max_bytes
            got += [(s, x.payload) for s, x in batch]
        assert got == expected and r.corrupt_regions == 4
        r.close()


def test_segment_take_stops_at_the_writer_limit_and_resumes(tmp_path):
    path = tmp_path / "00000000000000000000.seg"
    frames = [encode_frame(i, rec(i)) for i in range(20)]
    path.write_bytes(b"".join(frames[:10]) + frames[10][:15])  # a half-written frame at the end
    limit = os.path.getsize(path)
    r = SegmentReader(path, 0)
    assert [s for s, _ in r.take(limit, 100, 1 << 30)] == list(range(10))
    assert r.take(limit, 100, 1 << 30) == []
    path.write_bytes(b"".join(frames))
    assert [s for s, _ in r.take(os.path.getsize(path), 100, 1 << 30)] == list(range(10, 20))
    r.close()
