"""Text forms of results, as osqueryi prints them: pretty, line, column, list, csv and json.

The engine hands out typed values; this is the only place they become text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

MODES = ("column", "csv", "line", "list", "pretty")
MODE_ALIASES = {"lines": "line", "columns": "column"}


@dataclass
class Style:
    mode: str = "pretty"
    headers: bool = True
    nullvalue: str = ""
    separator: str = "|"
    widths: tuple[int, ...] = ()


def text(value: Any, null: str = "") -> str:
    if value is None:
        return null
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float):
        return repr(value) if value != int(value) or abs(value) >= 1e15 else f"{value:.1f}"
    return str(value)


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], style: Style) -> str:
    cells = [[text(v, style.nullvalue) for v in r] for r in rows]
    mode = MODE_ALIASES.get(style.mode, style.mode)
    if mode == "pretty":
        return _pretty(columns, cells) if columns and rows else ""
    if mode == "line":
        return _line(columns, cells)
    if mode == "column":
        return _column(columns, cells, style)
    if mode == "csv":
        return _csv(columns, cells, style)
    if mode == "list":
        return _list(columns, cells, style)
    if mode == "json":
        return json_rows(columns, rows)
    raise ValueError(mode)


def json_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], pretty: bool = False) -> str:
    """osqueryi --json: an array with one compact object per line, every value a string, NULL as ""."""
    objs = [orjson.dumps({c: text(v) for c, v in zip(columns, r)}) for r in rows]
    if pretty:
        return orjson.dumps([orjson.loads(o) for o in objs], option=orjson.OPT_INDENT_2).decode() + "\n"
    body = ",\n".join("  " + o.decode() for o in objs)
    return "[\n" + body + ("\n" if body else "") + "]\n"


def _width(s: str) -> int:
    return len(s)


def _pretty(columns: Sequence[str], cells: list[list[str]]) -> str:
    widths = [_width(c) for c in columns]
    for r in cells:
        for i, v in enumerate(r):
            widths[i] = max(widths[i], _width(v))
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(vals: Sequence[str]) -> str:
        return "|" + "|".join(f" {v}{' ' * (w - _width(v))} " for v, w in zip(vals, widths)) + "|"

    out = [sep, line(columns), sep]
    out.extend(line(r) for r in cells)
    out.append(sep)
    return "\n".join(out) + "\n"


def _line(columns: Sequence[str], cells: list[list[str]]) -> str:
    name_w = max((len(c) for c in columns), default=0)
    blocks = ["\n".join(f"{c.rjust(name_w)} = {v}" for c, v in zip(columns, r)) for r in cells]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def _column(columns: Sequence[str], cells: list[list[str]], style: Style) -> str:
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    for i, w in enumerate(style.widths[: len(widths)]):
        if w > 0:
            widths[i] = w
    out = []
    if style.headers:
        out.append("  ".join(c.ljust(w)[:w] for c, w in zip(columns, widths)).rstrip())
        out.append("  ".join("-" * w for w in widths))
    out.extend("  ".join(v.ljust(w)[:w] for v, w in zip(r, widths)).rstrip() for r in cells)
    return "\n".join(out) + ("\n" if out else "")


def _csv(columns: Sequence[str], cells: list[list[str]], style: Style) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=style.separator if len(style.separator) == 1 else ",", lineterminator="\n")
    if style.headers and columns:
        w.writerow(columns)
    w.writerows(cells)
    return buf.getvalue()


def _list(columns: Sequence[str], cells: list[list[str]], style: Style) -> str:
    out = []
    if style.headers and columns:
        out.append(style.separator.join(columns))
    out.extend(style.separator.join(r) for r in cells)
    return "\n".join(out) + ("\n" if out else "")
