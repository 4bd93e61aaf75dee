"""Shared by test_capabilities, test_systemd and test_kubernetes (not a conftest: H2 may add one)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"


def load_capmatrix() -> ModuleType:
    """scripts/ is not a package: load scripts/capmatrix.py by path."""
    name = "quarry_capmatrix"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / "capmatrix.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def example_caps() -> list[str]:
    """The capabilities config/quarry.conf and its packs need, per the matrix."""
    cm = load_capmatrix()
    return cm.caps_for_tables(cm.config_tables(REPO / "config" / "quarry.conf"))
