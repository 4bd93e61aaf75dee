"""An append-only line file with osquery's size rotation (plugins/logger/filesystem_logger.cpp, logrotate.h).

    f = RotatingFile("/var/log/quarry/osqueryd.results.log", rotate=True)
    f.write([b'{"name":...}', ...])      # one line each, "\\n" appended
    f.flush(); f.close()

- The file is created at construction (mode 0640 by default, whatever the umask), its directory 0750.
- Rotation (off by default, as osquery's --logger_rotate): before each line, when the file's size is >= the
  limit, `<file>.N` becomes `<file>.N+1`, `<file>.1` is compressed into `<file>.2.zst`, the file becomes
  `<file>.1` (plain) and a new file is started; files numbered beyond `max_files` are deleted. Rotated files
  keep the live file's mode (osquery#8103: osquery's .zst files were world-readable).
- Compression is zstd through the `zstandard` package; only when that package is missing are the rotated
  files gzip'ed instead, named `.gz`. `compress=False` keeps every rotated file plain.
- Lines go to the kernel with os.write at each write() (no user-space buffer, so a crash of Quarry loses
  nothing already written); flush() is an fsync.
- If the file is moved or deleted by an external tool (logrotate), the next write reopens the path.

Nothing here knows about the daemon: the file shipper reuses it.
"""

from __future__ import annotations

import gzip
import os
import shutil
import threading
from pathlib import Path
from types import ModuleType

from collector.errors import QuarryError

zstandard: ModuleType | None
try:
    import zstandard
except ImportError:  # pragma: no cover - the test extra installs it
    zstandard = None

DEFAULT_ROTATE_SIZE = 25 * 1024 * 1024
DEFAULT_MAX_FILES = 25
UNCOMPRESSED_COUNT = 1  # osquery's kUncompressedCount: <file>.1 stays plain


class LogFileError(QuarryError):
    """A log file cannot be created, written or rotated; the message names the path."""


def compressed_suffix() -> str:
    return ".zst" if zstandard is not None else ".gz"


class RotatingFile:
    def __init__(self, path: str | os.PathLike[str], *, mode: int = 0o640, rotate: bool = False,
                 rotate_size: int = DEFAULT_ROTATE_SIZE, max_files: int = DEFAULT_MAX_FILES,
                 compress: bool = True) -> None:
        if rotate and (rotate_size < 1 or max_files < 1):
            raise ValueError("rotate_size and max_files must be at least 1")
        self.path = Path(path)
        self.mode = mode
        self.rotate = rotate
        self.rotate_size = rotate_size
        self.max_files = max_files
        self.compress = compress
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self._ident: tuple[int, int] = (0, 0)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as e:
            raise LogFileError(f"{self.path.parent}: cannot create the log directory: {e.strerror}") from e
        with self._lock:
            self._open()

    # --- public -------------------------------------------------------------------------------------------
    def write(self, lines: list[bytes]) -> int:
        """Append lines (each gets "\\n"); returns the bytes written. LogFileError when the disk refuses."""
        if not lines:
            return 0
        with self._lock:
            self._check_moved()
            if not self.rotate:
                return self._append(b"".join(line + b"\n" for line in lines))
            written = 0
            chunk: list[bytes] = []
            pending = 0
            for line in lines:
                if self._size + pending >= self.rotate_size:
                    if chunk:
                        written += self._append(b"".join(chunk))
                        chunk, pending = [], 0
                    self._rotate()
                chunk.append(line + b"\n")
                pending += len(line) + 1
            return written + self._append(b"".join(chunk))

    def flush(self) -> None:
        with self._lock:
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError as e:
                    raise LogFileError(f"{self.path}: cannot flush: {e.strerror}") from e

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    @property
    def size(self) -> int:
        return self._size

    def rotated_name(self, n: int) -> Path:
        """<file>.1, then <file>.2.zst, <file>.3.zst ... (all plain with compress=False)."""
        suffix = f".{n}"
        if self.compress and n > UNCOMPRESSED_COUNT:
            suffix += compressed_suffix()
        return self.path.with_name(self.path.name + suffix)

    # --- internals ----------------------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            existed = self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, self.mode)
            if not existed:
                os.fchmod(fd, self.mode)  # the umask must not widen or narrow the configured mode
            st = os.fstat(fd)
        except OSError as e:
            raise LogFileError(f"{self.path}: cannot open for writing: {e.strerror}") from e
        self._fd, self._size, self._ident = fd, st.st_size, (st.st_dev, st.st_ino)

    def _check_moved(self) -> None:
        try:
            st = self.path.stat()
            if (st.st_dev, st.st_ino) == self._ident:
                return
        except FileNotFoundError:
            pass
        except OSError as e:
            raise LogFileError(f"{self.path}: cannot stat: {e.strerror}") from e
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._open()

    def _append(self, data: bytes) -> int:
        if self._fd is None:
            raise LogFileError(f"{self.path}: the file is closed")
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
                self._size += n
        except OSError as e:
            raise LogFileError(f"{self.path}: cannot write: {e.strerror}") from e
        return len(data)

    def _rotate(self) -> None:
        """osquery's LogRotate::rotate + moveFiles."""
        moves = [self.rotated_name(1)]
        while moves[-1].exists():
            moves.append(self.rotated_name(len(moves) + 1))
        try:
            for i in range(len(moves) - 1, 0, -1):
                if i >= self.max_files:
                    continue  # its target is deleted below; the source is overwritten by the next move
                if i == UNCOMPRESSED_COUNT and self.compress:
                    self._compress(moves[i - 1], moves[i])
                else:
                    moves[i - 1].replace(moves[i])
            for old in moves[self.max_files:]:
                old.unlink(missing_ok=True)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self.path.replace(moves[0])
        except OSError as e:
            raise LogFileError(f"{self.path}: cannot rotate: {e.strerror}") from e
        self._open()

    def _compress(self, source: Path, dest: Path) -> None:
        tmp = dest.with_name(dest.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, self.mode)
        os.fchmod(fd, self.mode)
        with source.open("rb") as src, os.fdopen(fd, "wb") as out:
            if zstandard is not None:
                zstandard.ZstdCompressor(level=3).copy_stream(src, out)
            else:
                with gzip.GzipFile(fileobj=out, mode="wb") as gz:
                    shutil.copyfileobj(src, gz)
        tmp.replace(dest)
