"""Options of the file shipper, checked with errors that name the field (the caller prefixes the shipper)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from collector.logfile import DEFAULT_ROTATE_SIZE

DEFAULT_DIR = "/var/log/quarry"
RESULTS_FILE = "osqueryd.results.log"  # osquery's filesystem logger names (plugins/logger/filesystem_logger.cpp)
SNAPSHOTS_FILE = "osqueryd.snapshots.log"
STATUS_FILE = "quarry.status.log"  # osquery sends status lines to glog (osqueryd.INFO ...), not to a JSON file
ECS_FILE = "quarry.ecs.ndjson"
DEFAULT_MAX_FILES = 10  # shipping.md §7: 25 MiB x 10 (osquery: 25 x 25)
MAX_OPEN_FILES = 64

KEYS = frozenset({"dir", "path", "results_file", "snapshots_file", "status_file", "rotate", "rotate_size",
                  "max_files", "compress", "mode", "fsync", "max_open_files"})


@dataclass(frozen=True)
class FileConfig:
    dir: str = DEFAULT_DIR
    path: str | None = None  # one file for every event (ECS's usual setting); route.file still wins
    results_file: str = RESULTS_FILE
    snapshots_file: str = SNAPSHOTS_FILE
    status_file: str = STATUS_FILE
    rotate: bool = True
    rotate_size: int = DEFAULT_ROTATE_SIZE
    max_files: int = DEFAULT_MAX_FILES
    compress: bool = True
    mode: int = 0o640
    fsync: bool = True
    max_open_files: int = MAX_OPEN_FILES


def safe_relative(name: str) -> bool:
    """A per-query file name stays inside the shipper's directory: relative, no '..' component."""
    p = PurePath(name)
    return bool(name) and not p.is_absolute() and ".." not in p.parts and "\x00" not in name


def check(raw: Mapping[str, Any]) -> tuple[FileConfig | None, list[str]]:
    errors: list[str] = []
    kw: dict[str, Any] = {}
    for key in ("dir", "path"):
        v = raw.get(key)
        if v is not None:
            if not isinstance(v, str) or not v:
                errors.append(f"{key}: expected a non-empty string, got {v!r}")
            else:
                kw[key] = v
    for key in ("results_file", "snapshots_file", "status_file"):
        v = raw.get(key)
        if v is not None:
            if not isinstance(v, str) or not safe_relative(v):
                errors.append(f"{key}: expected a file name relative to dir (no '..'), got {v!r}")
            else:
                kw[key] = v
    for key in ("rotate", "compress", "fsync"):
        v = raw.get(key)
        if v is not None:
            if not isinstance(v, bool):
                errors.append(f"{key}: expected true or false, got {v!r}")
            else:
                kw[key] = v
    for key, minimum in (("rotate_size", 1024), ("max_files", 1), ("max_open_files", 1)):
        v = raw.get(key)
        if v is not None:
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                errors.append(f"{key}: expected an integer of at least {minimum}, got {v!r}")
            else:
                kw[key] = v
    v = raw.get("mode")
    if v is not None:
        mode = -1
        if isinstance(v, str):
            try:
                mode = int(v, 8)
            except ValueError:
                pass
        if 0 <= mode <= 0o777:
            kw["mode"] = mode
        else:
            errors.append(f"mode: expected an octal string such as \"0640\", got {v!r}")
    return (None if errors else FileConfig(**kw)), errors
