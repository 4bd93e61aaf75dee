"""Finds every table by scanning collector/tables: adding a table touches no list."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache

from collector import tables as tables_pkg
from collector.table import Generator, TableSpec


@dataclass(frozen=True)
class Registered:
    spec: TableSpec
    generate: Generator


@cache
def all_tables() -> dict[str, Registered]:
    found: dict[str, Registered] = {}
    for info in sorted(pkgutil.iter_modules(tables_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{tables_pkg.__name__}.{info.name}")
        specs = list(getattr(module, "SPECS", ()))
        if hasattr(module, "SPEC"):
            specs.append(module.SPEC)
        for spec in specs:
            gen = getattr(module, spec.generator, None)
            if gen is None:
                raise RuntimeError(f"{module.__name__}: generator {spec.generator!r} of table {spec.name} missing")
            if spec.name in found:
                raise RuntimeError(f"table {spec.name} defined twice ({module.__name__})")
            found[spec.name] = Registered(spec, gen)
    return dict(sorted(found.items()))
