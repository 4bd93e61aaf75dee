"""A bounded in-memory queue of (seq, Record) limited by events AND bytes, with an explicit policy when full.

    q = BoundedQueue(max_events=10_000, max_bytes=64 * MiB, when_full="block", on_drop=callback)
    accepted = await q.put(item)          # block: waits for room (backpressure); drop_*: never waits
    batch = await q.get_batch(max_events=500, max_bytes=1_000_000, linger_s=1.0)

`block` is how backpressure reaches the scheduler: the put waits, and the time it waited is counted
(`wait_s`, `waits`). `drop_newest` refuses the new item, `drop_oldest` evicts from the head; both hand the
dropped items to `on_drop(items, reason)` so the runner counts them and emits a status event.
One item larger than max_bytes is admitted when the queue is empty, so it can never block forever.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from collector.pipeline.api import Record

Item = tuple[int, Record]
DropFn = Callable[[list[Item], str], None]


class QueueClosed(Exception):
    """put() on a closed queue."""


class BoundedQueue:
    def __init__(self, max_events: int, max_bytes: int, when_full: str = "block",
                 on_drop: DropFn | None = None) -> None:
        self.max_events, self.max_bytes, self.when_full = max_events, max_bytes, when_full
        self._on_drop = on_drop
        self._items: deque[Item] = deque()
        self.bytes = 0
        self.closed = False
        self.wait_s = 0.0  # total time put() callers waited for room
        self.waits = 0  # puts that had to wait
        self._room = asyncio.Event()  # set when something was taken out
        self._data = asyncio.Event()  # set when something was put in (or the queue closed)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def oldest_time(self) -> float | None:
        return self._items[0][1].time if self._items else None

    def _fits(self, size: int) -> bool:
        if not self._items:
            return True
        return len(self._items) < self.max_events and self.bytes + size <= self.max_bytes

    def _push(self, item: Item) -> None:
        self._items.append(item)
        self.bytes += item[1].size
        self._data.set()

    def _pop(self) -> Item:
        item = self._items.popleft()
        self.bytes -= item[1].size
        self._room.set()
        return item

    async def put(self, item: Item) -> bool:
        """True when queued; False when dropped by `drop_newest`. QueueClosed after close()."""
        if self.closed:
            raise QueueClosed
        size = item[1].size
        if self._fits(size):
            self._push(item)
            return True
        if self.when_full == "drop_newest":
            self._drop([item], "queue_full_drop_newest")
            return False
        if self.when_full == "drop_oldest":
            evicted = []
            while self._items and not self._fits(size):
                evicted.append(self._pop())
            self._drop(evicted, "queue_full_drop_oldest")
            self._push(item)
            return True
        start = time.monotonic()
        self.waits += 1
        try:
            while not self._fits(size):
                if self.closed:
                    raise QueueClosed
                self._room.clear()
                await self._room.wait()
        finally:
            self.wait_s += time.monotonic() - start
        self._push(item)
        return True

    async def put_many(self, items: list[Item]) -> int:
        """put() each item in order; the number queued."""
        if self.closed:
            raise QueueClosed
        size = sum(len(r.payload) for _, r in items)
        if len(self._items) + len(items) <= self.max_events and self.bytes + size <= self.max_bytes:
            self._items.extend(items)  # all fit: one step instead of one put() per item
            self.bytes += size
            self._data.set()
            return len(items)
        n = 0
        for item in items:
            n += await self.put(item)
        return n

    async def wait_room(self) -> None:
        """Until something was taken out (or the queue closed)."""
        self._room.clear()
        if not self.closed:
            await self._room.wait()

    def _drop(self, items: list[Item], reason: str) -> None:
        if items and self._on_drop is not None:
            self._on_drop(items, reason)

    def take_nowait(self, max_events: int, max_bytes: int) -> list[Item]:
        """Up to max_events / max_bytes from the head (at least one item when any is queued)."""
        out: list[Item] = []
        size = 0
        items = self._items
        while items and len(out) < max_events:
            nxt = len(items[0][1].payload)
            if out and size + nxt > max_bytes:
                break
            out.append(items.popleft())
            size += nxt
        if out:
            self.bytes -= size
            self._room.set()
        return out

    async def get_batch(self, max_events: int, max_bytes: int, linger_s: float) -> list[Item]:
        """Wait for a first item, then gather until max_events / max_bytes or linger_s passed.

        Returns [] only when the queue is closed and empty."""
        while not self._items:
            if self.closed:
                return []
            self._data.clear()
            await self._data.wait()
        batch = self.take_nowait(max_events, max_bytes)
        size = sum(len(r.payload) for _, r in batch)
        deadline = time.monotonic() + linger_s
        while len(batch) < max_events and size < max_bytes and not self.closed:
            if self._items:
                if size + self._items[0][1].size > max_bytes:
                    break
                more = self.take_nowait(max_events - len(batch), max_bytes - size)
                batch += more
                size += sum(len(r.payload) for _, r in more)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._data.clear()
            try:
                async with asyncio.timeout(left):  # not wait_for: 3.11's can swallow a cancellation
                    await self._data.wait()
            except TimeoutError:
                break
        return batch

    def drain_nowait(self) -> list[Item]:
        """Everything still queued (used at shutdown)."""
        items = list(self._items)
        self._items.clear()
        self.bytes = 0
        self._room.set()
        return items

    def close(self) -> None:
        """Refuse new puts; wake every waiter (blocked puts raise QueueClosed, get_batch returns)."""
        self.closed = True
        self._room.set()
        self._data.set()
