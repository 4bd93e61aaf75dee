"""Options of a splunk_hec shipper (its own keys; the pipeline's shared blocks are checked by the pipeline).

    cfg, errors = check(raw)     # errors read "<field>: problem"; cfg is None when there is any error
    token = cfg.read_token()     # from token / token_env / token_file, ConfigError-free: ValueError naming the field
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EVENT_PATH = "/services/collector/event"

KEYS = frozenset({
    "url", "token", "token_env", "token_file", "host", "source", "sourcetype", "status_sourcetype", "index",
    "fields", "gzip", "gzip_level", "max_request_bytes", "timeout_s", "connect_timeout_s", "ack",
    "ack_timeout_s", "ack_poll_s", "channel", "state_dir", "max_connections",
})


@dataclass(frozen=True)
class HecConfig:
    url: str  # base URL, scheme://host:port (any /services/collector... suffix removed)
    token: str | None = None
    token_env: str | None = None
    token_file: str | None = None
    host: str | None = None  # None: each record's host
    source: str = "quarry"
    sourcetype: str | None = None  # None: osquery:results (format osquery) / quarry:ecs (format ecs)
    status_sourcetype: str = "osquery:status"
    index: str | None = None
    fields: dict[str, str] = field(default_factory=dict)  # static indexed fields added to every event
    gzip: bool = True
    gzip_level: int = 1
    max_request_bytes: int = 1_000_000  # uncompressed body; larger → TooLarge (the pipeline splits)
    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    ack: bool = False
    ack_timeout_s: float = 300.0
    ack_poll_s: float = 10.0  # longest pause between ack polls (the first ones come sooner)
    channel: str | None = None  # fixed channel GUID
    state_dir: str | None = None  # where the generated channel GUID is kept across restarts
    max_connections: int = 8

    def read_token(self) -> str:
        if self.token:
            return self.token
        if self.token_env:
            value = os.environ.get(self.token_env, "").strip()
            if not value:
                raise ValueError(f"token_env: environment variable {self.token_env} is not set or empty")
            return value
        assert self.token_file
        try:
            value = Path(self.token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ValueError(f"token_file: cannot read {self.token_file}: {e.strerror or e}") from None
        if not value:
            raise ValueError(f"token_file: {self.token_file} is empty")
        return value


def _num(raw: Mapping[str, Any], key: str, errors: list[str], minimum: float, integer: bool = False,
         maximum: float | None = None) -> Any:
    v = raw[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or (integer and not float(v).is_integer()):
        errors.append(f"{key}: expected {'an integer' if integer else 'a number'}, got {v!r}")
        return None
    if v < minimum or (maximum is not None and v > maximum):
        rng = f"between {minimum:g} and {maximum:g}" if maximum is not None else f"at least {minimum:g}"
        errors.append(f"{key}: must be {rng}, got {v!r}")
        return None
    return int(v) if integer else float(v)


def check(raw: Mapping[str, Any]) -> tuple[HecConfig | None, list[str]]:
    errors: list[str] = []
    kw: dict[str, Any] = {}
    url = raw.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url or ""):
        errors.append(f"url: required, http(s)://host:port of the HEC endpoint, got {url!r}")
    else:
        base = url.rstrip("/")
        cut = base.find("/services/collector")
        kw["url"] = base[:cut] if cut >= 0 else base
    sources = [k for k in ("token", "token_env", "token_file") if raw.get(k) is not None]
    if len(sources) != 1:
        errors.append("token: exactly one of token, token_env, token_file is required"
                      + (f" (got {', '.join(sources)})" if sources else ""))
    for key in ("token", "token_env", "token_file", "host", "source", "sourcetype", "status_sourcetype",
                "index", "channel", "state_dir"):
        if key in raw and raw[key] is not None:
            if not isinstance(raw[key], str) or not raw[key].strip():
                errors.append(f"{key}: expected a non-empty string, got {raw[key]!r}")
            else:
                kw[key] = raw[key]
    if "token_file" in kw and not Path(kw["token_file"]).is_file():
        errors.append(f"token_file: no such file: {kw['token_file']}")
    if "channel" in kw and not GUID.match(kw["channel"]):
        errors.append(f"channel: expected a GUID like 0f2a...-...-...-...-..., got {kw['channel']!r}")
    if "fields" in raw:
        f = raw["fields"]
        if not isinstance(f, Mapping) or not all(isinstance(k, str) and isinstance(v, str | int | float)
                                                 and not isinstance(v, bool) for k, v in f.items()):
            errors.append("fields: expected a flat object of strings or numbers (HEC rejects nested "
                          f"indexed fields with code 15), got {f!r}")
        else:
            kw["fields"] = {k: str(v) for k, v in f.items()}
    for key in ("gzip", "ack"):
        if key in raw:
            if not isinstance(raw[key], bool):
                errors.append(f"{key}: expected true or false, got {raw[key]!r}")
            else:
                kw[key] = raw[key]
    limits = {"gzip_level": (0, True, 9), "max_request_bytes": (1024, True, None), "timeout_s": (0.001, False, None),
              "connect_timeout_s": (0.001, False, None), "ack_timeout_s": (0.1, False, None),
              "ack_poll_s": (0.01, False, None), "max_connections": (1, True, 64)}
    for key, (minimum, integer, maximum) in limits.items():
        if key in raw:
            v = _num(raw, key, errors, minimum, integer, maximum)
            if v is not None:
                kw[key] = v
    if errors:
        return None, errors
    return HecConfig(**kw), []
