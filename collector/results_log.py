"""osquery's `filesystem` logger plugin: results, snapshots and status logs under --logger_path.

    logger = FilesystemLogger("/var/log/quarry", ctx, event_format=True, rotate=False)
    logger.log_diff(diff, query)                      # -> bytes written
    logger.log_status(1, "something odd", "scheduler.py", 42)
    logging.getLogger("quarry").addHandler(logger.handler())
    logger.close()

Files (osquery's names where osquery has them; reference sheet §2.6-2.7):
- `osqueryd.results.log`: differential lines (event or batch format), created empty at construction.
- `osqueryd.snapshots.log`: snapshot lines (one per run, or one per row with --logger_snapshot_event_type),
  created at the first snapshot.
- `osqueryd.INFO`, `osqueryd.WARNING`, `osqueryd.ERROR`: glog-style text status logs, each a symlink to the
  newest `osqueryd.<SEVERITY>.<yyyymmdd-hhmmss>.<pid>` file; a record goes to its severity's file and every
  lower one (an ERROR is in INFO, WARNING and ERROR), as glog does. Line prefix
  `Lmmdd hh:mm:ss.uuuuuu threadid file:line] message` (local time, as glog). A file past 10 MiB (osquery's
  glog max size) is continued in a new timestamped file; Quarry keeps the 10 newest per severity (glog
  keeps them all).
- `quarry.status.log` (Quarry's addition): the same status records as JSON lines in osquery's buffered-logger
  shape (collector.events.status_line), so a file shipper can carry status to a SIEM. Rotated with the
  results' rotation settings.

Results and snapshot files honour --logger_rotate / --logger_rotate_size / --logger_rotate_max_files and
--logger_mode. A results or snapshot write that fails raises LogFileError: the daemon must stop (osquery
requests shutdown with EXIT_CATASTROPHIC). Status writes that fail raise too; the logging handler reports
them through logging's handleError instead, so a full disk cannot loop.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime
from pathlib import Path

from collector.events import SEVERITY_NAMES, Event, LogContext, result_lines, status_line
from collector.logfile import DEFAULT_MAX_FILES, DEFAULT_ROTATE_SIZE, LogFileError, RotatingFile
from collector.model import DiffResult, ScheduledQuery

RESULTS = "osqueryd.results.log"
SNAPSHOTS = "osqueryd.snapshots.log"
STATUS_JSON = "quarry.status.log"
GLOG_BASENAME = "osqueryd"
GLOG_MAX_SIZE = 10 * 1024 * 1024
GLOG_KEEP = 10

INFO, WARNING, ERROR, FATAL = 0, 1, 2, 3


def severity_of(levelno: int) -> int:
    """A Python logging level as an osquery/glog severity."""
    if levelno >= logging.CRITICAL:
        return FATAL
    if levelno >= logging.ERROR:
        return ERROR
    if levelno >= logging.WARNING:
        return WARNING
    return INFO


class _GlogFile:
    """One severity's glog file set: osqueryd.<SEV>.<stamp>.<pid> plus the osqueryd.<SEV> symlink."""

    def __init__(self, directory: Path, severity: int, mode: int) -> None:
        self.directory, self.name, self.mode = directory, SEVERITY_NAMES[severity], mode
        self.file: RotatingFile | None = None

    def write(self, line: bytes) -> None:
        if self.file is None or self.file.size >= GLOG_MAX_SIZE:
            self.file = self._start()
        self.file.write([line])

    def _start(self) -> RotatingFile:
        if self.file is not None:
            self.file.close()
        now = datetime.now().astimezone()  # glog names and stamps its files in local time
        stamp = now.strftime("%Y%m%d-%H%M%S")
        base = f"{GLOG_BASENAME}.{self.name}.{stamp}.{os.getpid()}"
        path, n = self.directory / base, 1
        while path.exists():  # a second file within the same second
            path, n = self.directory / f"{base}.{n}", n + 1
        file = RotatingFile(path, mode=self.mode)
        header = [f"Log file created at: {now:%Y/%m/%d %H:%M:%S}",
                  f"Running on machine: {os.uname().nodename}",
                  "Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg"]
        file.write([h.encode() for h in header])
        link = self.directory / f"{GLOG_BASENAME}.{self.name}"
        tmp = link.with_name(link.name + ".tmp")
        try:
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(path.name)
            tmp.replace(link)
            self._prune()
        except OSError as e:
            raise LogFileError(f"{link}: cannot update the status log link: {e.strerror}") from e
        return file

    def _prune(self) -> None:
        files = sorted(self.directory.glob(f"{GLOG_BASENAME}.{self.name}.*"), key=lambda p: p.stat().st_mtime)
        files = [p for p in files if not p.is_symlink() and not p.name.endswith(".tmp")]
        for old in files[:-GLOG_KEEP]:
            old.unlink(missing_ok=True)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def glog_line(severity: int, message: str, filename: str, line: int, when: float, thread: int) -> bytes:
    t = time.localtime(when)
    micros = int((when % 1) * 1_000_000)
    prefix = (f"{'IWEF'[severity]}{t.tm_mon:02d}{t.tm_mday:02d} "
              f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{micros:06d} {thread} {filename}:{line}] ")
    return (prefix + message).encode("utf-8", "backslashreplace")


