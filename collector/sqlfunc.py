"""osquery's SQL functions and collations (osquery.md §7.2), registered on every Engine connection.

Arguments arrive as SQLite values; functions that read text see them the way sqlite3_value_text() would
(numbers as their text), and integer arguments the way sqlite3_value_int() would. Errors raise QueryError
with osquery's message so the engine reports it unchanged. Known differences from osquery are listed in
`DIFFERENCES` (and in the docs of each function).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import logging
import math
import os
import re
import socket
import stat
import time
from collections.abc import Callable
from typing import Any

import apsw

from collector.communityid import CommunityIdError, community_id_v1, in_cidr_block
from collector.errors import QueryError
from collector.sqlmath import MATH, pi, power
from collector.vercmp import FLAVOURS, arch_compare, dpkg_compare, generic_compare, rpm_compare

log = logging.getLogger("quarry.sql")

REGEX_MAX_SIZE = 256  # osquery's hidden --regex_max_size
_C_SPACE = " \t\n\v\f\r"  # C isspace() in the "C" locale

DIFFERENCES = {
    "regex_match/regex_split": "Python re with ECMAScript $ and POSIX [[:class:]] translated; characters are "
                               "code points, not bytes; lookbehind and (?P<>) are accepted where std::regex "
                               "would reject them",
    "md5/sha1/sha256/to_base64": "a BLOB is hashed/encoded whole; osquery stops at its first NUL byte",
    "from_base64": "decoded bytes that are not UTF-8 come back as a BLOB (osquery: TEXT holding raw bytes)",
    "concat_ws": "a NULL last argument leaves no trailing separator (osquery appends one)",
    "community_id_v1": "ICMP/ICMPv6 type/code mapping and port omission for port-less protocols follow the "
                       "spec; osquery hashes type/code as plain ports",
    "version_compare/collations": "real dpkg, rpmvercmp and pacman vercmp algorithms; osquery uses one "
                                  "simplified delimiter walk for all flavours",
    "in_cidr_block": "an IPv4 /31 holds both its addresses (RFC 3021); osquery (boost hosts()) holds none",
    "find_file_path_in_cmd/is_path_deterministic": "under --hostfs a relative path starts at the host's /, "
                                                   "not at a working directory",
}


# --- SQLite value coercions -----------------------------------------------------------------------------
def _text(v: Any) -> str | None:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _raw(v: Any) -> bytes | None:
    if v is None or isinstance(v, bytes):
        return v
    return _text(v).encode("utf-8")  # type: ignore[union-attr]


_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


def _int(v: Any) -> int:
    """sqlite3_value_int(): 32-bit, floats truncated, text by its leading integer, anything else 0."""
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, float):
        n = int(v) if math.isfinite(v) else 0
    elif isinstance(v, int):
        n = v
    else:
        m = _LEADING_INT.match(_text(v) or "")
        n = int(m.group(1)) if m else 0
    n &= 0xFFFFFFFF
    return n - (1 << 32) if n >= 1 << 31 else n


def _error(message: str) -> QueryError:
    return QueryError(message)


# --- strings ----------------------------------------------------------------------------------------------
def split(value: Any, tokens: Any, index: Any) -> str | None:
    """Split on any character of tokens, drop empty pieces, then trim each (osquery::split)."""
    if value is None or tokens is None or index is None:
        return None
    text, tok = _text(value) or "", _text(tokens) or ""
    if not tok:
        raise _error("Invalid input to split function")
    pieces = [p.strip(_C_SPACE) for p in re.split("[" + re.escape(tok) + "]", text) if p]
    i = _int(index)
    return pieces[i] if 0 <= i < len(pieces) else None


_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": r" \t\n\r\f\v", "blank": r" \t", "xdigit": "0-9A-Fa-f", "punct": r"!-/:-@\[-`{-~",
    "cntrl": r"\x00-\x1f\x7f", "print": r"\x20-\x7e", "graph": r"\x21-\x7e", "word": "a-zA-Z0-9_",
    "w": "a-zA-Z0-9_", "d": "0-9", "s": r" \t\n\r\f\v",
}


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    """Python re from an ECMAScript (std::regex) pattern: `$` only at the very end, [[:class:]] sets."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if c == "[" and pattern.startswith("[:", i):
                end = pattern.find(":]", i + 2)
                name = pattern[i + 2:end] if end > 0 else ""
                if name in _POSIX_CLASSES:
                    out.append(_POSIX_CLASSES[name])
                    i = end + 2
                    continue
            if c == "]" and not (out and out[-1] in ("[", "[^")):
                in_class = False
            out.append("\\[" if c == "[" else c)
        elif c == "[":
            in_class = True
            if pattern.startswith("[^", i):
                out.append("[^")
                i += 2
                continue
            out.append("[")
        elif c == "$":
            out.append(r"\Z")
        else:
            out.append(c)
        i += 1
    return re.compile("".join(out), re.ASCII)


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return _compile(pattern)
    except (re.error, RecursionError, OverflowError) as e:
        log.info("Invalid regex: %s", e)
        raise _error("Invalid regex") from None


def regex_split(value: Any, pattern: Any, index: Any) -> str | None:
    """std::sregex_token_iterator(-1): text between matches; a trailing empty piece is dropped."""
    if value is None or pattern is None or index is None:
        return None
    text, pat = _text(value) or "", _text(pattern) or ""
    if not pat:
        raise _error("Invalid input to split function")
    if len(pat.encode()) > REGEX_MAX_SIZE:
        raise _error("Invalid regex")
    pieces: list[str] = []
    pos = 0
    matched = False
    for m in _regex(pat).finditer(text):
        matched = True
        pieces.append(text[pos:m.start()])
        pos = m.end()
    if not matched or pos < len(text):
        pieces.append(text[pos:])
    i = _int(index)
    return pieces[i] if 0 <= i < len(pieces) else None


def regex_match(value: Any, pattern: Any, index: Any) -> str | None:
    """std::regex_search: group `index` of the first match (0 = whole match), NULL when absent."""
    if value is None or pattern is None or index is None:
        return None
    text, pat = _text(value) or "", _text(pattern) or ""
    if len(pat.encode()) > REGEX_MAX_SIZE:
        raise _error(f"Invalid regex: too big, max size is {REGEX_MAX_SIZE} bytes")
    m = _regex(pat).search(text)
    i = _int(index)
    if m is None or not 0 <= i <= (m.re.groups):
        return None
    return m.group(i) or ""  # an unmatched group is an empty std::ssub_match


def inet_aton(value: Any) -> int | None:
    text = _text(value)
    if text is None or ":" in text:
        return None
    try:
        return int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except (OSError, ValueError):  # ValueError: a NUL inside the text
        return None


def concat(*args: Any) -> str | None:
    if not args:
        return None
    return "".join(_text(a) for a in args if a is not None)  # type: ignore[misc]


def concat_ws(*args: Any) -> str | None:
    if not args:
        raise _error("Missing separator to concat_ws")
    sep = _text(args[0]) or ""
    if len(args) == 1:
        return None
    return sep.join(_text(a) for a in args[1:] if a is not None)  # type: ignore[misc]


# --- hashing and encoding ---------------------------------------------------------------------------------
def _hasher(name: str) -> Callable[[Any], str | None]:
    def digest(value: Any) -> str | None:
        data = _raw(value)
        return None if data is None else hashlib.new(name, data).hexdigest()

    digest.__name__ = name
    return digest


def _community(strict: bool) -> Callable[..., str | None]:
    def fn(*args: Any) -> str | None:
        if len(args) not in (5, 6):
            raise _error(f"wrong number of arguments to function community_id_v1{'_strict' if strict else ''}()")
        try:
            return community_id_v1(*args)
        except CommunityIdError as e:
            if strict:
                raise _error(str(e)) from None
            log.warning("%s", e)
            return None

    return fn


def to_base64(value: Any) -> str | None:
    data = _raw(value)
    return None if data is None else base64.b64encode(data).decode("ascii")


def from_base64(value: Any) -> str | bytes | None:
    text = _text(value)
    if text is None:
        return None
    text = text.replace("\r\n", "").replace("\n", "").rstrip("=")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        log.info("Could not base64 decode string")
        return ""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def conditional_to_base64(value: Any) -> str | None:
    data = _raw(value)
    if data is None:
        return None
    if all(0x20 <= b <= 0x7E for b in data):
        return data.decode("ascii")
    return base64.b64encode(data).decode("ascii")


def _in_cidr_block(cidr: Any, ip: Any) -> int:
    try:
        return in_cidr_block(cidr, ip)
    except ValueError as e:
        raise _error(str(e)) from None


# --- versions -----------------------------------------------------------------------------------------------
def version_compare(a: Any, b: Any, flavour: Any = "") -> int | None:
    if a is None or b is None:
        return None
    name = (_text(flavour) or "").upper()
    cmp = FLAVOURS.get(name)
    if cmp is None:
        raise _error(f"Invalid version_compare flavor {name!r}: expected ARCH, DPKG or RHEL")
    r = cmp(_text(a) or "", _text(b) or "")
    return (r > 0) - (r < 0)


# --- filesystem ---------------------------------------------------------------------------------------------
def parent_directory(value: Any) -> str | None:
    if not isinstance(value, str):
        raise _error("Invalid inputs to parent_directory, TEXT was expected")
    pos = value.rfind("/")
    return None if pos < 0 else value[:pos]


_MAX_LINKS = 40  # the kernel's MAXSYMLINKS: more hops than this is ELOOP


def _host_stat(root: str, path: str) -> os.stat_result | None:
    """stat() of a host path under `root` (--hostfs), symlinks followed the way the host would follow them.

    os.stat(root + path) would follow an absolute link such as /usr/bin/java -> /etc/alternatives/java
    into the collector's own filesystem; here an absolute target restarts at `root` and `..` stops there.
    None for a directory or a link loop (the caller only asks "is it a non-directory?"); OSError as
    os.stat raises it when a component is missing or unreadable.
    """
    todo = path.split("/")[::-1]  # a stack: the next component last
    parts: list[str] = []
    st: os.stat_result | None = None  # None: we stand on a directory already walked through
    links = 0
    while todo:
        name = todo.pop()
        if st is not None:
            return None  # a component (or trailing /) after a non-directory: ENOTDIR
        if name in ("", "."):
            continue
        if name == "..":
            if parts:
                parts.pop()
            continue
        real = root + "/" + "/".join(parts + [name])
        st = os.lstat(real)
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                return None
            target = os.readlink(real)
            if target.startswith("/"):
                parts = []
            todo.extend(target.split("/")[::-1])
            st = None
        elif stat.S_ISDIR(st.st_mode):
            parts.append(name)
            st = None
        else:
            parts.append(name)
    return st


def _is_file(path: str, root: str = "/") -> bool:
    """What osquery asks of a prefix: it exists and is not a directory (links followed)."""
    try:
        if root == "/":
            return not stat.S_ISDIR(os.stat(path).st_mode)
        return _host_stat(root, path) is not None
    except (OSError, ValueError):  # ValueError: a NUL inside the text
        return False


def _program_path(args: tuple[Any, ...], shortest: bool, root: str = "/") -> str | None:
    """The first (or last) prefix of a command line that names an existing non-directory, or "".

    Prefixes are host paths: under --hostfs they are looked up below `root`, and the answer is the host's
    path (no root prefix), as every table reports paths."""
    if not args or any(a is None for a in args):
        return None
    cmd = _text(args[0]) or ""
    quoting = len(args) > 1 and _int(args[1]) != 0
    escape = "\\"
    if len(args) > 2:
        esc = _text(args[2]) or ""
        if len(esc.encode()) != 1:
            return None
        escape = esc
    result, buf = "", []
    quoted = escaped = False
    for c in cmd.lstrip(_C_SPACE):
        if escaped:
            buf.append(c)
            escaped = False
            continue
        if quoting and c == '"':
            quoted = not quoted
            continue
        if c == escape:
            escaped = True
            continue
        if not quoted and c in _C_SPACE and _is_file("".join(buf), root):
            result = "".join(buf)
            if shortest:
                break
        buf.append(c)
    else:
        if _is_file("".join(buf), root):
            result = "".join(buf)
    if not result and _is_file("".join(buf), root):
        result = "".join(buf)
    return result


def find_file_path_in_cmd(*args: Any, root: str = "/") -> str:
    found = _program_path(args, shortest=True, root=root)
    if found is None:
        raise _error("Invalid inputs to find_binary_path_from_cmd")
    return found


def is_path_deterministic(*args: Any, root: str = "/") -> int:
    short = _program_path(args, shortest=True, root=root)
    if short is not None:
        if not short or len(short) == len(_text(args[0]) or ""):
            return 1
        longest = _program_path(args, shortest=False, root=root)
        if longest is not None:
            return int(len(short) == len(longest))
    raise _error("Invalid inputs to is_path_deterministic")


def sleep(seconds: Any) -> int:
    n = _int(seconds)
    if n < 0:
        return 0
    time.sleep(n)
    return n


COLLATIONS: dict[str, Callable[[str, str], int]] = {
    "VERSION": generic_compare, "VERSION_ARCH": arch_compare,
    "VERSION_DPKG": dpkg_compare, "VERSION_RHEL": rpm_compare,
}


def register(conn: apsw.Connection, root: str = "/") -> None:
    """Every function on `conn`; those that look at files see the host root (--hostfs) `root`."""
    root = root.rstrip("/") or "/"
    pure = functools.partial(conn.create_scalar_function, deterministic=True)
    pure("split", split, 3)
    pure("regex_split", regex_split, 3)
    pure("regex_match", regex_match, 3)
    pure("inet_aton", inet_aton, 1)
    pure("concat", concat, -1)
    pure("concat_ws", concat_ws, -1)
    for name in ("md5", "sha1", "sha256"):
        pure(name, _hasher(name), 1)
    for n in (5, 6):
        pure("community_id_v1", _community(strict=False), n)
        pure("community_id_v1_strict", _community(strict=True), n)
    pure("to_base64", to_base64, 1)
    pure("from_base64", from_base64, 1)
    pure("conditional_to_base64", conditional_to_base64, 1)
    pure("in_cidr_block", _in_cidr_block, 2)
    pure("version_compare", version_compare, 2)
    pure("version_compare", version_compare, 3)
    pure("parent_directory", parent_directory, 1)
    # These two read the filesystem, so the same input can answer differently over time.
    impure = conn.create_scalar_function
    impure("find_file_path_in_cmd", functools.partial(find_file_path_in_cmd, root=root), -1)
    impure("is_path_deterministic", functools.partial(is_path_deterministic, root=root), -1)
    impure("sleep", sleep, 1)
    for name, fn in MATH.items():
        pure(name, fn, 1)
    pure("power", power, 2)
    pure("pi", pi, 0)
    for name, cmp in COLLATIONS.items():
        conn.create_collation(name, cmp)
