"""Typed settings of one shipper instance, the shared option blocks, and the registry of shipper types.

A shipper entry of the config's `shippers` section is a JSON object. The pipeline owns these keys (every
shipper accepts them); everything else belongs to the shipper type and is checked by its `validate(raw)`:

    type, format, queue{max_events, max_bytes, when_full}, spool{enabled, dir, segment_bytes, max_bytes,
    when_full, fsync_ms}, batch{max_events, max_bytes, linger_ms},
    retry{initial_s, max_s, max_elapsed_s, probe_s},
    concurrency, drain_rate, request_timeout_s, tls{ca_file, cert_file, key_file, verify, server_name},
    dead_letter{path, max_bytes, max_files}

    settings, errors = parse_settings("splunk_main", raw)      # errors name the shipper and the field
    errors = validate_shipper("splunk_main", raw)               # the pipeline's checks + the type's own
    shipper = create_shipper("splunk_main", settings, raw)      # through shippers/<type>/__init__.py

A shipper package `shippers/<type>/__init__.py` exposes `create(name, settings, raw) -> Shipper` and
`validate(raw) -> list[str]`; optionally `KEYS` (its own top-level keys, so unknown ones are reported here)
and `BATCH` (a dict of batch defaults, e.g. HEC's 1 MB / 500 events).
"""

from __future__ import annotations

import importlib
import pkgutil
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import ModuleType
from typing import Any

from collector.pipeline.api import Shipper

MiB = 1024 * 1024
WHEN_FULL = ("block", "drop_newest", "drop_oldest")
FORMATS = ("osquery", "ecs")
LOCAL_TYPES = frozenset({"file"})  # shippers whose destination is local: no spool by default


@dataclass(frozen=True)
class QueueSettings:
    max_events: int = 10_000
    max_bytes: int = 64 * MiB
    when_full: str = "block"


@dataclass(frozen=True)
class SpoolSettings:
    enabled: bool | None = None  # None: on for network shippers, off for `file`
    dir: str | None = None  # default <state_dir>/spool/<shipper>
    segment_bytes: int = 64 * MiB
    max_bytes: int = 1024 * MiB
    when_full: str = "block"
    fsync_ms: int = 1000


@dataclass(frozen=True)
class BatchSettings:
    max_events: int = 1000
    max_bytes: int = 1_000_000
    linger_ms: int = 1000


@dataclass(frozen=True)
class RetrySettings:
    initial_s: float = 1.0
    max_s: float = 30.0
    max_elapsed_s: float | None = None  # None: retry temporary errors for as long as there is room
    probe_s: float = 5.0  # while the lane fails, its health check every probe_s can end a backoff (0: off)


