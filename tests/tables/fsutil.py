"""Engine factory for the filesystem table tests (a fixture root and custom scan limits)."""

from __future__ import annotations

from collector.engine import Engine
from collector.table import Limits


def make_engine(root: str = "/", limits: Limits | None = None) -> Engine:
    return Engine(root=root, limits=limits)


def text_lines(path: str) -> list[str]:
    """The lines of a text file, closed before they are returned (tests/tables fail on a ResourceWarning)."""
    with open(path, errors="replace") as f:
        return f.read().splitlines()
