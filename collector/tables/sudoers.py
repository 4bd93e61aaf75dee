"""sudoers: /etc/sudoers and the files it includes (#include, @include, #includedir, @includedir).

Like osquery this is a line-level reading, not a sudoers grammar: each rule's first token is the header,
the rest its details; backslash continuations are joined; comments are dropped; include lines are both
reported and followed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table

SPEC = table(
    'sudoers',
    'Rules for running commands as other users via sudo.',
    columns=[
        col('source', TEXT, 'Source file containing the given rule'),
        col('header', TEXT, 'Symbol for given rule'),
        col('rule_details', TEXT, 'Rule definition'),
    ],
    platforms=('darwin', 'linux'),
    requires={"CAP_DAC_READ_SEARCH": ["*"]},
)


SUDOERS = "/etc/sudoers"
_WS = "\t\v "
MAX_NEST = 128  # sudoers(5): no more than 128 nested files


def generate(ctx: Context) -> Iterator[Row]:
    rows: list[Row] = []
    _read_file(ctx, SUDOERS, 1, rows)
    yield from rows


def _read_file(ctx: Context, path: str, level: int, rows: list[Row]) -> None:
    if level > MAX_NEST:
        ctx.note(f"include nesting deeper than {MAX_NEST} at {path}")
        return
    ctx.check()
    try:
        with open(ctx.path(path), encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return
    except OSError as e:
        cap = "CAP_DAC_READ_SEARCH" if e.errno in (1, 13) else None
        ctx.missing([], f"{path}: {e.strerror}", cap)
        return
    continued = False
    for raw in lines:
        line = raw.strip(_WS)
        if not line:
            continue
        if continued and rows:
            # The previous line ended in a backslash: drop it and glue this line on, as sudo reads it.
            last = rows[-1]
            key = "rule_details" if last["rule_details"] else "header"
            last[key] = last[key][:-1] + line
            continued = line.endswith("\\")
            continue
        header, _, details = _split(line)
        is_include = header in ("#include", "@include")
        is_includedir = header in ("#includedir", "@includedir")
        if line.startswith("#") and not (is_include or is_includedir):
            continue
        if (is_include or is_includedir) and not details:
            continue  # an include without a target is a comment to sudo
        continued = not (is_include or is_includedir) and line.endswith("\\")
        rows.append({"source": path, "header": header, "rule_details": details})
        if is_include or is_includedir:
            target = details if details.startswith("/") else os.path.join(os.path.dirname(path), details)
            if is_include:
                _read_file(ctx, target, level + 1, rows)
            else:
                _read_dir(ctx, target, level + 1, rows)


def _read_dir(ctx: Context, directory: str, level: int, rows: list[Row]) -> None:
    try:
        names = sorted(os.listdir(ctx.path(directory)))
    except FileNotFoundError:
        return
    except OSError as e:
        cap = "CAP_DAC_READ_SEARCH" if e.errno in (1, 13) else None
        ctx.missing([], f"{directory}: {e.strerror}", cap)
        return
    for name in names:
        # sudoers(5): files in an include directory whose name contains '.' or ends in '~' are skipped.
        if "." in name or name.endswith("~"):
            continue
        path = os.path.join(directory, name)
        if os.path.isfile(ctx.path(path)):
            _read_file(ctx, path, level, rows)


def _split(line: str) -> tuple[str, str, str]:
    for i, ch in enumerate(line):
        if ch in _WS:
            return line[:i], ch, line[i:].strip(_WS)
    return line, "", ""