@dataclass(frozen=True)
class TlsSettings:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    server_name: str | None = None

    def context(self) -> ssl.SSLContext:
        """A client context for shippers that speak TLS (server_name is the shipper's to pass on connect)."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file)
        if not self.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


@dataclass(frozen=True)
class DeadLetterSettings:
    path: str | None = None  # default <state_dir>/deadletter/<shipper>.jsonl
    max_bytes: int = 64 * MiB
    max_files: int = 5


@dataclass(frozen=True)
class ShipperSettings:
    name: str
    type: str
    format: str = "osquery"
    queue: QueueSettings = field(default_factory=QueueSettings)
    spool: SpoolSettings = field(default_factory=SpoolSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    concurrency: int = 2
    drain_rate: float = 0.0  # events/s ceiling on sending (0 = unlimited): spreads a backlog after an outage
    request_timeout_s: float = 60.0  # safety net around send(); shippers keep their own protocol timeouts
    tls: TlsSettings | None = None
    dead_letter: DeadLetterSettings = field(default_factory=DeadLetterSettings)
    # The daemon's state folder (set by the daemon, not by the config): what a shipper keeps across restarts
    # lives there, e.g. the HEC channel GUID.
    state_dir: str | None = None

    @property
    def spool_enabled(self) -> bool:
        if self.spool.enabled is None:
            return self.type not in LOCAL_TYPES
        return self.spool.enabled


BLOCKS: dict[str, type] = {"queue": QueueSettings, "spool": SpoolSettings, "batch": BatchSettings,
                           "retry": RetrySettings, "tls": TlsSettings, "dead_letter": DeadLetterSettings}
SCALARS = ("concurrency", "drain_rate", "request_timeout_s")
COMMON_KEYS = frozenset({"type", "format", *BLOCKS, *SCALARS})

# per field: (kind, minimum) — kinds: int, float, bool, str, policy, optional float/str/bool
_RULES: dict[str, dict[str, tuple[str, float | None]]] = {
    "queue": {"max_events": ("int", 1), "max_bytes": ("int", 1024), "when_full": ("policy", None)},
    "spool": {"enabled": ("bool?", None), "dir": ("str?", None), "segment_bytes": ("int", 4096),
              "max_bytes": ("int", 8192), "when_full": ("policy", None), "fsync_ms": ("int", 1)},
    "batch": {"max_events": ("int", 1), "max_bytes": ("int", 1), "linger_ms": ("int", 0)},
    "retry": {"initial_s": ("float", 0.001), "max_s": ("float", 0.001), "max_elapsed_s": ("float?", 0),
              "probe_s": ("float", 0)},
    "tls": {"ca_file": ("file?", None), "cert_file": ("file?", None), "key_file": ("file?", None),
            "verify": ("bool", None), "server_name": ("str?", None)},
    "dead_letter": {"path": ("str?", None), "max_bytes": ("int", 4096), "max_files": ("int", 1)},
}
_SCALAR_RULES: dict[str, tuple[str, float | None]] = {
    "concurrency": ("int", 1), "drain_rate": ("float", 0), "request_timeout_s": ("float", 0.001)}
MAX_CONCURRENCY = 8


def _check(where: str, value: Any, kind: str, minimum: float | None) -> tuple[Any, str | None]:
    """(converted value, error) for one field; bool is never accepted as a number."""
    optional = kind.endswith("?")
    base = kind.rstrip("?")
    if value is None:
        return (None, None) if optional else (None, f"{where}: must be set")
    if base == "bool":
        if isinstance(value, bool):
            return value, None
        return None, f"{where}: expected true or false, got {value!r}"
    if base in ("str", "file", "policy"):
        if not isinstance(value, str) or not value:
            return None, f"{where}: expected a non-empty string, got {value!r}"
        if base == "policy" and value not in WHEN_FULL:
            return None, f"{where}: expected one of {', '.join(WHEN_FULL)}, got {value!r}"
        if base == "file" and not Path(value).is_file():
            return None, f"{where}: no such file: {value}"
        return value, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, f"{where}: expected a number, got {value!r}"
    if base == "int" and (not isinstance(value, int) and not float(value).is_integer()):
        return None, f"{where}: expected an integer, got {value!r}"
    conv = int(value) if base == "int" else float(value)
    if minimum is not None and conv < minimum:
        return None, f"{where}: must be at least {minimum:g}, got {value!r}"
    return conv, None


def parse_settings(name: str, raw: Mapping[str, Any],
                   batch_defaults: Mapping[str, Any] | None = None) -> tuple[ShipperSettings, list[str]]:
    """Typed settings from one `shippers.<name>` object. Errors read `shippers.<name>.<block>.<field>: ...`.

    Keys that are not the pipeline's are left to the shipper type (see validate_shipper)."""
    errors: list[str] = []
    prefix = f"shippers.{name}"
    if not isinstance(raw, Mapping):
        return ShipperSettings(name=name, type="?"), [f"{prefix}: expected an object, got {type(raw).__name__}"]
    stype = raw.get("type")
    if not isinstance(stype, str) or not stype:
        errors.append(f"{prefix}.type: required (one of {', '.join(shipper_types()) or 'no types installed'})")
        stype = "?"
    fmt = raw.get("format", "osquery")
    if fmt not in FORMATS:
        errors.append(f"{prefix}.format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
        fmt = "osquery"
    kw: dict[str, Any] = {"name": name, "type": stype, "format": fmt}
    if batch_defaults is None and stype != "?":
        try:  # the type's own batch defaults (HEC 1 MB / 500 events, ES 5 MB / 1000 ...)
            batch_defaults = getattr(shipper_module(stype), "BATCH", None)
        except (ValueError, ImportError):
            batch_defaults = None  # an unknown type is validate_shipper's error to report
    for block, cls in BLOCKS.items():
        base = cls()
        if block == "batch" and batch_defaults:
            base = replace(base, **{k: v for k, v in batch_defaults.items() if k in _RULES["batch"]})
        value = raw.get(block)
        if value is None:
            if block != "tls":
                kw[block] = base
            continue
        if not isinstance(value, Mapping):
            errors.append(f"{prefix}.{block}: expected an object, got {value!r}")
            continue
        known = {f.name for f in fields(cls)}
        changes: dict[str, Any] = {}
        for key, v in value.items():
            if key not in known:
                errors.append(f"{prefix}.{block}.{key}: unknown key (known: {', '.join(sorted(known))})")
                continue
            kind, minimum = _RULES[block][key]
            conv, err = _check(f"{prefix}.{block}.{key}", v, kind, minimum)
            if err:
                errors.append(err)
            else:
                changes[key] = conv
        kw[block] = replace(base, **changes)
    for key in SCALARS:
        if key in raw:
            kind, minimum = _SCALAR_RULES[key]
            conv, err = _check(f"{prefix}.{key}", raw[key], kind, minimum)
            if err:
                errors.append(err)
            elif key == "concurrency" and conv > MAX_CONCURRENCY:
                errors.append(f"{prefix}.concurrency: at most {MAX_CONCURRENCY}, got {conv}")
            else:
                kw[key] = conv
    settings = ShipperSettings(**kw)
    if settings.retry.max_s < settings.retry.initial_s:
        errors.append(f"{prefix}.retry.max_s: must be at least retry.initial_s ({settings.retry.initial_s:g})")
    if settings.spool.segment_bytes > settings.spool.max_bytes:
        errors.append(f"{prefix}.spool.segment_bytes: must not exceed spool.max_bytes "
                      f"({settings.spool.max_bytes})")
    if settings.tls and settings.tls.key_file and not settings.tls.cert_file:
        errors.append(f"{prefix}.tls.key_file: needs tls.cert_file")
    return settings, errors


# --- registry of shipper types (package scan of shippers/) -------------------------------------------
def shipper_types() -> list[str]:
    """Names of the packages under shippers/ that expose create() and validate()."""
    import shippers

    names = []
    for info in pkgutil.iter_modules(shippers.__path__):
        if info.ispkg and not info.name.startswith("_"):
            names.append(info.name)
    return sorted(names)


def shipper_module(stype: str) -> ModuleType:
    """The shipper package for a type; ValueError naming the known types when absent or incomplete."""
    if stype not in shipper_types():
        raise ValueError(f"unknown shipper type {stype!r} (known: {', '.join(shipper_types()) or 'none'})")
    mod = importlib.import_module(f"shippers.{stype}")
    for attr in ("create", "validate"):
        if not callable(getattr(mod, attr, None)):
            raise ValueError(f"shippers/{stype}/__init__.py does not expose {attr}()")  # noqa: TRY004
    return mod


def validate_shipper(name: str, raw: Mapping[str, Any]) -> list[str]:
    """Every error of one shipper entry: the shared blocks, unknown keys, and the type's own validate()."""
    if not isinstance(raw, Mapping):
        return parse_settings(name, raw)[1]
    stype = raw.get("type")
    mod: ModuleType | None = None
    errors: list[str] = []
    if isinstance(stype, str) and stype:
        try:
            mod = shipper_module(stype)
        except ValueError as e:
            errors.append(f"shippers.{name}.type: {e}")
    batch_defaults = getattr(mod, "BATCH", None) if mod else None
    errors += parse_settings(name, raw, batch_defaults)[1]
    if mod is not None:
        own = getattr(mod, "KEYS", None)
        if own is not None:
            for key in raw:
                if key not in COMMON_KEYS and key not in own:
                    errors.append(f"shippers.{name}.{key}: unknown key for a {stype} shipper")
        validate: Callable[[Mapping[str, Any]], list[str]] = mod.validate
        for err in validate(raw):  # "brokers: required" -> "shippers.k: brokers: required"
            errors.append(err if err.startswith(f"shippers.{name}") else f"shippers.{name}: {err}")
    return errors


def create_shipper(name: str, settings: ShipperSettings, raw: Mapping[str, Any]) -> Shipper:
    mod = shipper_module(settings.type)
    shipper: Shipper = mod.create(name, settings, raw)
    return shipper
