"""The spool's on-disk formats: record frames, segment scanning, the cursor file.

A segment file `<first seq, 20 digits>.seg` is a run of frames; sequence numbers are contiguous across the
whole spool, so a segment's record count is the next segment's first seq minus its own.

    frame = magic "QSP1" | u32 length of rest | u32 CRC32 of rest | rest
    rest  = u64 seq | f64 time | u8 kind | u32 meta length | meta (JSON: id, name, table, host, route) | payload

The magic lets a reader find the next frame after a corrupt one; the CRC decides whether a frame is whole.
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from collector.pipeline.api import Record

MAGIC = b"QSP1"
HEAD = struct.Struct("<4sII")
REST = struct.Struct("<QdBI")
FRAME = struct.Struct("<4sIIQdBI")  # HEAD + REST: one unpack per frame on the reader's fast path
MAX_FRAME = 256 * 1024 * 1024  # sanity bound when reading a length that may be garbage
KINDS = ("result", "snapshot", "status")
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}
SUFFIX = ".seg"


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def list_segments(directory: Path) -> list[int]:
    """First seqs of the segments in a spool directory, ascending (stray files are ignored)."""
    out = []
    for p in directory.iterdir():
        if p.name.endswith(SUFFIX) and p.name[:-len(SUFFIX)].isdigit():
            out.append(int(p.name[:-len(SUFFIX)]))
    return sorted(out)


def load_cursor(path: Path) -> int:
    """The saved cursor (first unfinished seq); FileNotFoundError, or ValueError/KeyError when unreadable."""
    return int(orjson.loads(path.read_bytes())["seq"])


def save_cursor(path: Path, cursor: int) -> None:
    """Atomically: write a temp file, fsync it, rename it over the cursor, fsync the directory."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.write(fd, orjson.dumps({"seq": cursor, "time": time.time()}))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode_frame(seq: int, r: Record) -> bytes:
    meta = orjson.dumps({"i": r.id, "n": r.name, "t": r.table, "h": r.host, "r": r.route or None})
    rest = REST.pack(seq, r.time, _KIND_CODE.get(r.kind, 0), len(meta)) + meta + r.payload
    return HEAD.pack(MAGIC, len(rest), zlib.crc32(rest)) + rest


_new = object.__new__


def decode_rest(rest: bytes | memoryview) -> tuple[int, Record]:
    seq, when, kind, mlen = REST.unpack_from(rest, 0)
    start = REST.size
    meta = orjson.loads(rest[start:start + mlen])
    # Record is a frozen dataclass whose __init__ sets each field through object.__setattr__; filling
    # __dict__ directly builds the same object at a third of the cost, and the drain rate depends on it
    r = _new(Record)
    r.__dict__.update(id=meta["i"], payload=bytes(rest[start + mlen:]), name=meta["n"],
                      kind=KINDS[kind] if kind < len(KINDS) else "result", table=meta["t"], time=when,
                      host=meta["h"], route=meta["r"] or {})
    return seq, r


# parse() results: (status, a, b): OK -> (frame end, seq); NEED -> (bytes needed in total, 0); BAD -> (0, 0)
OK, NEED, BAD = 0, 1, 2


def parse(buf: bytes | bytearray | memoryview, pos: int) -> tuple[int, int, int]:
    """Check the frame at buf[pos:] without decoding it."""
    avail = len(buf) - pos
    if avail < HEAD.size:
        return NEED, HEAD.size, 0
    magic, length, crc = HEAD.unpack_from(buf, pos)
    if magic != MAGIC or length < REST.size or length > MAX_FRAME:
        return BAD, 0, 0
    end = pos + HEAD.size + length
    if end > len(buf):
        return NEED, HEAD.size + length, 0
    if zlib.crc32(memoryview(buf)[pos + HEAD.size:end]) != crc:
        return BAD, 0, 0
    seq, _, _, mlen = REST.unpack_from(buf, pos + HEAD.size)
    if REST.size + mlen > length:
        return BAD, 0, 0
    return OK, end, seq


def resync(buf: bytes | bytearray | memoryview, pos: int) -> int:
    """Offset of the next candidate frame after a bad one at pos (len(buf) when none in the buffer)."""
    found = bytes(buf).find(MAGIC, pos + 1) if not isinstance(buf, bytes) else buf.find(MAGIC, pos + 1)
    return len(buf) if found < 0 else found


@dataclass
class TailScan:
    valid_end: int  # offset after the last whole frame: the file is truncated here (torn tail)
    last_seq: int | None
    corrupt_frames: int  # bad regions skipped inside the segment


def scan_file(path: Path, chunk: int = 4 * 1024 * 1024) -> Iterator[tuple[int, int, int]]:
    """(offset, end, seq) of every whole frame in a segment file, skipping corrupt regions."""
    with path.open("rb") as f:
        base, buf, pos = 0, b"", 0  # base: file offset of buf[0]
        while True:
            status, a, seq = parse(buf, pos)
            if status == OK:
                yield base + pos, base + a, seq
                pos = a
                continue
            cut, need = pos, a
            if status == BAD:
                bad = pos
                pos = resync(buf, pos)
                if pos < len(buf):
                    continue
                cut, need = max(bad + 1, len(buf) - len(MAGIC) + 1), 0  # a magic may straddle chunks
            more = f.read(max(chunk, need))
            if not more:
                return
            base += cut
            buf, pos = buf[cut:] + more, 0


