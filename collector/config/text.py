"""osquery's config text dialect: JSON plus `#`/`//` comment lines and backslash-newline continuations.

osquery strips these before parsing (config.cpp stripConfigComments); the shipped packs depend on it.
Unlike osquery we keep line numbers: a dropped comment line becomes an empty line and a continued line is
followed by as many empty lines as it swallowed, so a parse error points at the user's real line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collector.errors import ConfigError

MAX_SIZE = 4 * 1024 * 1024  # osquery kMaxConfigSize
MAX_DEPTH = 32  # osquery kMaxConfigDepth


def strip(text: str) -> str:
    out: list[str] = []
    pending = ""
    swallowed = 0
    for raw in text.split("\n"):
        line = raw.strip()
        if line.startswith(("#", "//")) and not pending:
            out.append("")
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            swallowed += 1
            continue
        out.append(pending + line)
        out.extend([""] * swallowed)
        pending, swallowed = "", 0
    if pending:
        out.append(pending)
    return "\n".join(out)


def _depth(value: Any, level: int = 1) -> int:
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level - 1


def loads(text: str, source: str = "<config>") -> dict[str, Any]:
    stripped = strip(text)
    if len(stripped.encode()) > MAX_SIZE:
        raise ConfigError(f"config is larger than {MAX_SIZE} bytes after stripping comments", file=source)
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as e:
        raise ConfigError(e.msg, file=source, line=e.lineno, column=e.colno) from None
    except RecursionError:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=source) from None
    if not isinstance(value, dict):
        raise ConfigError("the top level must be a JSON object", file=source, line=1, column=1)
    if _depth(value) > MAX_DEPTH:
        raise ConfigError(f"nested deeper than {MAX_DEPTH} levels", file=source)
    return value


def load_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError("config file does not exist", file=str(p)) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=str(p)) from None
    if len(data) > MAX_SIZE * 2:
        raise ConfigError(f"config file is larger than {MAX_SIZE} bytes", file=str(p))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text (byte {e.start})", file=str(p)) from None
    return loads(text, str(p))
