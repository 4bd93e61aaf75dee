"""The tables tests fail on a ResourceWarning: a table that leaves a file, socket or directory handle to the
garbage collector leaks descriptors in the daemon, which runs the same queries for weeks.

The warning is raised where the handle is freed, inside __del__, so it cannot propagate; pytest reports it
as a PytestUnraisableExceptionWarning, which is an error here too. A handle caught in a reference cycle is
freed when the cycle collector next runs, possibly during a later test: run with `-X tracemalloc=5` to see
where it was opened. (A gc.collect() after every test would pin it down but costs ~0.3 s a test.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A conftest hook sees every collected item, so the marks are limited to this folder by path.
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.filterwarnings("error::ResourceWarning"))
            item.add_marker(pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"))