def scan_tail(path: Path) -> TailScan:
    last_end, last_seq, bad, prev_end = 0, None, 0, 0
    for off, end, seq in scan_file(path):
        if off != prev_end:
            bad += 1
        last_end, last_seq, prev_end = end, seq, end
    return TailScan(last_end, last_seq, bad)


@dataclass
class Recovered:
    segs: list[int]
    sizes: dict[int, int]
    next_seq: int
    cursor: int  # clamped into [first segment, next_seq]
    torn_bytes: int


def recover(directory: Path, name: str) -> Recovered:
    """The state of a spool directory after a stop or a crash; a torn tail of the last segment is cut."""
    log = logging.getLogger("quarry.pipeline.spool")
    segs = list_segments(directory)
    try:
        cursor: int | None = load_cursor(directory / "cursor.json")
    except FileNotFoundError:
        cursor = None
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("spool %s: unreadable cursor (%s): resending from the oldest segment", name, e)
        cursor = None
    torn = 0
    if segs:
        path = directory / segment_name(segs[-1])
        tail = scan_tail(path)
        size = path.stat().st_size
        if tail.valid_end < size:  # a torn tail after a crash: cut it so appends follow a whole frame
            torn = size - tail.valid_end
            log.warning("spool %s: truncated a torn tail of %d bytes in %s", name, torn, path.name)
            os.truncate(path, tail.valid_end)
        next_seq = segs[-1] if tail.last_seq is None else max(segs[-1], tail.last_seq + 1)
    else:
        next_seq = max(cursor or 0, 0)
    sizes = {first: (directory / segment_name(first)).stat().st_size for first in segs}
    start = segs[0] if segs else next_seq
    cursor = start if cursor is None else min(max(cursor, start), next_seq)
    return Recovered(segs, sizes, next_seq, cursor, torn)


class SegmentReader:
    """Reads frames from one segment file, up to a limit the writer says is committed."""

    CHUNK = 1024 * 1024

    def __init__(self, path: Path, first_seq: int) -> None:
        self.path, self.first_seq = path, first_seq
        self.fd = os.open(path, os.O_RDONLY)
        self.offset = 0  # file offset of self.buf[0]
        self.buf = b""
        self.pos = 0
        self.corrupt_regions = 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def take(self, limit: int, max_events: int, max_bytes: int) -> list[tuple[int, Record]]:
        """Up to max_events records below `limit` (stopping once max_bytes of payload were taken).

        The fast path of next(): whole, valid frames already in the buffer are checked and decoded in one
        tight loop; anything else (a refill, a torn or corrupt frame) goes through next(), which owns those
        rules. The reader drains at the rate of this loop, so it avoids per-frame calls where it can."""
        out: list[tuple[int, Record]] = []
        size = 0
        unpack, crc32, loads, new, kinds = FRAME.unpack_from, zlib.crc32, orjson.loads, _new, KINDS
        fsize, hsize, rmin = FRAME.size, HEAD.size, REST.size
        while len(out) < max_events and size < max_bytes:
            buf, pos = self.buf, self.pos
            n = len(buf)
            mv = memoryview(buf)
            while len(out) < max_events and size < max_bytes and n - pos >= fsize:
                magic, length, crc, seq, when, kind, mlen = unpack(buf, pos)
                end = pos + hsize + length
                if (magic != MAGIC or length < rmin or length > MAX_FRAME or end > n or rmin + mlen > length
                        or crc32(mv[pos + hsize:end]) != crc):
                    break
                ms = pos + fsize
                try:
                    meta = loads(mv[ms:ms + mlen])
                    r = new(Record)
                    r.__dict__.update(id=meta["i"], payload=buf[ms + mlen:end], name=meta["n"],
                                      kind=kinds[kind] if kind < 3 else "result", table=meta["t"], time=when,
                                      host=meta["h"], route=meta["r"] or {})
                except (ValueError, KeyError, TypeError):
                    break  # next() skips and counts it
                out.append((seq, r))
                size += end - ms - mlen
                pos = end
            self.pos = pos
            if len(out) >= max_events or size >= max_bytes:
                break
            item = self.next(limit)  # refill, or a frame the fast path did not take
            if item is None:
                break
            out.append(item)
            size += len(item[1].payload)
        return out

    def next(self, limit: int) -> tuple[int, Record] | None:
        """The next whole record below file offset `limit`; None when none is (yet) available.

        A bad region is skipped (counted in corrupt_regions); the caller counts lost records by seq gap."""
        while True:
            status, a, _seq = parse(self.buf, self.pos)
            if status == OK:
                rest = memoryview(self.buf)[self.pos + HEAD.size:a]
                self.pos = a
                try:
                    return decode_rest(rest)
                except (ValueError, KeyError, TypeError, IndexError, struct.error):
                    self.corrupt_regions += 1  # CRC matched but the meta is not ours: skip it
                    continue
            cut, need = self.pos, a
            if status == BAD:
                self.corrupt_regions += 1
                bad = self.pos
                self.pos = resync(self.buf, self.pos)
                if self.pos < len(self.buf):
                    continue
                cut, need = max(bad + 1, len(self.buf) - len(MAGIC) + 1), 0
            file_pos = self.offset + len(self.buf)
            more = b""
            if file_pos < limit:
                more = os.pread(self.fd, min(max(self.CHUNK, need), limit - file_pos), file_pos)
            if status == BAD or more:
                self.offset += cut
                self.buf, self.pos = self.buf[cut:] + more, 0
            if not more:
                return None
