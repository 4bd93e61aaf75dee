"""Hypothesis profiles for the fuzz suite, and a hard per-case time limit.

CI=true selects the `ci` profile: derandomized (the same cases every run, so a failure reproduces) and sized so
the fuzz tests together run 10,000 cases. Elsewhere the `dev` profile runs a tenth of that with a random seed
and hypothesis' example database, so local runs keep exploring. `QUARRY_FUZZ_PROFILE` overrides the choice.
Every test states its CI share with `cases(n)`; the shares add up to CI_TOTAL (checked by test_budget).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

CI_TOTAL = 10_000
PROFILE = os.environ.get("QUARRY_FUZZ_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
_SCALE = {"ci": 1.0, "dev": 0.1, "long": 10.0}[PROFILE]
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                                        HealthCheck.function_scoped_fixture]}
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, **_COMMON)
settings.register_profile("dev", print_blob=True, **_COMMON)
settings.register_profile("long", **_COMMON)

SHARES: dict[str, int] = {}


def cases(name: str, n: int) -> settings:
    """The settings of one fuzz test: n cases in CI, scaled by the profile elsewhere."""
    SHARES[name] = n
    return settings(settings.get_profile(PROFILE), max_examples=max(10, int(n * _SCALE)))


class Hang(Exception):
    """A single case ran past its time limit: a hang."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail a case that runs longer than `seconds` (SIGALRM: the tests run on the main thread)."""

    def fire(_sig: int, _frame: object) -> None:
        raise Hang(f"case still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def fake_host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fixed host for the engine: every table fixture tree merged into one root (reproducible rows)."""
    root = tmp_path_factory.mktemp("fake_host")
    for tree in sorted((Path(__file__).parents[1] / "tables" / "fixtures").iterdir()):
        if tree.is_dir():
            shutil.copytree(tree, root, dirs_exist_ok=True, symlinks=True)
    return root
