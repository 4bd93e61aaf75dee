"""Logstash shipper: `beats` mode (lumberjack v2 with window, ACKs and zlib) or `http` mode (JSON POST).

    create(name, settings, raw) -> BeatsShipper | HttpShipper     a Shipper (collector.pipeline.api)
    validate(raw) -> list[str]                                      "<field>: problem" for every bad option

The shared `tls` block (collector.pipeline.config TlsSettings: ca_file, cert_file, key_file, verify,
server_name) turns TLS on in beats mode and configures verification in http mode (https:// URLs verify
against the system CAs without it). Verification is on unless `tls.verify` is false.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.errors import ConfigError

from .beats import BeatsShipper
from .config import KEYS, LogstashConfig, check
from .http import HttpShipper

__all__ = ["BATCH", "KEYS", "BeatsShipper", "HttpShipper", "LogstashConfig", "create", "validate"]

# Filebeat's logstash output sends windows of up to 2048 events (bulk_max_size).
BATCH = {"max_events": 2048, "max_bytes": 4_000_000}


def validate(raw: Mapping[str, Any]) -> list[str]:
    return check(raw)[1]


def create(name: str, settings: Any, raw: Mapping[str, Any]) -> BeatsShipper | HttpShipper:
    cfg, errors = check(raw)
    if cfg is None:
        first = errors[0].split(":", 1)[0]
        raise ConfigError("; ".join(f"shippers.{name}.{e}" for e in errors), field=f"shippers.{name}.{first}")
    fmt = str(getattr(settings, "format", None) or raw.get("format", "osquery"))
    tls = getattr(settings, "tls", None)
    ctx = tls.context() if tls is not None else None
    if cfg.mode == "http":
        return HttpShipper(name, cfg, format=fmt, tls=ctx)
    return BeatsShipper(name, cfg, format=fmt, tls=ctx, server_name=getattr(tls, "server_name", None),
                        workers=int(getattr(settings, "concurrency", 1) or 1))
