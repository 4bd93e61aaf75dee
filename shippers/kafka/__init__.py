"""Kafka shipper (aiokafka): osquery-compatible topic per query, acks=all with idempotence, TLS and SASL.

    create(name, settings, raw) -> KafkaShipper     a Shipper (collector.pipeline.api) from a `shippers` body
    validate(raw) -> list[str]                       "<field>: problem" for every bad or unknown option
    from_osquery_flags(flags, kafka_topics=None) -> dict | None
                                                     osquery's kafka_producer flags → a raw body

`settings` is the pipeline's `ShipperSettings` (collector.pipeline.config); this module reads `format` from
it and, when present, `kafka_topics` (the config's top-level osquery mapping, used when the body has no
`kafka_topics` of its own; a mapping with that key works too). The shared `tls` block is read from the raw
body exactly as the pipeline parses it. `BATCH` gives the pipeline this shipper's batch defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.errors import ConfigError

from .config import KafkaConfig, check
from .flags import from_osquery_flags
from .shipper import KafkaShipper

__all__ = ["BATCH", "KafkaConfig", "KafkaShipper", "create", "from_osquery_flags", "validate"]

# Larger than the pipeline's 1000 events / 1 MB: one send() fills several 512 KiB partition batches, and
# aiokafka keeps one batch in flight per partition, so bigger requests keep the partition busy (bench/kafka.py).
BATCH = {"max_events": 2000, "max_bytes": 4_000_000}


def validate(raw: dict[str, Any]) -> list[str]:
    return check(raw)[1]


def _setting(settings: Any, key: str) -> Any:
    if settings is None:
        return None
    if isinstance(settings, Mapping):
        return settings.get(key)
    return getattr(settings, key, None)


def create(name: str, settings: Any, raw: dict[str, Any]) -> KafkaShipper:
    cfg, errors = check(raw)
    if cfg is None:
        first = errors[0].split(":", 1)[0]
        raise ConfigError("; ".join(f"shippers.{name}.{e}" for e in errors), field=f"shippers.{name}.{first}")
    if not cfg.client_id:
        cfg = _with_client_id(cfg, f"quarry-{name}")
    fmt = _setting(settings, "format") or raw.get("format", "osquery")
    return KafkaShipper(name, cfg, format=str(fmt),
                        kafka_topics=_setting(settings, "kafka_topics"))


def _with_client_id(cfg: KafkaConfig, client_id: str) -> KafkaConfig:
    from dataclasses import replace

    return replace(cfg, client_id=client_id)
