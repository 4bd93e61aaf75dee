"""One shipper's lane: queue (and spool) → batcher → up to `concurrency` requests in flight → Sender.

Without a spool, put() goes into the bounded queue under `queue.when_full`. With a spool (the default for
network shippers), put() writes through to the spool under `spool.when_full`, and a feeder task reads the
spool into the queue, which then only bounds the read-ahead (always `block`: nothing is dropped there).
Each lane has its own tasks, so a slow or dead destination holds up only its own lane.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

from collector.pipeline.api import Record, Shipper
from collector.pipeline.config import ShipperSettings
from collector.pipeline.deadletter import DeadLetterFile
from collector.pipeline.metrics import ShipperMetrics, StatusReporter
from collector.pipeline.queue import BoundedQueue, Item, QueueClosed
from collector.pipeline.sender import RateLimiter, Sender, backoff
from collector.pipeline.spool import Spool, SpoolClosed, WriteFn

log = logging.getLogger("quarry.pipeline.runner")


class Stopped(Exception):
    """put() after stop() began."""


class Runner:
    def __init__(self, shipper: Shipper, settings: ShipperSettings, state_dir: str | os.PathLike[str], *,
                 reporter: StatusReporter, spool_write: WriteFn = os.write,
                 rng: random.Random | None = None) -> None:
        self.shipper, self.settings, self.name = shipper, settings, settings.name
        self.metrics = ShipperMetrics()
        self._reporter = reporter
        state = Path(state_dir)
        self.spool: Spool | None = None
        if settings.spool_enabled:
            self.spool = Spool(settings.spool.dir or state / "spool" / self.name, settings.spool, name=self.name,
                               on_drop=self._spool_dropped, write=spool_write)
            q = settings.queue
            self.queue = BoundedQueue(q.max_events, q.max_bytes, "block")
        else:
            q = settings.queue
            self.queue = BoundedQueue(q.max_events, q.max_bytes, q.when_full, on_drop=self._queue_dropped)
        dl = settings.dead_letter
        self.deadletter = DeadLetterFile(dl.path or state / "deadletter" / f"{self.name}.jsonl",
                                         shipper=self.name, type=settings.type, max_bytes=dl.max_bytes,
                                         max_files=dl.max_files)
        self.rate = RateLimiter(settings.drain_rate)
        self.sender = Sender(shipper, settings, self.metrics, self._finished, self._dead, self.rate, rng,
                             on_notice=self.report)
        self._seq = 0  # memory mode: seqs only name records in flight
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._opened = asyncio.Event()
        self._draining = False
        self._accepting = True
        self._tasks: set[asyncio.Task[None]] = set()  # send tasks
        self._inflight: dict[int, list[Item]] = {}  # batches being delivered, by their first seq
        self._done_inflight: set[int] = set()  # seqs of those already finished (Partial, split halves)
        self._main: list[asyncio.Task[None]] = []  # open, batcher, feeder
        if hasattr(shipper, "report"):  # a shipper that truncates or splits events reports it here
            shipper.report = self.report

    # --- life cycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.spool is not None:
            self.spool.open()
            if self.spool.torn_bytes:
                self._reporter.add("truncation", self.name, f"spool torn tail of {self.spool.torn_bytes} bytes "
                                   "cut after a crash", [], rows=0, size=self.spool.torn_bytes)
            await self.spool.start()
            self._main.append(asyncio.create_task(self._feed(), name=f"feed-{self.name}"))
        self._main.append(asyncio.create_task(self._open(), name=f"open-{self.name}"))
        self._main.append(asyncio.create_task(self._batch(), name=f"batch-{self.name}"))

    async def _open(self) -> None:
        """open() until it works (a destination down at start is an outage like any other), then probe."""
        attempt = 0
        timeout = self.settings.request_timeout_s
        while True:
            try:
                async with asyncio.timeout(timeout):  # asyncio.timeout, not wait_for (see sender.py)
                    await self.shipper.open()
                break
            except Exception as e:  # noqa: BLE001 - task boundary: any failure to open is retried, reported
                attempt += 1
                self.metrics.error(f"open failed: {type(e).__name__}: {e}")
                self.metrics.consecutive_failures += 1
                log.warning("shipper %s: open failed (%s); retrying", self.name, e)
                await asyncio.sleep(backoff(attempt, self.settings.retry.initial_s, self.settings.retry.max_s))
        self.metrics.opened = True
        self.metrics.consecutive_failures = 0
        self._opened.set()
        try:
            async with asyncio.timeout(timeout):
                health = await self.shipper.healthcheck()
            (log.info if health.ok else log.warning)("shipper %s: health check %s%s", self.name,
                                                      "ok" if health.ok else "failed",
                                                      f": {health.detail}" if health.detail else "")
            if not health.ok:
                self.metrics.error(f"health check: {health.detail}")
        except Exception as e:  # noqa: BLE001 - a health probe never blocks or breaks start-up
            log.warning("shipper %s: health check failed: %s", self.name, e)

    async def _feed(self) -> None:
        assert self.spool is not None
        q = self.settings.queue
        while True:
            room, room_bytes = q.max_events - len(self.queue), q.max_bytes - self.queue.bytes
            if room <= 0 or room_bytes <= 0:
                await self.queue.wait_room()
                continue
            items = self.spool.read_nowait(room, room_bytes)  # read only what fits: memory stays bounded
            if items:
                await self.queue.put_many(items)
                continue
            if self._draining:
                self.queue.close()
                return
            await self.spool.wait_readable()

    async def _batch(self) -> None:
        b = self.settings.batch
        await self._opened.wait()
        while True:
            await self._slots.acquire()  # take a batch only when it can be sent: it stays evictable till then
            batch = await self.queue.get_batch(b.max_events, b.max_bytes, b.linger_ms / 1000)
            if not batch:
                self._slots.release()
                return
            key = batch[0][0]
            self._inflight[key] = batch
            task = asyncio.create_task(self._send(key, batch), name=f"send-{self.name}")
            self._tasks.add(task)

    async def _send(self, key: int, batch: list[Item]) -> None:
        try:
            await self.sender.deliver(batch)
        except asyncio.CancelledError:
            raise  # shutdown: the batch stays in _inflight so stop() can account for what is unfinished
        except Exception as e:
            log.exception("shipper %s: delivering a batch failed", self.name)
            left = [it for it in batch if it[0] not in self._done_inflight]
            self._dead([(it, f"internal error: {type(e).__name__}: {e}") for it in left])
            self._forget(key)
        else:
            self._forget(key)
        finally:
            self._slots.release()
            self._tasks.discard(asyncio.current_task())  # type: ignore[arg-type,unused-ignore]

    def _forget(self, key: int) -> None:
        batch = self._inflight.pop(key, None)
        if batch and self._done_inflight:
            self._done_inflight.difference_update([seq for seq, _ in batch])

    def _unfinished(self) -> list[Item]:
        """Records taken for sending and not finished (delivered or dead-lettered)."""
        return [it for batch in self._inflight.values() for it in batch if it[0] not in self._done_inflight]

    async def stop(self, deadline: float) -> None:
        """Stop accepting, send what is queued (and spooled) until `deadline` (monotonic), then leave the
        rest in the spool; records only in memory (no spool) are counted as dropped `shutdown`."""
        if self.metrics.stopped:
            return
        self._accepting = False
        self._draining = True
        if self.spool is not None:
            self.spool.wake()
        else:
            self.queue.close()
        idle = asyncio.create_task(self._idle())
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await idle
        except TimeoutError:
            pass
        for task in [*self._main, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._main, *self._tasks, return_exceptions=True)
        left = self._unfinished() + self.queue.drain_nowait()
        self._inflight.clear()
        self._done_inflight.clear()
        if self.spool is not None:
            self.spool.rewind([s for s, _ in left])
            await self.spool.close()
        elif left:
            self._queue_dropped(left, "shutdown")
        try:
            async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
                await self.shipper.close()
        except Exception as e:  # noqa: BLE001 - close problems are logged; the data is safe or counted
            log.warning("shipper %s: close failed: %s", self.name, e)
        self.deadletter.close()
        self.metrics.stopped = True

    async def _idle(self) -> None:
        """Until the batcher ended (queue closed and empty) and no request is in flight."""
        for task in self._main[-1:]:  # the batcher
            await asyncio.shield(task)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def abort(self) -> None:
        """Cancel everything now with no fsync and no cursor save: what SIGKILL leaves (tests)."""
        self._accepting = False
        for task in [*self._main, *self._tasks]:
            task.cancel()
        if self.spool is not None:
            self.spool.crash()
        self.queue.close()

    # --- the way in ----------------------------------------------------------------------------------
    async def put(self, records: list[Record]) -> None:
        """Accepted (queued or spooled) or dropped under the policy (counted) when this returns."""
        if not self._accepting:
            raise Stopped(self.name)
        try:
            if self.spool is not None:
                await self.spool.append(records)
                return
            first = self._seq + 1
            self._seq += len(records)
            await self.queue.put_many(list(zip(range(first, self._seq + 1), records)))
        except (QueueClosed, SpoolClosed) as e:
            raise Stopped(self.name) from e

    # --- callbacks -----------------------------------------------------------------------------------
    def _finished(self, items: list[Item]) -> None:
        seqs = [s for s, _ in items]
        self._done_inflight.update(seqs)
        if self.spool is not None:
            self.spool.ack(seqs)

    def _dead(self, entries: list[tuple[Item, str]]) -> None:
        records = [(it[1], reason) for it, reason in entries]
        if self.deadletter.write(records):
            self.metrics.dead_lettered += len(records)
            for r, reason in records:
                self._reporter.add("dead_letter", self.name, reason, [r])
        else:  # the dead-letter file itself failed (disk full): count a drop, keep the trace
            self.metrics.drop("deadletter_write_failed", len(records))
            for r, reason in records:
                self._reporter.add("drop", self.name, f"dead-letter write failed ({reason})", [r])
        self.metrics.error(records[-1][1])
        self._finished([it for it, _ in entries])

    def _queue_dropped(self, items: list[Item], reason: str) -> None:
        self.metrics.drop(reason, len(items))
        self._reporter.add("drop", self.name, reason, [r for _, r in items])

    def _spool_dropped(self, sample: list[Record], rows: int, size: int, reason: str) -> None:
        self.metrics.drop(reason, rows)
        self._reporter.add("drop", self.name, reason, sample, rows=rows, size=size)

    def report(self, event: str, reason: str, records: list[Record]) -> None:
        """For shippers: a truncation or split of events, reported as a status event and counted."""
        if event == "drop":
            self.metrics.drop(reason, len(records))
        else:
            self.metrics.notices[event] = self.metrics.notices.get(event, 0) + len(records)
        self._reporter.add(event, self.name, reason, records)

    # --- status --------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        snap: dict[str, Any] = {"shipper": self.name, "type": self.settings.type, "format": self.shipper.format,
                                **self.metrics.counters()}
        snap["queued_events"] = len(self.queue)
        snap["queued_bytes"] = self.queue.bytes
        oldest = [t for t in (self.queue.oldest_time,) if t is not None]
        oldest += [b[0][1].time for b in self._inflight.values() if b]
        sp = self.spool
        snap["spool_enabled"] = sp is not None
        snap["spool_bytes"] = sp.total_bytes if sp else 0
        snap["spool_events"] = sp.pending if sp else 0
        snap["spool_segments"] = len(sp.segs) if sp else 0
        snap["spool_corrupt_skipped"] = sp.corrupt_skipped if sp else 0
        snap["spool_write_errors"] = sp.write_errors if sp else 0
        if sp and sp.oldest_time is not None:
            oldest.append(sp.oldest_time)
        if sp and sp.last_error and sp.last_error != snap["last_error"] and not snap["last_error"]:
            snap["last_error"] = sp.last_error
        snap["oldest_event_age_s"] = round(max(0.0, time.time() - min(oldest)), 3) if oldest else None
        snap["put_wait_s"] = round(self.queue.wait_s + (sp.wait_s if sp else 0.0), 3)
        snap["put_waits"] = self.queue.waits
        snap["rate_wait_s"] = round(self.rate.waited_s, 3)
        snap["dead_letter_file"] = str(self.deadletter.path)
        return snap
