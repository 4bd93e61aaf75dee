"""The dead-letter file of one shipper: JSON lines of records a destination refused for good.

One line per record (mode 0640):

    {"time": "2026-01-01T00:00:00.000Z", "shipper": "es_main", "type": "elasticsearch",
     "reason": "mapping error: ...", "query": "pack_x_processes", "id": "<event id>", "kind": "result",
     "table": "processes", "host": "web-1", "event_time": 1767225600.0, "payload": {...}}

`payload` is the record as a JSON value when it parses, else `payload_b64` holds it base64-encoded.
Size cap: collector/logfile's RotatingFile, the rotation of the results log (osquery's naming: `<path>.1`
plain, `<path>.2.zst` … compressed, at most `max_files` rotated files). The file is created on the first
dead letter, not before, so an empty one never suggests a problem.
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

from collector.logfile import LogFileError, RotatingFile
from collector.pipeline.api import Record

log = logging.getLogger("quarry.pipeline.deadletter")


class DeadLetterFile:
    def __init__(self, path: str | os.PathLike[str], *, shipper: str, type: str, max_bytes: int = 64 << 20,
                 max_files: int = 5) -> None:
        self.path = Path(path)
        self.shipper, self.type = shipper, type
        self.max_bytes, self.max_files = max_bytes, max_files
        self.lines = 0
        self._file: RotatingFile | None = None

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
        lines = [self.line(r, reason).rstrip(b"\n") for r, reason in records]
        try:
            if self._file is None:
                self._file = RotatingFile(self.path, rotate=True, rotate_size=self.max_bytes,
                                          max_files=self.max_files)
            self._file.write(lines)
        except (LogFileError, OSError) as e:
            log.error("dead-letter file %s: cannot write %d record(s): %s", self.path, len(records), e)
            return False
        self.lines += len(records)
        return True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
