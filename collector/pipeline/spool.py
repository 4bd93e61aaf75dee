"""The disk spool of one shipper: append-only segments, a saved cursor, a size cap with a policy.

    spool = Spool(directory, SpoolSettings(...), on_drop=callback)
    spool.open()                                   # lock, recover (torn tail truncated), start position
    await spool.start()                            # the fsync / cursor / cleanup task
    await spool.append(records)                    # write-through: in the page cache when it returns
    items = await spool.read(max_events, max_bytes)   # next unread (seq, Record), waits for data
    spool.ack(seqs)                                # finished (delivered, dead-lettered): any order
    await spool.close()                            # fsync, save the cursor, release the lock

Durability: append() calls write(2) before it returns, so a SIGKILL loses nothing that append() accepted;
fsync runs every `fsync_ms` for power loss. The cursor (first unfinished seq) advances over a contiguous
finished prefix only (AckTracker); it is written to a temp file, fsync'd and renamed into place before any
fully finished segment is unlinked. A restart reads from the cursor: records after it are sent again.

Full spool (max_bytes) and a failing disk (ENOSPC, EDQUOT, EIO) take the same policy: `block` waits for
room (acks free segments), `drop_newest` refuses the record, `drop_oldest` deletes the oldest segment and
counts its unsent records. A failed write is truncated away, so the files never hold half a record.
Corrupt records are skipped and counted by the gap in sequence numbers; the reader never stops on them.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from collector.pipeline.acks import AckTracker
from collector.pipeline.api import Record
from collector.pipeline.config import SpoolSettings
from collector.pipeline.segment import (
    MAX_FRAME,
    SegmentReader,
    encode_frame,
    fsync_dir,
    recover,
    save_cursor,
    segment_name,
)

log = logging.getLogger("quarry.pipeline.spool")
Item = tuple[int, Record]
WriteFn = Callable[[int, bytes], int]
DropFn = Callable[[list[Record], int, int, str], None]  # sample records, rows, bytes, reason


class SpoolError(OSError):
    """The spool directory cannot be used (locked by another process, not writable)."""


class SpoolClosed(Exception):
    pass


class Spool:
    CURSOR = "cursor.json"

    def __init__(self, directory: str | os.PathLike[str], settings: SpoolSettings, *, name: str = "",
                 on_drop: DropFn | None = None, write: WriteFn = os.write) -> None:
        self.dir = Path(directory)
        self.settings, self.name = settings, name
        self._on_drop = on_drop
        self._write = write  # injectable so tests can simulate ENOSPC
        self.segs: list[int] = []  # first seq of each segment; the last one is the active (written) one
        self.sizes: dict[int, int] = {}
        self.next_seq = 0
        self.acks = AckTracker()
        self.read_seq = 0
        self._reader: SegmentReader | None = None
        self._fd = -1
        self._lock_fd = -1
        self._times: dict[int, float] = {}  # event time of read, unfinished records (oldest age)
        self._saved_cursor = -1
        self._dirty = False
        self._dir_dirty = False
        self._sync_lock = asyncio.Lock()
        self._readable = asyncio.Event()
        self._room = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        # counters
        self.corrupt_skipped = 0
        self.torn_bytes = 0
        self.write_errors = 0
        self.wait_s = 0.0
        self.last_error = ""

    # --- recovery -----------------------------------------------------------------------------------
    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        self._lock_fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self._lock_fd)
            raise SpoolError(f"spool {self.dir} is in use by another process: {e}") from e
        found = recover(self.dir, self.name)
        self.segs, self.sizes, self.next_seq, self.torn_bytes = found.segs, found.sizes, found.next_seq, \
            found.torn_bytes
        cursor = found.cursor
        self.acks = AckTracker(cursor)
        self._saved_cursor = cursor
        self.read_seq = cursor
        if self.segs and self.sizes[self.segs[-1]] < self.settings.segment_bytes:
            self._fd = os.open(self.dir / segment_name(self.segs[-1]), os.O_WRONLY | os.O_APPEND)
        else:
            self._new_segment()

    # --- writing -------------------------------------------------------------------------------------
    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())

    @property
    def pending(self) -> int:
        """Records appended and not yet finished."""
        return self.next_seq - self.acks.cursor

    def _new_segment(self) -> None:
        first = self.next_seq
        fd = os.open(self.dir / segment_name(first), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC,
                     0o640)
        self._fd = fd
        self.segs.append(first)
        self.sizes[first] = 0
        self._dir_dirty = True

    async def _roll(self) -> None:
        async with self._sync_lock:  # never close the fd under a running fsync
            old = self._fd
            self._fd = -1
            if old >= 0:
                await asyncio.get_running_loop().run_in_executor(None, os.fsync, old)
                os.close(old)
            self._new_segment()

    async def append(self, records: list[Record]) -> None:
        """Write records under the size policy; returns when each is written or dropped (counted)."""
        if self.closed:
            raise SpoolClosed
        frames = [encode_frame(self.next_seq + i, r) for i, r in enumerate(records)]
        total = sum(len(f) for f in frames)
        active = self.sizes[self.segs[-1]]
        if (self.total_bytes + total <= self.settings.max_bytes and active + total <= self.settings.segment_bytes
                and self._try_write(b"".join(frames), len(frames))):
            return
        for r in records:  # the slow path: one record at a time, with rolls and policies
            await self._append_one(r)

    def _try_write(self, data: bytes, count: int) -> bool:
        first = self.segs[-1]
        size = self.sizes[first]
        try:
            written = self._write(self._fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)")
        except OSError as e:
            self.write_errors += 1
            self.last_error = f"spool write failed: {e}"
            try:
                os.ftruncate(self._fd, size)  # never leave half a record behind
            except OSError as te:
                log.error("spool %s: cannot truncate after a failed write: %s", self.name, te)
            return False
        self.sizes[first] = size + len(data)
        self.next_seq += count
        self._dirty = True
        self._readable.set()
        return True

    async def _append_one(self, r: Record) -> None:
        reason = ""
        while True:
            if self.closed:
                raise SpoolClosed
            frame = encode_frame(self.next_seq, r)  # its size does not depend on the seq
            if len(frame) > MAX_FRAME or len(frame) > self.settings.max_bytes:
                self._dropped([r], 1, r.size, "too_large_for_spool")
                return
            if self.sizes[self.segs[-1]] and self.sizes[self.segs[-1]] + len(frame) > self.settings.segment_bytes:
                try:
                    await self._roll()
                except OSError as e:
                    self.last_error = f"spool cannot start a segment: {e}"
                    reason = "disk_full"
            if not reason and self.total_bytes + len(frame) > self.settings.max_bytes:
                reason = "spool_full"
            if not reason:  # encode again: another append may have taken the seq while we awaited
                if self._try_write(encode_frame(self.next_seq, r), 1):
                    return
                reason = "disk_full"
            policy = self.settings.when_full
            if policy == "drop_newest":
                self._dropped([r], 1, r.size, f"{reason}_drop_newest")
                return
            if policy == "drop_oldest" and await self._drop_oldest(f"{reason}_drop_oldest"):
                reason = ""
                continue
            if policy == "drop_oldest":  # nothing older left to drop: the new record goes
                self._dropped([r], 1, r.size, f"{reason}_drop_newest")
                return
            await self._wait_room(reason)
            reason = ""

    async def _wait_room(self, reason: str) -> None:
        """Wait for room: acks free segments (a full spool); a disk error is retried every fsync period."""
        start = time.monotonic()
        if self.sizes[self.segs[-1]]:
            try:  # the active segment can only be freed once it is no longer written
                await self._roll()
            except OSError as e:
                self.last_error = f"spool cannot start a segment: {e}"
        self._room.clear()
        await self.sync()  # deletes what is already finished
        if not self._room.is_set():  # then look again every fsync period (acks arrive meanwhile)
            try:
                async with asyncio.timeout(self.settings.fsync_ms / 1000):
                    await self._room.wait()
            except TimeoutError:
                pass
        self.wait_s += time.monotonic() - start

    async def _drop_oldest(self, reason: str) -> bool:
        """Delete the oldest segment, counting its unread records; False when there is nothing to drop."""
        if len(self.segs) == 1:
            if not self.sizes[self.segs[0]]:
                return False
            try:
                await self._roll()
            except OSError:
                return False
        first, nxt = self.segs[0], self.segs[1]
        lost = [r for seq, r in self._scan(first) if seq >= self.read_seq and not self.acks.is_done(seq)]
        if self._reader is not None and self._reader.first_seq == first:
            self._reader.close()
            self._reader = None
        self.read_seq = max(self.read_seq, nxt)
        self.acks.skip_to(nxt)
        for seq in [s for s in self._times if s < nxt]:
            del self._times[seq]
        await self.sync(delete=False)  # the cursor is on disk before the segment goes
        self._unlink(first)
        self._dropped(lost[:100], len(lost), sum(r.size for r in lost), reason)
        return True

    def _scan(self, first: int) -> list[Item]:
        reader = SegmentReader(self.dir / segment_name(first), first)
        out: list[Item] = []
        try:
            while (item := reader.next(self.sizes[first])) is not None:
                out.append(item)
        finally:
            reader.close()
        return out

    def _dropped(self, sample: list[Record], rows: int, size: int, reason: str) -> None:
        if rows and self._on_drop is not None:
            self._on_drop(sample, rows, size, reason)

    def _unlink(self, first: int) -> None:
        try:
            (self.dir / segment_name(first)).unlink()
        except FileNotFoundError:
            pass
        self.segs.remove(first)
        del self.sizes[first]
        self._dir_dirty = True
        self._room.set()

    # --- reading and acknowledging -------------------------------------------------------------------
    def read_nowait(self, max_events: int, max_bytes: int) -> list[Item]:
        out: list[Item] = []
        size = 0
        times = self._times
        reader = self._reader
        while len(out) < max_events and size < max_bytes and self.read_seq < self.next_seq:
            if reader is None:
                first = max((s for s in self.segs if s <= self.read_seq), default=self.segs[0])
                reader = self._reader = SegmentReader(self.dir / segment_name(first), first)
            limit = self.sizes.get(reader.first_seq, 0)
            got = reader.take(limit, max_events - len(out), max_bytes - size)
            if not got:
                later = [s for s in self.segs if s > reader.first_seq]
                if not later:
                    break  # caught up with the writer
                self._gap(later[0])
                reader.close()
                reader = self._reader = None
                continue
            for item in got:
                seq, r = item
                if seq != self.read_seq:
                    if seq < self.read_seq:
                        continue  # before the cursor (restart) or a stray duplicate
                    self._gap(seq)
                self.read_seq = seq + 1
                times[seq] = r.time
                out.append(item)
                size += len(r.payload)
        return out

    def _gap(self, seq: int) -> None:
        """Records between read_seq and seq are unreadable: count them and mark them finished."""
        if seq > self.read_seq:
            n = seq - self.read_seq
            self.corrupt_skipped += n
            log.warning("spool %s: skipped %d corrupt record(s) (seq %d..%d)", self.name, n, self.read_seq,
                        seq - 1)
            self._dropped([], n, 0, "spool_corrupt")
            self.acks.done_range(self.read_seq, seq)
            self.read_seq = seq

    async def wait_readable(self) -> None:
        """Until something was appended (or wake() / close() was called)."""
        self._readable.clear()  # callers read_nowait() first with no await in between: no lost wake-up
        if not self.closed:
            await self._readable.wait()

    def wake(self) -> None:
        self._readable.set()

    async def read(self, max_events: int, max_bytes: int) -> list[Item]:
        """Unread records, waiting until there are some; [] once closed."""
        while not self.closed:
            items = self.read_nowait(max_events, max_bytes)
            if items:
                return items
            self._readable.clear()
            await self._readable.wait()
        return []

    def ack(self, seqs: list[int]) -> None:
        self.acks.done(seqs)
        for s in seqs:
            self._times.pop(s, None)

    def rewind(self, seqs: list[int]) -> None:
        """Forget records read but not sent (shutdown): the next start reads them again from the cursor."""
        for s in seqs:
            self._times.pop(s, None)

    @property
    def oldest_time(self) -> float | None:
        return self._times.get(self.acks.cursor)

    # --- durability task -----------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._sync_loop(), name=f"spool-sync-{self.name}")

    async def _sync_loop(self) -> None:
        period = self.settings.fsync_ms / 1000
        while True:
            await asyncio.sleep(period)
            try:
                await self.sync()
            except OSError as e:  # a failing disk must not kill the task: report and try again later
                self.last_error = f"spool sync failed: {e}"
                log.error("spool %s: %s", self.name, self.last_error)

    async def sync(self, delete: bool = True) -> None:
        """fsync the active segment and the directory, save the cursor, then unlink finished segments."""
        loop = asyncio.get_running_loop()
        async with self._sync_lock:
            if self._dirty and self._fd >= 0:
                self._dirty = False
                await loop.run_in_executor(None, os.fsync, self._fd)
            if self.acks.cursor != self._saved_cursor:
                cursor = self.acks.cursor
                await loop.run_in_executor(None, save_cursor, self.dir / self.CURSOR, cursor)
                self._saved_cursor = cursor
            if self._dir_dirty:
                self._dir_dirty = False
                await loop.run_in_executor(None, fsync_dir, self.dir)
        if delete:  # a segment is finished when the next one starts at or below the saved cursor
            while len(self.segs) > 1 and self.segs[1] <= self._saved_cursor:
                if self._reader is not None and self._reader.first_seq == self.segs[0]:
                    self._reader.close()
                    self._reader = None
                self._unlink(self.segs[0])

    async def close(self) -> None:
        """Final fsync and cursor save, then release everything. Idempotent."""
        if self._lock_fd < 0:
            return
        await self._cancel_task()
        try:
            await self.sync()
        except OSError as e:
            log.error("spool %s: final sync failed: %s", self.name, e)
        self.crash()

    async def _cancel_task(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    def crash(self) -> None:
        """Close every descriptor with no fsync and no cursor save: what SIGKILL leaves (tests)."""
        self.closed = True
        if self._task is not None:
            self._task.cancel()
        self._readable.set()
        self._room.set()
        for fd in (self._fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._lock_fd = -1
        if self._reader is not None:
            self._reader.close()
            self._reader = None

