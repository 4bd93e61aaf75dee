"""The spool alone: restart, corruption, torn tail, size cap policies, disk full, cursor before delete."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from pathlib import Path

import orjson
import pytest

from collector.pipeline.config import SpoolSettings
from collector.pipeline.segment import HEAD, MAGIC, list_segments, segment_name
from collector.pipeline.spool import Spool, SpoolError
from tests.pipeline.fake import ids_of, rec


def make(path: Path, drops: list | None = None, write=os.write, **kw) -> Spool:
    s = Spool(path, SpoolSettings(enabled=True, **{"fsync_ms": 20, **kw}), name="t",
              on_drop=(lambda sample, rows, size, reason: drops.append((rows, reason))) if drops is not None
              else None, write=write)
    s.open()
    return s


async def read_all(s: Spool) -> list[tuple[int, int]]:
    out = []
    while items := s.read_nowait(1000, 1 << 30):
        out += [(seq, ids_of([r])[0]) for seq, r in items]
    return out


async def test_roundtrip_keeps_every_field(tmp_path):
    s = make(tmp_path)
    r = rec(1)
    r2 = type(r)(id="x", payload=b"\x00not json", name="n", kind="snapshot", table=None, time=1.5, host="h",
                 route={"topic": "t"})
    await s.append([r, r2])
    got = [it[1] for it in s.read_nowait(10, 1 << 20)]
    assert got == [r, r2]
    await s.close()


async def test_restart_resends_unacked_only(tmp_path):
    s = make(tmp_path, segment_bytes=4096)
    await s.append([rec(i) for i in range(100)])
    items = await read_all(s)
    assert [i for _, i in items] == list(range(100))
    s.ack([seq for seq, i in items if i < 30 or 40 <= i < 50])  # out of order: 40..49 past a gap
    await s.sync()
    s.crash()  # no close(): what SIGKILL leaves
    s2 = make(tmp_path, segment_bytes=4096)
    again = [i for _, i in await read_all(s2)]
    assert again == list(range(30, 100))  # 40..49 were past the cursor: re-sent (at-least-once)
    s2.ack(list(range(30, 100)))
    await s2.close()
    s3 = make(tmp_path, segment_bytes=4096)
    assert await read_all(s3) == [] and s3.pending == 0
    assert len(list_segments(tmp_path)) == 1  # finished segments deleted
    await s3.close()


async def test_seq_stays_monotonic_across_restarts(tmp_path):
    s = make(tmp_path)
    await s.append([rec(i) for i in range(5)])
    s.ack([seq for seq, _ in s.read_nowait(10, 1 << 20)])
    await s.close()
    s = make(tmp_path)
    await s.append([rec(5)])
    assert [seq for seq, _ in s.read_nowait(10, 1 << 20)] == [5]
    await s.close()


async def test_cursor_is_on_disk_before_a_segment_is_deleted(tmp_path):
    s = make(tmp_path, segment_bytes=4096)
    await s.append([rec(i, size=200) for i in range(60)])
    segs = list_segments(tmp_path)
    assert len(segs) > 3
    unlinked = []
    real_unlink = Path.unlink

    def spy(self, *a, **k):
        if self.name.endswith(".seg"):
            cursor = orjson.loads((tmp_path / "cursor.json").read_bytes())["seq"]
            unlinked.append((int(self.name[:-4]), cursor))
        return real_unlink(self, *a, **k)

    Path.unlink = spy
    try:
        items = s.read_nowait(1000, 1 << 30)
        s.ack([seq for seq, _ in items[:45]])
        await s.sync()
    finally:
        Path.unlink = real_unlink
    assert unlinked, "some segments were finished"
    remaining = list_segments(tmp_path)
    for first, cursor_on_disk in unlinked:
        nxt = min(x for x in segs if x > first)
        assert cursor_on_disk >= nxt  # every record of the deleted segment is below the saved cursor
    assert remaining[0] <= 45
    await s.close()


def _frames(path: Path) -> list[int]:
    data = path.read_bytes()
    offs, pos = [], 0
    while pos < len(data):
        offs.append(pos)
        length = HEAD.unpack_from(data, pos)[1]
        pos += HEAD.size + length
    return offs


async def test_corrupt_record_in_the_middle_is_skipped_and_counted(tmp_path):
    drops: list = []
    s = make(tmp_path)
    await s.append([rec(i) for i in range(10)])
    s.crash()
    seg = tmp_path / segment_name(0)
    offs = _frames(seg)
    data = bytearray(seg.read_bytes())
    data[offs[4] + HEAD.size + 20] ^= 0xFF  # flip a byte inside record 4: CRC mismatch
    data[offs[6]:offs[6] + 4] = b"XXXX"  # and destroy the magic of record 6
    seg.write_bytes(bytes(data))
    s = make(tmp_path, drops)
    got = [i for _, i in await read_all(s)]
    assert got == [0, 1, 2, 3, 5, 7, 8, 9]
    assert s.corrupt_skipped == 2 and drops == [(1, "spool_corrupt"), (1, "spool_corrupt")]
    s.ack(list(range(10)))
    assert s.pending == 0
    await s.close()


async def test_corruption_at_the_end_of_a_closed_segment_is_counted_by_seq_gap(tmp_path):
    s = make(tmp_path, segment_bytes=4096)
    await s.append([rec(i, size=300) for i in range(30)])
    s.crash()
    first = list_segments(tmp_path)[0]
    seg = tmp_path / segment_name(first)
    offs = _frames(seg)
    seg.write_bytes(seg.read_bytes()[:offs[-1]] + b"garbage!" * 10)  # last record replaced by junk
    s = make(tmp_path, segment_bytes=4096)
    got = [i for _, i in await read_all(s)]
    assert len(got) == 29 and s.corrupt_skipped == 1
    await s.close()


async def test_torn_tail_is_truncated_and_appends_continue(tmp_path):
    s = make(tmp_path)
    await s.append([rec(i) for i in range(5)])
    s.crash()
    seg = tmp_path / segment_name(0)
    whole = seg.stat().st_size
    with seg.open("ab") as f:
        f.write(MAGIC + b"\x40\x00\x00\x00partial")  # a frame cut by a crash
    s = make(tmp_path)
    assert s.torn_bytes == len(MAGIC) + 4 + len(b"partial")
    assert seg.stat().st_size == whole
    await s.append([rec(5)])
    assert [i for _, i in await read_all(s)] == [0, 1, 2, 3, 4, 5]
    assert s.corrupt_skipped == 0
    await s.close()


async def test_a_second_process_cannot_open_the_same_spool(tmp_path):
    s = make(tmp_path)
    with pytest.raises(SpoolError, match="in use"):
        make(tmp_path)
    await s.close()


async def test_cap_drop_newest_counts_and_keeps_the_oldest(tmp_path):
    drops: list = []
    s = make(tmp_path, drops, segment_bytes=4096, max_bytes=8192, when_full="drop_newest")
    await s.append([rec(i, size=200) for i in range(100)])
    kept = [i for _, i in await read_all(s)]
    assert kept == list(range(len(kept))) and s.total_bytes <= 8192
    assert sum(n for n, _ in drops) == 100 - len(kept)
    assert {r for _, r in drops} == {"spool_full_drop_newest"}
    await s.close()


async def test_cap_drop_oldest_deletes_whole_segments_and_counts_them(tmp_path):
    drops: list = []
    s = make(tmp_path, drops, segment_bytes=4096, max_bytes=3 * 4096, when_full="drop_oldest")
    await s.append([rec(i, size=200) for i in range(200)])
    kept = [i for _, i in await read_all(s)]
    assert kept[-1] == 199 and kept == list(range(kept[0], 200))  # the newest survive, contiguous
    assert sum(n for n, _ in drops) == 200 - len(kept) == kept[0]
    assert {r for _, r in drops} == {"spool_full_drop_oldest"}
    assert s.total_bytes <= 3 * 4096
    await s.close()


async def test_cap_block_waits_until_acks_free_a_segment(tmp_path):
    s = make(tmp_path, segment_bytes=4096, max_bytes=3 * 4096, when_full="block")
    writer = asyncio.create_task(s.append([rec(i, size=200) for i in range(100)]))
    await asyncio.sleep(0.2)
    assert not writer.done()
    assert s.total_bytes <= 3 * 4096
    got = []
    while not writer.done() or s.read_seq < s.next_seq:
        items = s.read_nowait(1000, 1 << 30)
        got += [i for _, i in [(q, ids_of([r])[0]) for q, r in items]]
        s.ack([q for q, _ in items])
        await asyncio.sleep(0.01)
    await writer
    assert got == list(range(100)) and s.wait_s > 0.1
    await s.close()


class FullDisk:
    """A write(2) on a disk of `capacity` bytes holding the spool's segments: a short write, then ENOSPC.

    Space comes back when segments are deleted, as on a real filesystem."""

    def __init__(self, directory: Path, capacity: int) -> None:
        self.directory, self.capacity = directory, capacity

    def __call__(self, fd: int, data: bytes) -> int:
        used = sum(p.stat().st_size for p in self.directory.glob("*.seg"))
        free = self.capacity - used
        if free <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data[:free])


@pytest.mark.parametrize("policy", ["drop_newest", "drop_oldest"])
async def test_disk_full_applies_the_policy_and_leaves_no_half_record(tmp_path, policy):
    drops: list = []
    s = make(tmp_path, drops, write=FullDisk(tmp_path, 10_000), segment_bytes=4096, when_full=policy)
    await s.append([rec(i, size=200) for i in range(100)])
    assert s.write_errors > 0
    assert {r for _, r in drops} == {f"disk_full_{policy}"}
    got = [i for _, i in await read_all(s)]
    assert len(got) + sum(n for n, _ in drops) == 100
    assert got == (list(range(len(got))) if policy == "drop_newest" else list(range(100 - len(got), 100)))
    s.crash()
    s = make(tmp_path)  # every frame on disk is whole: nothing torn, nothing corrupt
    assert s.torn_bytes == 0
    assert [i for _, i in await read_all(s)] == got and s.corrupt_skipped == 0
    await s.close()


async def test_disk_full_block_waits_then_continues(tmp_path):
    disk = FullDisk(tmp_path, 3000)
    s = make(tmp_path, write=disk)
    writer = asyncio.create_task(s.append([rec(i, size=200) for i in range(30)]))
    await asyncio.sleep(0.3)
    assert not writer.done() and s.write_errors > 0
    disk.capacity = 1 << 20  # space came back
    await asyncio.wait_for(writer, 5)
    assert [i for _, i in await read_all(s)] == list(range(30))
    await s.close()


@pytest.fixture
def tiny_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True,
                       text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip()}); ENOSPC is covered by the injected writer")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


async def test_real_full_tmpfs_drop_newest_reported_and_nothing_corrupt(tiny_tmpfs):
    drops: list = []
    s = make(tiny_tmpfs / "spool", drops, segment_bytes=256 * 1024, max_bytes=64 << 20,
             when_full="drop_newest")
    for i in range(0, 3000, 100):
        await s.append([rec(j, size=1000) for j in range(i, i + 100)])
    assert s.write_errors > 0 and drops and {r for _, r in drops} == {"disk_full_drop_newest"}
    got = [i for _, i in await read_all(s)]
    assert len(got) + sum(n for n, _ in drops) == 3000
    await s.close()
    s = make(tiny_tmpfs / "spool", segment_bytes=256 * 1024)
    assert [i for _, i in await read_all(s)] == got
    assert s.corrupt_skipped == 0 and s.torn_bytes == 0
    await s.close()
