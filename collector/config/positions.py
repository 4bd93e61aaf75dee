"""Where each JSON key of a config file is, so field-level diagnostics name file:line:column.

    doc = read_document("/etc/quarry/quarry.conf")
    doc.value["schedule"]["q1"]["interval"]
    doc.place("schedule", "q1", "interval")   -> Place(file, line, column) of the key `"interval"`

A small scanner over the stripped text (strings and structural characters only): an object member's place is
its key, an array element's place is the element. Paths that are not found fall back to their nearest found
ancestor, so a diagnostic always has a place. Duplicate keys keep the first (as `text.first_wins`) and are
listed in `duplicates` for a warning.
"""

from __future__ import annotations

import json
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.config import text as textmod
from collector.model import Place

Key = str | int
KeyPath = tuple[Key, ...]

_TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|[{}\[\]:,]')


@dataclass
class _Frame:
    is_object: bool
    path: KeyPath
    expect_key: bool = True
    key: Key = ""
    index: int = 0


def scan(stripped: str) -> tuple[dict[KeyPath, int], list[tuple[KeyPath, int]]]:
    """({key path: offset in the stripped text}, [(duplicate path, offset)])."""
    found: dict[KeyPath, int] = {}
    dups: list[tuple[KeyPath, int]] = []
    stack: list[_Frame] = []

    def note(path: KeyPath, at: int) -> None:
        if path in found:
            dups.append((path, at))
        else:
            found[path] = at

    for m in _TOKEN.finditer(stripped):
        tok, at = m.group(), m.start()
        top = stack[-1] if stack else None
        if tok in "{[" and len(tok) == 1:
            if top is None:
                path: KeyPath = ()
                found.setdefault((), at)
            elif top.is_object:
                path = (*top.path, top.key)
            else:
                path = (*top.path, top.index)
                note(path, at)
            stack.append(_Frame(tok == "{", path))
        elif tok in "}]" and len(tok) == 1:
            if stack:
                stack.pop()
        elif tok == ":":
            if top is not None:
                top.expect_key = False
        elif tok == ",":
            if top is not None:
                if top.is_object:
                    top.expect_key = True
                else:
                    top.index += 1
        elif top is not None:  # a string
            if top.is_object and top.expect_key:
                try:
                    top.key = json.loads(tok)
                except ValueError:
                    continue
                note((*top.path, top.key), at)
            elif not top.is_object:
                note((*top.path, top.index), at)
    return found, dups


@dataclass
class Document:
    """One parsed config source: its value and the place of every key."""

    file: str
    value: dict[str, Any]
    stripped: str = ""
    lmap: textmod.LineMap = field(default_factory=textmod.LineMap)
    text: str = ""
    _offsets: dict[KeyPath, int] | None = None
    _dups: list[tuple[KeyPath, int]] = field(default_factory=list)
    _line_starts: list[int] = field(default_factory=list)

    def _index(self) -> dict[KeyPath, int]:
        if self._offsets is None:
            self._offsets, self._dups = scan(self.stripped)
            self._line_starts = [0] + [i + 1 for i, ch in enumerate(self.stripped) if ch == "\n"]
        return self._offsets

    def _place_at(self, offset: int) -> Place:
        line = bisect_right(self._line_starts, offset)
        column = offset - self._line_starts[line - 1] + 1
        orig_line, orig_col = self.lmap.original(line, column)
        return Place(self.file, orig_line, orig_col)

    def place(self, *path: Key) -> Place:
        offsets = self._index()
        p: KeyPath = tuple(path)
        while p not in offsets and p:
            p = p[:-1]
        if p not in offsets:
            return Place(self.file)
        return self._place_at(offsets[p])

    def duplicates(self) -> list[tuple[KeyPath, Place, Place]]:
        """(path, place kept, place ignored) for every duplicate key."""
        offsets = self._index()
        return [(p, self._place_at(offsets[p]), self._place_at(at)) for p, at in self._dups]


def parse_document(text: str, file: str) -> Document:
    value, stripped, lmap = textmod.parse(text, file)
    return Document(file, value, stripped, lmap, text)


def read_document(path: str | Path) -> Document:
    """A config or pack file as a Document; ConfigError (with file:line:column) when unreadable or invalid."""
    return parse_document(textmod.read_text(path), str(path))


def path_text(path: KeyPath) -> str:
    """("schedule", "q1", "interval") -> schedule.q1.interval, for messages."""
    return ".".join(f"[{k}]" if isinstance(k, int) else str(k) for k in path)
