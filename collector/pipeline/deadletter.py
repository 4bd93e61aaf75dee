"""The dead-letter file of one shipper: JSON lines of records a destination refused for good.

One line per record (mode 0640):

    {"time": "2026-01-01T00:00:00.000Z", "shipper": "es_main", "type": "elasticsearch",
     "reason": "mapping error: ...", "query": "pack_x_processes", "id": "<event id>", "kind": "result",
     "table": "processes", "host": "web-1", "event_time": 1767225600.0, "payload": {...}}

`payload` is the record as a JSON value when it parses, else `payload_b64` holds it base64-encoded.
Size cap: when the file would pass `max_bytes` it is renamed to `<path>.1` (older ones shift to `.2` …) and
at most `max_files` rotated files are kept; the oldest is deleted and that is logged. (collector/logfile's
RotatingFile is not in the tree yet; this simple rotation stands in until it is.)
A failing write (disk full) is logged and reported to the caller, never raised.
"""

from __future__ import annotations

import base64
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from collector.pipeline.api import Record

log = logging.getLogger("quarry.pipeline.deadletter")


class DeadLetterFile:
    def __init__(self, path: str | os.PathLike[str], *, shipper: str, type: str, max_bytes: int = 64 << 20,
                 max_files: int = 5) -> None:
        self.path = Path(path)
        self.shipper, self.type = shipper, type
        self.max_bytes, self.max_files = max_bytes, max_files
        self.lines = 0
        self.rotated_out = 0  # rotated files deleted past max_files

    def line(self, r: Record, reason: str, now: float | None = None) -> bytes:
        when = datetime.fromtimestamp(now, UTC) if now is not None else datetime.now(UTC)
        doc: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "shipper": self.shipper,
            "type": self.type, "reason": reason, "query": r.name, "id": r.id, "kind": r.kind, "table": r.table,
            "host": r.host, "event_time": r.time}
        if r.route:
            doc["route"] = r.route
        try:
            doc["payload"] = orjson.loads(r.payload) if r.payload else None
            return orjson.dumps(doc) + b"\n"
        except orjson.JSONDecodeError:
            doc.pop("payload", None)
            doc["payload_b64"] = base64.b64encode(r.payload).decode("ascii")
            return orjson.dumps(doc) + b"\n"

    def write(self, records: list[tuple[Record, str]]) -> bool:
        """Append one line per (record, reason); False (logged) when the file could not be written."""
        if not records:
            return True
        data = b"".join(self.line(r, reason) for r, reason in records)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(data) > self.max_bytes:
                self._rotate()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(f"short write ({written} of {len(data)} bytes)")
            finally:
                os.close(fd)
        except OSError as e:
            log.error("dead-letter file %s: cannot write %d record(s): %s", self.path, len(records), e)
            return False
        self.lines += len(records)
        return True

    def _rotate(self) -> None:
        oldest = self.path.with_name(f"{self.path.name}.{self.max_files}")
        if oldest.exists():
            oldest.unlink()
            self.rotated_out += 1
            log.warning("dead-letter file %s: deleted %s (more than %d rotated files)", self.path, oldest.name,
                        self.max_files)
        for n in range(self.max_files - 1, 0, -1):
            src = self.path.with_name(f"{self.path.name}.{n}")
            if src.exists():
                src.rename(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.rename(self.path.with_name(f"{self.path.name}.1"))
