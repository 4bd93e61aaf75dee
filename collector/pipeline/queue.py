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
from bisect import bisect_right
from collections import deque
from collections.abc import Callable
from itertools import accumulate, islice

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
        """put() each item in order; the number queued.

        The longest prefix that fits is queued in one step (no per-item put() at 100k+ events/s); the first
        item that does not fit goes through put(), which applies the policy, then the rest continue."""
        if self.closed:
            raise QueueClosed
        sizes = [len(r.payload) for _, r in items]
        n, i, total = 0, 0, len(items)
        while i < total:
            room = self.max_events - len(self._items)
            fit = 0
            if room > 0:  # how many of items[i:] fit at once (cum[k]: bytes of items[i..i+k])
                cum = list(accumulate(sizes[i:i + room]))
                fit = bisect_right(cum, self.max_bytes - self.bytes)
            if fit:
                self._items.extend(items[i:i + fit])
                self.bytes += cum[fit - 1]
                self._data.set()
                n += fit
                i += fit
                continue
            if self.closed:
                raise QueueClosed
            n += await self.put(items[i])  # full (or an oversized item): the policy decides
            i += 1
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
        return self._take(max_events, max_bytes)[0]

    def _take(self, max_events: int, max_bytes: int) -> tuple[list[Item], int]:
        items = self._items
        if not items or max_events <= 0:
            return [], 0
        if len(items) <= max_events and self.bytes <= max_bytes:  # everything: one step
            out, size = list(items), self.bytes
            items.clear()
        else:
            head = list(islice(items, max_events))
            cum = list(accumulate([len(r.payload) for _, r in head]))
            n = max(1, bisect_right(cum, max_bytes))  # one oversized item still goes alone
            out, size = head[:n], cum[n - 1]
            if n == len(items):
                items.clear()
            else:
                pop = items.popleft
                for _ in range(n):
                    pop()
        self.bytes -= size
        self._room.set()
        return out, size

    async def get_batch(self, max_events: int, max_bytes: int, linger_s: float) -> list[Item]:
        """Wait for a first item, then gather until max_events / max_bytes or linger_s passed.

        Returns [] only when the queue is closed and empty."""
        while not self._items:
            if self.closed:
                return []
            self._data.clear()
            await self._data.wait()
        batch, size = self._take(max_events, max_bytes)
        deadline = time.monotonic() + linger_s
        while len(batch) < max_events and size < max_bytes and not self.closed:
            if self._items:
                if size + len(self._items[0][1].payload) > max_bytes:
                    break
                more, more_size = self._take(max_events - len(batch), max_bytes - size)
                batch += more
                size += more_size
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
