from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.servers.plugin"]

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("QUARRY_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """A file of ../shared, or a skip (a failure in CI) saying it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{p} is absent: CI must run beside a copy of shared/")
        pytest.skip(f"{p} is absent (set QUARRY_SHARED to the shared/ folder)")
    return p


@pytest.fixture
def engine_at():
    """engine_at(root) -> an Engine whose generators read the fixture tree `root` as the host."""
    from collector.engine import Engine

    def make(root: os.PathLike[str] | str, **kw):
        return Engine(root=str(root), **kw)

    return make


@pytest.fixture(scope="session")
def engine():
    from collector.engine import Engine

    return Engine()


@pytest.fixture
def fixtures() -> Path:
    return REPO / "tests" / "tables" / "fixtures"
