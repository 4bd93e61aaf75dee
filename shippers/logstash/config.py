"""Options of the logstash shipper (both modes), checked with errors that name the field."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

MODES = ("beats", "http")
BODIES = ("json_array", "ndjson")
KEYS = frozenset({"mode", "hosts", "compression_level", "connect_timeout_s", "ack_timeout_s", "url", "body",
                  "gzip", "user", "password", "password_env", "headers", "beat", "timeout_s"})


@dataclass(frozen=True)
class LogstashConfig:
    mode: str = "beats"
    hosts: tuple[tuple[str, int], ...] = ()  # beats: tried in order, the next one after a failure
    compression_level: int = 3  # beats: zlib level of the '2C' frame; 0 = send plain JSON frames
    connect_timeout_s: float = 10.0
    ack_timeout_s: float = 30.0  # beats: longest silence (no ACK, not even a keepalive) before giving up
    timeout_s: float = 30.0  # http: one request, connect included
    url: str = ""  # http: the http input's URL
    body: str = "json_array"  # http: json_array (stock `json` codec) or ndjson (needs a json_lines codec)
    gzip: bool = False
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    beat: str = "quarry"  # @metadata.beat: Logstash's usual index pattern %{[@metadata][beat]}-...


def _host(v: Any) -> tuple[str, int] | None:
    if not isinstance(v, str) or ":" not in v:
        return None
    host, _, port = v.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def _number(raw: Mapping[str, Any], key: str, minimum: float, errors: list[str], kw: dict[str, Any],
            integer: bool = False, maximum: float | None = None) -> None:
    v = raw.get(key)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int | float) or (integer and not isinstance(v, int)):
        errors.append(f"{key}: expected {'an integer' if integer else 'a number'}, got {v!r}")
    elif v < minimum or (maximum is not None and v > maximum):
        errors.append(f"{key}: must be between {minimum:g} and {maximum:g}, got {v!r}" if maximum is not None
                      else f"{key}: must be at least {minimum:g}, got {v!r}")
    else:
        kw[key] = v


def check(raw: Mapping[str, Any]) -> tuple[LogstashConfig | None, list[str]]:
    errors: list[str] = []
    kw: dict[str, Any] = {}
    mode = raw.get("mode", "beats")
    if mode not in MODES:
        errors.append(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
        mode = "beats"
    kw["mode"] = mode
    if mode == "beats":
        hosts = raw.get("hosts")
        if not isinstance(hosts, list) or not hosts:
            errors.append(f"hosts: required for mode beats: a list of \"host:port\" (Logstash beats input, "
                          f"port 5044 by default), got {hosts!r}")
        else:
            parsed = [_host(h) for h in hosts]
            for h, p in zip(hosts, parsed):
                if p is None:
                    errors.append(f"hosts: expected \"host:port\", got {h!r}")
            kw["hosts"] = tuple(p for p in parsed if p)
        for key in ("url", "body", "gzip", "user", "password", "password_env", "headers", "timeout_s"):
            if key in raw:
                errors.append(f"{key}: only for mode http")
    else:
        url = raw.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            errors.append(f"url: required for mode http: the http input's http(s):// URL, got {url!r}")
        else:
            kw["url"] = url
        body = raw.get("body", "json_array")
        if body not in BODIES:
            errors.append(f"body: expected one of {', '.join(BODIES)}, got {body!r}")
        else:
            kw["body"] = body
        for key in ("hosts", "compression_level", "ack_timeout_s"):
            if key in raw:
                errors.append(f"{key}: only for mode beats")
        if "gzip" in raw:
            if not isinstance(raw["gzip"], bool):
                errors.append(f"gzip: expected true or false, got {raw['gzip']!r}")
            else:
                kw["gzip"] = raw["gzip"]
        user = raw.get("user")
        if user is not None:
            if not isinstance(user, str) or not user:
                errors.append(f"user: expected a non-empty string, got {user!r}")
            else:
                kw["user"] = user
        password = raw.get("password")
        env = raw.get("password_env")
        if password is not None and env is not None:
            errors.append("password: give password or password_env, not both")
        elif env is not None:
            if not isinstance(env, str) or env not in os.environ:
                errors.append(f"password_env: environment variable {env!r} is not set")
            else:
                password = os.environ[env]
        if password is not None:
            if not isinstance(password, str):
                errors.append("password: expected a string")
            elif not user:
                errors.append("password: needs user")
            else:
                kw["password"] = password
        headers = raw.get("headers")
        if headers is not None:
            if not isinstance(headers, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                            for k, v in headers.items()):
                errors.append(f"headers: expected an object of strings, got {headers!r}")
            else:
                kw["headers"] = tuple(headers.items())
    _number(raw, "compression_level", 0, errors, kw, integer=True, maximum=9)
    _number(raw, "connect_timeout_s", 0.001, errors, kw)
    _number(raw, "ack_timeout_s", 0.001, errors, kw)
    _number(raw, "timeout_s", 0.001, errors, kw)
    beat = raw.get("beat")
    if beat is not None:
        if not isinstance(beat, str) or not beat:
            errors.append(f"beat: expected a non-empty string, got {beat!r}")
        else:
            kw["beat"] = beat
    return (None if errors else LogstashConfig(**kw)), errors
