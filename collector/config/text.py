"""osquery's config text dialect: JSON plus `#`/`//` comment lines and backslash-newline continuations.

osquery strips these before parsing (config.cpp stripConfigComments: remove every backslash-newline, drop
lines whose trimmed text starts with `#` or `//`); the shipped packs depend on it. Unlike osquery we keep
positions: a dropped comment line becomes an empty line, a continued line is followed by as many empty lines
as it swallowed, and lines are not trimmed (whitespace outside strings means nothing to JSON; inside a
continued string osquery keeps it too). `LineMap` turns a position in the stripped text back into the
user's line and column, so every error points at the real place.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from pathlib import Path
from typing import Any

from collector.errors import ConfigError

MAX_SIZE = 4 * 1024 * 1024  # osquery kMaxConfigSize, measured on the stripped text
MAX_DEPTH = 32  # osquery kMaxConfigDepth


class LineMap:
    """Stripped (line, column) -> original (line, column); both 1-based, columns in characters."""

    def __init__(self) -> None:
        # Per stripped line: [(offset in the stripped line, original line, original column offset)].
        self.segments: list[list[tuple[int, int, int]]] = []

    def original(self, line: int, column: int) -> tuple[int, int]:
        if not 1 <= line <= len(self.segments):
            return line, column
        segs = self.segments[line - 1]
        i = bisect_right([s[0] for s in segs], column - 1) - 1
        off, orig_line, orig_col = segs[max(i, 0)]
        return orig_line, orig_col + (column - 1 - off) + 1


def strip_mapped(text: str) -> tuple[str, LineMap, int]:
    """(stripped text, position map, size osquery would measure after its own trimming)."""
    raw = text.split("\n")
    out: list[str] = []
    lmap = LineMap()
    size = 0
    i = 0
    while i < len(raw):
        start = i
        pieces: list[str] = []
        segs: list[tuple[int, int, int]] = []
        off = 0
        while True:
            line = raw[i]
            # osquery removes "\\\n"; a CRLF file's "\\\r\n" is taken the same way.
            cont = i + 1 < len(raw) and (line.endswith("\\") or line.endswith("\\\r"))
            body = line[: line.rindex("\\")] if cont else line
            segs.append((off, i + 1, 0))
            pieces.append(body)
            off += len(body)
            i += 1
            if not cont:
                break
        joined = "".join(pieces)
        trimmed = joined.strip()
        if trimmed.startswith(("#", "//")):
            joined, segs = "", [(0, start + 1, 0)]
        elif trimmed:
            size += len(trimmed.encode("utf-8", "surrogatepass")) + 1  # loads() may get lone surrogates
        out.append(joined)
        lmap.segments.append(segs)
        for k in range(start + 1, i):
            out.append("")
            lmap.segments.append([(0, k + 1, 0)])
    return "\n".join(out), lmap, size


def strip(text: str) -> str:
    return strip_mapped(text)[0]


def first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object keeping the first of duplicate keys, as osquery's rapidjson lookups do."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level - 1


def parse(text: str, source: str = "<config>") -> tuple[dict[str, Any], str, LineMap]:
    """(value, stripped text, map); ConfigError with the user's line:column on any defect."""
    stripped, lmap, size = strip_mapped(text)
    if size > MAX_SIZE:
        raise ConfigError(f"config is larger than {MAX_SIZE} bytes after stripping comments", file=source)
    try:
        value = json.loads(stripped, object_pairs_hook=first_wins)
    except json.JSONDecodeError as e:
        line, column = lmap.original(e.lineno, e.colno)
        raise ConfigError(f"invalid JSON: {e.msg}", file=source, line=line, column=column) from None
    except RecursionError:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=source) from None
    if not isinstance(value, dict):
        raise ConfigError("the top level must be a JSON object", file=source, line=1, column=1)
    if _depth(value) > MAX_DEPTH:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=source)
    return value, stripped, lmap


def loads(text: str, source: str = "<config>") -> dict[str, Any]:
    return parse(text, source)[0]


def read_text(path: str | Path) -> str:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError("config file does not exist", file=str(p)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a config file", file=str(p)) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=str(p)) from None
    if len(data) > MAX_SIZE * 2:
        raise ConfigError(f"config file is larger than {MAX_SIZE * 2} bytes", file=str(p))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(f"not UTF-8 text (byte {e.start})", file=str(p), line=line, column=column) from None


def load_file(path: str | Path) -> dict[str, Any]:
    return loads(read_text(path), str(path))
