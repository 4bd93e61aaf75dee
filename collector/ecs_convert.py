"""Value converters for the ECS mapping (schemas/ecs/mapping.json, key "as") and ISO time formatting.

Each converter takes one osquery value (int, float, str, bytes; never None) and returns the ECS-typed value
or REJECT. A rejected value is not written to its ECS field: collector/ecs.py keeps it under
osquery.<table>.<column> instead, so nothing the row said is lost and no ECS field holds a wrong type.
``CONVERTERS[name].ecs_types`` says which ECS types a converter may feed; tests check every mapping entry
against ecs_flat.yml with it.
"""

from __future__ import annotations

import ipaddress
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final


class _Reject:
    __slots__ = ()

    def __repr__(self) -> str:
        return "REJECT"


REJECT: Final = _Reject()

_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z: past this a "seconds" value is really ms or garbage


@lru_cache(maxsize=8192)  # a run's rows share its time; file rows repeat their mtimes
def iso_time(ts: float) -> str:
    """Unix time -> ISO 8601 UTC with milliseconds (2026-05-19T10:00:00.000Z)."""
    secs = int(ts // 1)
    ms = min(int(round((ts - secs) * 1000)), 999)
    t = time.gmtime(secs)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            f".{ms:03d}Z")


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return int(v) if v.is_integer() else None
    if isinstance(v, bytes):
        v = v.decode("ascii", "replace")
    if isinstance(v, str):
        s = v.strip()
        if s[:1] in "+-":
            return int(s) if s[1:].isdigit() else None
        return int(s) if s.isdigit() else None
    return None


def text(v: Any) -> str:
    """osquery value -> text, as osquery's string results show it."""
    if isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def keyword(v: Any) -> Any:
    s = text(v)
    return s if s else REJECT


def keyword_list(v: Any) -> Any:
    s = text(v)
    return [s] if s else REJECT


def long(v: Any) -> Any:
    n = _int(v)
    return REJECT if n is None else n


def port(v: Any) -> Any:
    n = _int(v)
    return n if n is not None and 0 < n < 65536 else REJECT


def kib(v: Any) -> Any:
    n = _int(v)
    return n * 1024 if n is not None and n >= 0 else REJECT


def date(v: Any) -> Any:
    if isinstance(v, float) and v > 0:
        return iso_time(v) if v <= _MAX_EPOCH else REJECT
    n = _int(v)
    return iso_time(n) if n is not None and 0 < n <= _MAX_EPOCH else REJECT


def _ip(v: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    s = text(v).strip()
    if not s:
        return None
    s = s.split("%", 1)[0]  # fe80::1%eth0: Elasticsearch's ip type has no zone id
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        return None


def ip(v: Any) -> Any:
    a = _ip(v)
    return REJECT if a is None else str(a)


def ip_specified(v: Any) -> Any:
    a = _ip(v)
    return REJECT if a is None or a.is_unspecified else str(a)


def ip_list(v: Any) -> Any:
    a = _ip(v)
    return REJECT if a is None else [str(a)]


def mac(v: Any) -> Any:
    s = text(v).strip().replace("-", ":")
    parts = s.split(":")
    if len(parts) != 6 or not all(len(p) in (1, 2) for p in parts):
        return REJECT
    try:
        octets = [int(p, 16) for p in parts]
    except ValueError:
        return REJECT
    if not any(octets):
        return REJECT
    return "-".join(f"{o:02X}" for o in octets)  # RFC 7042, as ECS asks


def mac_list(v: Any) -> Any:
    m = mac(v)
    return REJECT if m is REJECT else [m]


def boolean(v: Any) -> Any:
    n = _int(v)
    if n in (0, 1):
        return bool(n)
    s = text(v).strip().lower()
    return {"true": True, "false": False, "yes": True, "no": False}.get(s, REJECT)


def iana(v: Any) -> Any:
    n = _int(v)
    return str(n) if n is not None and 0 < n < 256 else REJECT  # osquery's 0 is "none" (unix sockets)


_TRANSPORT = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp", 136: "udplite"}


def transport(v: Any) -> Any:
    n = _int(v)
    return _TRANSPORT.get(n, REJECT) if n is not None else REJECT


_FAMILY = {2: "ipv4", 10: "ipv6"}  # Linux AF_INET / AF_INET6


def family(v: Any) -> Any:
    n = _int(v)
    return _FAMILY.get(n, REJECT) if n is not None else REJECT


_FILE_TYPE = {"regular": "file", "directory": "dir", "symlink": "symlink"}


def file_type(v: Any) -> Any:
    s = text(v)
    return _FILE_TYPE.get(s, s) if s else REJECT


def basename(v: Any) -> Any:
    s = text(v).rstrip("/")
    b = posixpath.basename(s)
    return b if b else REJECT


def dirname(v: Any) -> Any:
    s = text(v)
    if not s.startswith("/") or s == "/":
        return REJECT
    return posixpath.dirname(s.rstrip("/")) or "/"


@dataclass(frozen=True)
class Converter:
    fn: Callable[[Any], Any]
    ecs_types: frozenset[str]
    array: bool = False


_KW = frozenset({"keyword", "wildcard", "match_only_text", "constant_keyword"})
CONVERTERS: dict[str, Converter] = {
    "keyword": Converter(keyword, _KW),
    "keyword_list": Converter(keyword_list, _KW, array=True),
    "long": Converter(long, frozenset({"long"})),
    "port": Converter(port, frozenset({"long"})),
    "kib": Converter(kib, frozenset({"long"})),
    "date": Converter(date, frozenset({"date"})),
    "ip": Converter(ip, frozenset({"ip"})),
    "ip_specified": Converter(ip_specified, frozenset({"ip"})),
    "ip_list": Converter(ip_list, frozenset({"ip"}), array=True),
    "mac": Converter(mac, _KW),
    "mac_list": Converter(mac_list, _KW, array=True),
    "boolean": Converter(boolean, frozenset({"boolean"})),
    "iana": Converter(iana, _KW),
    "transport": Converter(transport, _KW),
    "family": Converter(family, _KW),
    "file_type": Converter(file_type, _KW),
    "basename": Converter(basename, _KW),
    "dirname": Converter(dirname, _KW),
}
