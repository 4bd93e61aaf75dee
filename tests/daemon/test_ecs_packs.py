"""Acceptance: every row of every Linux-applicable osquery pack query, and of every table, is valid ECS."""

from __future__ import annotations

import json
import os

import pytest

from collector.ecs import AgentFacts, EcsMapper, host_facts
from collector.ecs_check import check, load_ecs_flat
from collector.registry import all_tables
from tests.conftest import REPO, shared_path
from tests.test_packs import linux_queries

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="the packs are meant to run as root")]

# Tables whose generator needs a constraint: one real query each.
CONSTRAINED = {
    "file": "SELECT * FROM file WHERE path LIKE '/etc/%'",
    "hash": "SELECT * FROM hash WHERE directory = '/usr/bin' LIMIT 50",
    "magic": "SELECT * FROM magic WHERE path = '/bin/sh'",
    "curl": None,  # network access: not in a unit test
    "curl_certificate": None,
    "authorized_keys": "SELECT * FROM users CROSS JOIN authorized_keys USING (uid)",
    "shell_history": "SELECT * FROM users CROSS JOIN shell_history USING (uid)",
    "known_hosts": "SELECT * FROM users CROSS JOIN known_hosts USING (uid)",
    "user_ssh_keys": "SELECT * FROM users CROSS JOIN user_ssh_keys USING (uid)",
    "ssh_configs": "SELECT * FROM users CROSS JOIN ssh_configs USING (uid)",
    "chrome_extensions": "SELECT * FROM users CROSS JOIN chrome_extensions USING (uid)",
    "firefox_addons": "SELECT * FROM users CROSS JOIN firefox_addons USING (uid)",
    "python_packages": "SELECT * FROM python_packages",
}


MAX_ROWS = 2000  # per table in the all-tables test (deb_package_files alone has ~100k rows)


@pytest.fixture(scope="module")
def setup(engine):
    jsonschema = pytest.importorskip("jsonschema")
    ecs = load_ecs_flat(shared_path("ecs", "ecs_flat.yml"))
    schema = json.loads((REPO / "schemas" / "ecs" / "document.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    return ecs, EcsMapper(), host_facts(engine), AgentFacts(id="test-instance", name="test"), validator


def _validate(setup, name: str, sql: str, result, max_rows: int | None = None) -> int:
    ecs, mapper, host, agent, validator = setup
    table, joined = mapper.tables(sql)
    rows = result.dicts()
    if max_rows is not None and len(rows) > max_rows:
        rows = rows[:: len(rows) // max_rows + 1]
    for i, row in enumerate(rows):
        for action in ("snapshot", "added", "removed"):
            d = mapper.document(row, table=table, joined=joined, action=action, query_name=name, unix_time=1779184800.5,
                                event_id=f"{name}-{i}", reason="first run", host=host, agent=agent, pack="p",
                                epoch=0, counter=1, decorations={"host_uuid": host.id, "username": "root"})
            problems = check(d, ecs)
            if problems:
                pytest.fail(f"{name} ({action}, row {i}): {problems[0]}\nrow: {row!r}")
            if i > 0 and action != "snapshot":
                continue  # the JSON schema (slow to apply) sees each query's first row and every snapshot doc
            error = next(iter(validator.iter_errors(d)), None)
            if error is not None:
                pytest.fail(f"{name} ({action}, row {i}): document.schema.json: {error.json_path}: {error.message}")
    return len(rows)


def test_every_pack_row_is_a_valid_ecs_document(engine, setup, capsys):
    rows = failed = 0
    for name, sql in linux_queries():
        try:
            result = engine.query(sql, timeout=120)
        except Exception:  # noqa: BLE001 - tests/test_packs.py reports queries that do not run
            failed += 1
            continue
        rows += _validate(setup, name, sql, result)
    with capsys.disabled():
        print(f"\necs: {rows} pack rows valid as ECS 9.4 (x3 actions); {failed} queries did not run")
    assert rows > 0


def test_every_table_row_is_a_valid_ecs_document(engine, setup, capsys):
    total = 0
    for table, reg in all_tables().items():
        sql = CONSTRAINED.get(table, f"SELECT * FROM {table}")
        if sql is None or (table not in CONSTRAINED and reg.spec.required_columns):
            continue
        total += _validate(setup, f"all_{table}", sql, engine.query(sql, timeout=120), MAX_ROWS)
    with capsys.disabled():
        print(f"\necs: {total} table rows valid as ECS 9.4")
    assert total > 0
