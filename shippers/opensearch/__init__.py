"""OpenSearch shipper: the elasticsearch shipper's `_bulk` logic through opensearch-py (OpenSearch 2.x).

    create(name, settings, raw) -> BulkShipper   a Shipper (collector.pipeline.api) from a `shippers` body
    validate(raw) -> list[str]                   "<field>: problem" for every bad option
    KEYS, BATCH                                  own option names; batch defaults (1000 events / 5 MB)

Same options as shippers/elasticsearch except `cloud_id` and `api_key` (Elastic-only features).
"""

from __future__ import annotations

from typing import Any

from collector.errors import ConfigError
from shippers.elasticsearch import BATCH, KEYS, config_or_raise, shipper_format
from shippers.elasticsearch.bulk import BulkShipper
from shippers.elasticsearch.options import check

__all__ = ["BATCH", "KEYS", "create", "validate"]

FLAVOR = "opensearch"
_ES_ONLY = ("api_key", "api_key_env")


def validate(raw: dict[str, Any]) -> list[str]:
    errors = check(raw, FLAVOR)[1]
    errors += [f"{k}: not supported by the opensearch shipper (use username/password)" for k in _ES_ONLY
               if k in raw]
    return errors


def create(name: str, settings: Any, raw: dict[str, Any]) -> BulkShipper:
    from .client import OpenSearchClient

    errors = validate(raw)
    if errors:
        first = errors[0].split(":", 1)[0]
        raise ConfigError("; ".join(f"shippers.{name}.{e}" for e in errors), field=f"shippers.{name}.{first}")
    cfg = config_or_raise(name, raw, FLAVOR)
    return BulkShipper(name, cfg, OpenSearchClient(cfg), format=shipper_format(raw))