class FilesystemLogger:
    def __init__(self, logger_path: str | os.PathLike[str], ctx: LogContext, *, event_format: bool = True,
                 rotate: bool = False, rotate_size: int = DEFAULT_ROTATE_SIZE,
                 max_files: int = DEFAULT_MAX_FILES, mode: int = 0o640, min_status: int = INFO) -> None:
        self.directory = Path(logger_path)
        self.ctx = ctx
        self.event_format = event_format
        self.min_status = min_status
        self.rotate, self.rotate_size, self.max_files, self.mode = rotate, rotate_size, max_files, mode
        self._lock = threading.Lock()
        self._status_lock = threading.Lock()
        self.results = self._file(RESULTS)
        self._snapshots: RotatingFile | None = None
        self._status_json: RotatingFile | None = None
        self._glog = [_GlogFile(self.directory, s, mode) for s in (INFO, WARNING, ERROR)]

    # --- results ------------------------------------------------------------------------------------------
    def log_diff(self, diff: DiffResult, query: ScheduledQuery | None = None, *,
                 events: list[Event] | None = None) -> int:
        """Write one run's lines; returns the bytes written (0 for an empty diff). LogFileError on failure.

        `events` from collector.events.events_for are reused when the daemon already built them.
        """
        lines = result_lines(diff, self.ctx, event_format=self.event_format, events=events, query=query)
        if not lines:
            return 0
        with self._lock:
            if diff.snapshot is not None:
                if self._snapshots is None:
                    self._snapshots = self._file(SNAPSHOTS)
                return self._snapshots.write(lines)
            return self.results.write(lines)

    # --- status -------------------------------------------------------------------------------------------
    def log_status(self, severity: int, message: str, filename: str = "", line: int = 0, *,
                   when: float | None = None, thread: int | None = None) -> None:
        """One status record into the glog files and quarry.status.log (records below min_status dropped)."""
        if severity < self.min_status:
            return
        severity = max(INFO, min(FATAL, int(severity)))
        when = time.time() if when is None else when
        text = glog_line(severity, message, filename, line,
                         when, threading.get_native_id() if thread is None else thread)
        record = status_line(severity, message, filename, line, self.ctx, unix_time=when)
        with self._status_lock:
            for s in range(INFO, min(severity, ERROR) + 1):
                self._glog[s].write(text)
            if self._status_json is None:
                self._status_json = self._file(STATUS_JSON)
            self._status_json.write([record])

    def handler(self, level: int = logging.INFO) -> logging.Handler:
        """A logging handler writing Quarry's own log records into these status logs."""
        return _StatusHandler(self, level)

    def _file(self, name: str) -> RotatingFile:
        return RotatingFile(self.directory / name, mode=self.mode, rotate=self.rotate,
                            rotate_size=self.rotate_size, max_files=self.max_files)

    # --- lifecycle ----------------------------------------------------------------------------------------
    def flush(self) -> None:
        with self._lock:
            self.results.flush()
            if self._snapshots is not None:
                self._snapshots.flush()

    def close(self) -> None:
        with self._lock:
            self.results.close()
            if self._snapshots is not None:
                self._snapshots.close()
        with self._status_lock:
            for g in self._glog:
                g.close()
            if self._status_json is not None:
                self._status_json.close()


class _StatusHandler(logging.Handler):
    def __init__(self, target: FilesystemLogger, level: int) -> None:
        super().__init__(level)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            # Handlers run in the logging thread, so its native id is the record's.
            self.target.log_status(severity_of(record.levelno), message, record.filename, record.lineno,
                                   when=record.created)
        except (LogFileError, OSError):
            self.handleError(record)

