"""File shipper: JSON lines with osquery's filesystem logger naming and rotation, or ECS NDJSON.

    create(name, settings, raw) -> FileShipper     a Shipper (collector.pipeline.api) from a `shippers` body
    validate(raw) -> list[str]                      "<field>: problem" for every bad option

The pipeline keeps the file shipper without a spool by default (collector.pipeline.config LOCAL_TYPES): the
destination is the local disk, and a spool would only write every event twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.errors import ConfigError

from .config import KEYS, FileConfig, check
from .shipper import FileShipper

__all__ = ["BATCH", "KEYS", "FileConfig", "FileShipper", "create", "validate"]

# One write + one fsync per batch: larger batches than the pipeline's 1000 events keep fsyncs rare at speed.
BATCH = {"max_events": 5000, "max_bytes": 4_000_000, "linger_ms": 200}


def validate(raw: Mapping[str, Any]) -> list[str]:
    return check(raw)[1]


def create(name: str, settings: Any, raw: Mapping[str, Any]) -> FileShipper:
    cfg, errors = check(raw)
    if cfg is None:
        first = errors[0].split(":", 1)[0]
        raise ConfigError("; ".join(f"shippers.{name}.{e}" for e in errors), field=f"shippers.{name}.{first}")
    fmt = getattr(settings, "format", None) if settings is not None else None
    if fmt is None:
        fmt = raw.get("format", "osquery")
    return FileShipper(name, cfg, format=str(fmt))
