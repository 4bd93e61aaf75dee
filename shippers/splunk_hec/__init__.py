"""Splunk HTTP Event Collector shipper: batches of JSON envelopes to `/services/collector/event`.

    create(name, settings, raw) -> HecShipper     a Shipper (collector.pipeline.api) from a `shippers` body
    validate(raw) -> list[str]                     "<field>: problem" for every bad option of this type
    KEYS                                           this type's own top-level keys
    BATCH                                          batch defaults: 500 events / 900 kB (Splunk-Cloud-safe)

`settings` is the pipeline's ShipperSettings: `format`, `tls` (shared block; verification on by default) and
`request_timeout_s` (bounds the ack wait) are read from it; a `state_dir` attribute, when the settings carry
one, keeps the channel GUID across restarts (else the `state_dir` option, else a GUID per process).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.errors import ConfigError

from .config import KEYS, HecConfig, check
from .shipper import HecShipper

__all__ = ["BATCH", "KEYS", "HecConfig", "HecShipper", "create", "validate"]

# shipping.md §7: ≤ 1 MB uncompressed (≈ 900 kB to be Splunk-Cloud-safe) or 500 events. The pipeline counts
# payload bytes; envelopes add ~200 bytes per event, which max_request_bytes (1 MB) leaves room for.
BATCH = {"max_events": 500, "max_bytes": 800_000}


def validate(raw: Mapping[str, Any]) -> list[str]:
    return check(raw)[1]


def _setting(settings: Any, key: str, default: Any = None) -> Any:
    if settings is None:
        return default
    if isinstance(settings, Mapping):
        return settings.get(key, default)
    return getattr(settings, key, default)


def create(name: str, settings: Any, raw: Mapping[str, Any]) -> HecShipper:
    def fail(errors: list[str]) -> ConfigError:
        first = errors[0].split(":", 1)[0]
        return ConfigError("; ".join(f"shippers.{name}.{e}" for e in errors), field=f"shippers.{name}.{first}")

    cfg, errors = check(raw)
    if cfg is None:
        raise fail(errors)
    try:
        token = cfg.read_token()
    except ValueError as e:
        raise fail([str(e)]) from None
    return HecShipper(name, cfg, token, format=str(_setting(settings, "format") or raw.get("format", "osquery")),
                      tls=_setting(settings, "tls"), state_dir=_setting(settings, "state_dir"),
                      request_timeout_s=float(_setting(settings, "request_timeout_s", 60.0) or 60.0))
