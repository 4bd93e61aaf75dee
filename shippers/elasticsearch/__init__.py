"""Elasticsearch shipper: `_bulk` `create` into data streams `logs-osquery.<table>-<namespace>` (ECS documents).

    create(name, settings, raw) -> BulkShipper   a Shipper (collector.pipeline.api) from a `shippers` body
    validate(raw) -> list[str]                   "<field>: problem" for every bad option
    KEYS, BATCH                                  own option names; batch defaults (1000 events / 5 MB)

The encode/classify logic (bulk.py) and options (options.py) are shared with shippers/opensearch, which only
supplies another client. `format` defaults to `ecs` for this shipper (the pipeline's default is `osquery`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.errors import ConfigError

from .bulk import BulkShipper
from .options import KNOWN, BulkConfig, check

__all__ = ["BATCH", "KEYS", "BulkConfig", "BulkShipper", "create", "shipper_format", "validate"]

FLAVOR = "elasticsearch"
KEYS = KNOWN
BATCH = {"max_events": 1000, "max_bytes": 5_000_000}  # shipping.md §7: <= 5 MB or 1000 docs


def validate(raw: dict[str, Any]) -> list[str]:
    return check(raw, FLAVOR)[1]


def shipper_format(raw: Mapping[str, Any]) -> str:
    """ECS unless the body says `format: osquery` (osquery lines are then wrapped with @timestamp)."""
    fmt = raw.get("format", "ecs")
    return fmt if fmt in ("ecs", "osquery") else "ecs"


def config_or_raise(name: str, raw: dict[str, Any], flavor: str) -> BulkConfig:
    cfg, errors = check(raw, flavor)
    if cfg is None:
        first = errors[0].split(":", 1)[0]
        raise ConfigError("; ".join(f"shippers.{name}.{e}" for e in errors), field=f"shippers.{name}.{first}")
    return cfg


def create(name: str, settings: Any, raw: dict[str, Any]) -> BulkShipper:
    from .client import ElasticsearchClient  # imported here so validation works without the client installed

    cfg = config_or_raise(name, raw, FLAVOR)
    return BulkShipper(name, cfg, ElasticsearchClient(cfg), format=shipper_format(raw))
