"""The file shipper: JSON lines through collector.logfile.RotatingFile (osquery naming, rotation, zstd, 0640).

encode() groups a batch by target file (per kind, or the query's route.file); send() appends every group in a
worker thread (file I/O and the zstd compression of a rotation must not stall the event loop), fsyncs, and
classifies: a full or failing disk is a Retry with the reason, never an exception.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
from bisect import bisect_left
from collections import OrderedDict
from itertools import accumulate
from pathlib import Path

from collector.logfile import LogFileError, RotatingFile
from collector.pipeline.api import Delivered, Health, Outcome, Partial, Record, Rejected, Request, Retry

from .config import ECS_FILE, FileConfig, safe_relative

log = logging.getLogger("quarry.shippers.file")


class _Groups:
    """encode()'s product: lines per target path, and records refused before any write (index, reason)."""

    __slots__ = ("files", "rejected")

    def __init__(self) -> None:
        self.files: dict[Path, list[bytes]] = {}
        self.rejected: list[tuple[int, str]] = []


class FileShipper:
    type = "file"

    def __init__(self, name: str, cfg: FileConfig, *, format: str = "osquery") -> None:
        self.name = name
        self.format = format
        self.cfg = cfg
        self.dir = Path(cfg.dir)
        self._files: OrderedDict[Path, RotatingFile] = OrderedDict()  # LRU: bounded open descriptors
        self._lock = asyncio.Lock()  # one writer at a time keeps each file's batches in order
        self.stats: dict[str, int] = {"lines": 0, "bytes": 0, "write_errors": 0}
        self._warned = ""  # the write error last logged: a full disk is logged once, not on every retry
        if cfg.path:
            self._default = {k: self._resolve(cfg.path) for k in ("result", "snapshot", "status")}
        elif format == "ecs":
            self._default = {k: self.dir / ECS_FILE for k in ("result", "snapshot", "status")}
        else:
            self._default = {"result": self.dir / cfg.results_file, "snapshot": self.dir / cfg.snapshots_file,
                             "status": self.dir / cfg.status_file}

    def _resolve(self, name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else self.dir / p

    def target(self, rec: Record) -> Path | str:
        """The file for one record, or a reason string when its route names an unusable file."""
        override = rec.route.get("file") if rec.route else None
        if override:
            if not safe_relative(override):
                return f"route file {override!r} must be relative to {self.dir} without '..'"
            return self.dir / override
        return self._default.get(rec.kind, self._default["result"])

    # --- life cycle ---------------------------------------------------------------------------------
    async def open(self) -> None:
        """Create the default files now (osquery creates its results log at setUp); failures are logged only:
        send() reports them as Retry, so a missing mount never blocks start-up."""
        async with self._lock:
            for path in dict.fromkeys(self._default.values()):
                try:
                    await asyncio.to_thread(self._file, path)
                except LogFileError as e:
                    log.warning("file shipper %s: %s (will retry on send)", self.name, e)

    async def healthcheck(self) -> Health:
        try:
            async with self._lock:
                await asyncio.to_thread(self._file, self._default["result"])
        except LogFileError as e:
            return Health(False, str(e))
        return Health(True, str(self._default["result"]))

    async def close(self) -> None:
        async with self._lock:
            await asyncio.to_thread(self._close_all)

    def _close_all(self) -> None:
        while self._files:
            _, f = self._files.popitem(last=False)
            try:
                if self.cfg.fsync:
                    f.flush()
            except LogFileError as e:
                log.warning("file shipper %s: %s", self.name, e)
            finally:
                f.close()

    # --- encode / send --------------------------------------------------------------------------------
    def encode(self, batch: list[Record]) -> Request:
        groups = _Groups()
        files = groups.files
        default = self._default
        fallback = default["result"]
        for i, rec in enumerate(batch):
            if rec.route and rec.route.get("file"):
                where = self.target(rec)
                if isinstance(where, str):
                    groups.rejected.append((i, where))
                    continue
            else:
                where = default.get(rec.kind, fallback)
            lines = files.get(where)
            if lines is None:
                files[where] = lines = []
            lines.append(rec.payload)
        size = 0
        for where, lines in list(files.items()):
            body = b"\n".join(lines)
            if body.count(b"\n") != len(lines) - 1:  # one event per line: a newline inside would split one
                self._drop_newlines(batch, where, groups)
            size += len(body) + 1
        return Request(records=list(batch), body=groups, size=size)

    def _drop_newlines(self, batch: list[Record], where: Path, groups: _Groups) -> None:
        """Slow path, only when a payload has a newline: those records are rejected, the rest kept in order."""
        keep = []
        for i, rec in enumerate(batch):
            if self.target(rec) != where:
                continue
            if b"\n" in rec.payload:
                groups.rejected.append((i, "payload contains a newline"))
            else:
                keep.append(rec.payload)
        groups.rejected.sort()
        if keep:
            groups.files[where] = keep
        else:
            del groups.files[where]

    async def send(self, request: Request) -> Outcome:
        groups: _Groups = request.body
        if groups.files:
            async with self._lock:
                try:
                    await asyncio.to_thread(self._write, groups.files)
                except LogFileError as e:
                    self.stats["write_errors"] += 1
                    return Retry(self._reason(e))
                if self._warned:
                    log.info("file shipper %s: writing again", self.name)
                    self._warned = ""
        if not groups.rejected:
            return Delivered()
        if len(groups.rejected) == len(request.records):
            reasons = {r for _, r in groups.rejected}
            return Rejected("; ".join(sorted(reasons)))
        return Partial(rejected=tuple(groups.rejected))

    def _write(self, files: dict[Path, list[bytes]]) -> None:
        """Thread side. At-least-once: a failure after some lines reached the disk makes the pipeline resend
        the whole batch, so those lines appear twice (same event id)."""
        for path, lines in files.items():
            f = self._file(path)
            n = write_lines(f, lines)
            if self.cfg.fsync:
                f.flush()
            self.stats["lines"] += len(lines)
            self.stats["bytes"] += n

    def _file(self, path: Path) -> RotatingFile:
        f = self._files.get(path)
        if f is not None:
            self._files.move_to_end(path)
            return f
        while len(self._files) >= self.cfg.max_open_files:
            _, old = self._files.popitem(last=False)
            old.close()
        c = self.cfg
        f = RotatingFile(path, mode=c.mode, rotate=c.rotate, rotate_size=c.rotate_size, max_files=c.max_files,
                         compress=c.compress)
        self._files[path] = f
        return f

    def _reason(self, e: LogFileError) -> str:
        cause = e.__cause__
        code = getattr(cause, "errno", None)
        if code in (errno.ENOSPC, errno.EDQUOT):
            kind = "disk full"
        elif code == errno.EIO:
            kind = "I/O error"
        else:
            kind = errno.errorcode.get(code, "error") if code else "error"
        reason = f"{kind}: {e}"
        if reason != self._warned:
            log.warning("file shipper %s: %s", self.name, reason)
            self._warned = reason
        return reason


def write_lines(f: RotatingFile, lines: list[bytes]) -> int:
    """Write lines with the bytes and rotation points RotatingFile.write(lines) would give, in few system calls.

    RotatingFile checks the size before every line (a line goes into the current file while the file is below
    rotate_size). Its per-line loop costs more than the write itself at 100k+ lines/s, so lines are handed
    over in chunks joined into one "line" each, cut exactly where RotatingFile would rotate."""
    if not f.rotate:
        return f.write([b"\n".join(lines)])
    cum = list(accumulate(len(line) + 1 for line in lines))  # cum[k]: bytes of lines[0..k]
    written, start, n = 0, 0, len(lines)
    while start < n:
        size = f.size if f.size < f.rotate_size else 0  # at or over the limit: write() rotates first
        base = cum[start - 1] if start else 0
        # lines start..end-1 fit: each starts while the file is still below the limit
        end = min(n, bisect_left(cum, base + f.rotate_size - size, lo=start) + 1)
        written += f.write([b"\n".join(lines[start:end])])
        start = end
    return written


def file_mode(path: str | os.PathLike[str]) -> int:
    """The permission bits of a file (tests and `quarry check-config` diagnostics)."""
    return os.stat(path).st_mode & 0o777
