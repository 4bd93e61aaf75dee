"""Every table closes what it opens: on this host, on its fixture tree and on an empty root (the error paths),
read whole and abandoned after one row (LIMIT 1 closes the generator mid-scan).

A Python file or socket left to the garbage collector raises a ResourceWarning, which conftest.py makes an
error; a raw descriptor from os.open raises nothing, so the process's descriptor count is compared too.
"""

from __future__ import annotations

import os

import pytest

from collector.engine import Engine
from collector.errors import QueryError, TableError
from collector.registry import all_tables

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")

# Tables whose generator needs a column value (curl's need a server), with values that read real files.
CONSTRAINED = {
    "file": ["path IN ('/etc/passwd', '/proc/self/status')", "directory = '/etc'"],
    "hash": ["path IN ('/etc/passwd', '/proc/self/status')", "directory = '/etc'"],
    "magic": ["path IN ('/etc/passwd', '/bin/sh')"],
}
# Full scans that take seconds on a real host: their LIMIT 1 runs everywhere, their full scans on the
# fixture and empty roots.
LIVE_SCAN_SKIPPED = {"suid_bin", "deb_package_files"}

TABLES = sorted(n for n, r in all_tables().items() if not r.spec.required_columns or n in CONSTRAINED)


def _descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def _run(engine: Engine, sql: str) -> None:
    try:
        engine.query(sql)
    except (QueryError, TableError):
        pass  # a missing tree or a denied read may fail the query; only the handles matter here


def _statements(name: str, root: str) -> list[str]:
    out = []
    for where in [f" WHERE {w}" for w in CONSTRAINED[name]] if name in CONSTRAINED else [""]:
        out.append(f"SELECT * FROM {name}{where} LIMIT 1")
        if root != "/" or name not in LIVE_SCAN_SKIPPED:
            out.append(f"SELECT * FROM {name}{where}")
    return out


@pytest.mark.parametrize("name", TABLES)
def test_table_closes_its_handles(name, tmp_path):
    roots = ["/", str(tmp_path)]
    for fixture in (name, "system"):
        if os.path.isdir(os.path.join(FIXTURES, fixture)):
            roots.append(os.path.join(FIXTURES, fixture))
    for root in roots:
        engine = Engine(root=root)
        statements = _statements(name, root)
        for sql in statements:  # a first pass: caches and lazily loaded libraries settle
            _run(engine, sql)
        before = _descriptors()
        for sql in statements:
            _run(engine, sql)
        assert _descriptors() == before, f"{name} under {root}: descriptors left open"
