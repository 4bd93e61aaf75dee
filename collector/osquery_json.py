"""osquery's value text and JSON bytes, reproduced exactly (the byte-compatible layer under collector.events).

osquery builds its log lines with rapidjson's `Writer`; to be byte-compatible Quarry writes the same bytes:
- strings: `"` and `\\` escaped, control characters as `\\b \\t \\n \\f \\r` or `\\u00XX` (upper-case
  hex), every other character (including `/`, DEL and non-ASCII) raw UTF-8;
- doubles (numerics on): rapidjson's Grisu + Prettify form, e.g. `1.0`, `0.1`, `100000000000000000000.0`,
  `1e21`, `1.5e-7`; integers as decimal.

The *text form* of a typed value is osquery's `castVariant` (what a line shows when numerics is off and what
Quarry compares differential rows on): integers in decimal, doubles as `%.17g` with `.0` appended when there
is no `.` (`boost::lexical_cast<std::string>(double)`, e.g. `0.1` -> `0.10000000000000001`), text as is, and
NULL as `""` (osquery's `--nullvalue` default).

Escaping of non-printable bytes (`sql.escapeResults()`, osquery/sql/sql.cpp `escapeNonPrintableBytesEx`):
bytes < 0x20 and bytes that are not part of valid UTF-8 become `\\xHH` (upper-case hex); valid UTF-8 passes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

import orjson

Scalar = str | int | float

_CONTROL = re.compile(r"[\x00-\x1f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SPECIAL = re.compile(r"[\x00-\x1f\ud800-\udfff]")
_SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}


# --- text form ----------------------------------------------------------------------------------------------
def double_text(d: float) -> str:
    """osquery's castVariant(double): 17 significant digits, `.0` appended when there is no `.`."""
    s = f"{d:.17g}"
    if "." not in s:
        s += ".0"
    return s


def text(value: object) -> str:
    """The text form of a value as osquery logs it with numerics off."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return double_text(value)
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return repair(bytes(value).decode("utf-8", "surrogateescape"))
    return str(value)


# --- escaping -----------------------------------------------------------------------------------------------
def _hex_bytes(s: str) -> str:
    """A run of invalid text (lone surrogates) as the \\xHH of the bytes it stands for."""
    out = []
    for ch in s:
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:  # surrogateescape: one undecodable byte
            out.append(f"\\x{cp - 0xDC00:02X}")
        else:  # any other lone surrogate is invalid UTF-8 once encoded: escape its three bytes
            out.extend(f"\\x{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
    return "".join(out)


def repair(s: str) -> str:
    """Make a string valid UTF-8: undecodable bytes (lone surrogates) become \\xHH; control chars stay."""
    if not _SURROGATE.search(s):
        return s
    return _SURROGATE.sub(lambda m: _hex_bytes(m.group(0)), s)


def escape(s: str) -> str:
    """osquery's escapeNonPrintableBytes: bytes < 0x20 and invalid UTF-8 as \\xHH, valid UTF-8 unchanged."""
    if not _SPECIAL.search(s):
        return s
    s = repair(s)
    if _CONTROL.search(s):
        s = _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02X}", s)
    return s


# --- JSON bytes ---------------------------------------------------------------------------------------------
def _slow_string(s: str) -> bytes:
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif cp < 0x20:
            out.append(_SHORT_ESCAPES.get(cp) or f"\\u00{cp:02X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out).encode("utf-8")


def string(s: str) -> bytes:
    """A JSON string as rapidjson writes it."""
    if not _SPECIAL.search(s):
        return orjson.dumps(s)
    s = repair(s)
    if _CONTROL.search(s):
        return _slow_string(s)  # orjson writes \u00xx in lower case; rapidjson in upper case
    return orjson.dumps(s)


@lru_cache(maxsize=4096)
def key(k: str) -> bytes:
    """An object key with its colon; column names repeat on every row, so they are encoded once."""
    return string(k) + b":"


def double(d: float) -> bytes:
    """A finite double as rapidjson's Writer::Double writes it (Grisu digits, Prettify layout)."""
    if d == 0:
        return b"-0.0" if math.copysign(1.0, d) < 0 else b"0.0"
    sign = "-" if d < 0 else ""
    r = repr(abs(d))  # shortest round-trip digits, as Grisu2 gives them
    exp = 0
    if "e" in r:
        r, e = r.split("e")
        exp = int(e)
    ip, _, fp = r.partition(".")
    if fp == "0":
        fp = ""
    digits = (ip + fp).lstrip("0")
    k = exp - len(fp)
    stripped = digits.rstrip("0")
    k += len(digits) - len(stripped)
    digits = stripped
    length = len(digits)
    kk = length + k  # the value is 0.digits * 10^kk
    if k >= 0 and kk <= 21:
        s = digits + "0" * k + ".0"
    elif 0 < kk <= 21:
        s = digits[:kk] + "." + digits[kk:]
    elif -6 < kk <= 0:
        s = "0." + "0" * (-kk) + digits
    elif length == 1:
        s = digits + "e" + str(kk - 1)
    else:
        s = digits[0] + "." + digits[1:] + "e" + str(kk - 1)
    return (sign + s).encode("ascii")


def value(v: object, numerics: bool) -> bytes:
    """One column value: a number when numerics is on and the value is an INTEGER/BIGINT/DOUBLE, else text."""
    if type(v) is str:
        return string(v)
    if numerics and not isinstance(v, bool):
        if isinstance(v, int):
            return str(v).encode("ascii")
        if isinstance(v, float) and math.isfinite(v):
            return double(v)
    return string(text(v))


def row(r: Mapping[str, object], numerics: bool) -> bytes:
    """A row object: keys in byte order (osquery rows are std::map), values per `value`."""
    return b"{" + b",".join([key(k) + value(r[k], numerics) for k in sorted(r)]) + b"}"


def rows(rs: Iterable[Mapping[str, object]], numerics: bool) -> bytes:
    return b"[" + b",".join(row(r, numerics) for r in rs) + b"]"


def obj(pairs: Iterable[tuple[str, bytes]]) -> bytes:
    """An object from (key, already-encoded value) pairs, in order, duplicates kept (as rapidjson does)."""
    return b"{" + b",".join([key(k) + v for k, v in pairs]) + b"}"


def boolean(b: bool) -> bytes:
    return b"true" if b else b"false"
