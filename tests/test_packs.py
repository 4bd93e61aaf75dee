"""Acceptance: every Linux-applicable query of osquery's own packs runs on Quarry, unchanged."""

from __future__ import annotations

import json
import os
import re

import pytest

from collector import OSQUERY_COMPAT_VERSION
from collector.config import check_platform, load_file
from collector.config.selectors import version_at_least
from tests.conftest import shared_path

_TABLES = re.compile(r"\b(?:from|join)\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def linux_queries() -> list[tuple[str, str]]:
    """(name, sql) of the pack queries osquery would run on Linux (osquery.md §8 method)."""
    linux_tables = {t["name"] for t in json.loads(shared_path("osquery", "tables.json").read_text())["tables"]
                    if "linux" in t["platforms"]}
    out = []
    for pack_file in sorted(shared_path("osquery", "packs").glob("*.conf")):
        pack = load_file(pack_file)
        if not check_platform(pack.get("platform"), "linux"):
            continue
        if not version_at_least(pack.get("version"), OSQUERY_COMPAT_VERSION):
            continue
        for name, q in pack["queries"].items():
            if not check_platform(q.get("platform"), "linux"):
                continue
            if not all(t.lower() in linux_tables for t in _TABLES.findall(q["query"])):
                continue
            out.append((f"pack_{pack_file.stem}_{name}", q["query"]))
    return out


def test_linux_applicable_count():
    assert len(linux_queries()) == 112


@pytest.mark.skipif(os.geteuid() != 0, reason="the packs are meant to run as root")
def test_every_linux_pack_query_runs(engine, capsys):
    failures = []
    rows = 0
    queries = linux_queries()
    for name, sql in queries:
        try:
            rows += len(engine.query(sql, timeout=120).rows)
        except Exception as e:  # noqa: BLE001 - collect every failure, not just the first
            failures.append(f"{name}: {type(e).__name__}: {e}")
    with capsys.disabled():
        print(f"\npacks: {len(queries) - len(failures)}/{len(queries)} Linux-applicable queries ran, {rows} rows")
    assert not failures, "\n".join(failures)
