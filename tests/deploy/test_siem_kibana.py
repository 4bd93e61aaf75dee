"""deploy/kibana/quarry.ndjson: Kibana saved objects (data view, saved searches, Lens charts, dashboard).

No Kibana runs here: the file is loaded with a JSON parser, its references are resolved inside the file, the
dashboard layout is checked, and every field a panel uses must be one Quarry emits for the panel's dataset
(the targets of schemas/ecs/mapping.json for that table, the envelope of every document, or a field of
schemas/ecs/document.schema.json) and a real ECS 9.4 field (shared/ecs/ecs_flat.yml).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from collector.ecs_check import load_ecs_flat
from collector.ecs_mapping import load_mapping
from collector.registry import all_tables
from shippers.elasticsearch.template import ENVELOPE, load_template
from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[2]
NDJSON = ROOT / "deploy" / "kibana" / "quarry.ndjson"


@lru_cache(maxsize=None)
def objects() -> tuple[dict[str, Any], ...]:
    lines = NDJSON.read_text().splitlines()
    parsed = [json.loads(line) for line in lines]
    summary = parsed.pop()
    assert summary == {"exportedCount": len(parsed), "missingRefCount": 0, "missingReferences": []}
    return tuple(parsed)


def by_type(t: str) -> list[dict[str, Any]]:
    return [o for o in objects() if o["type"] == t]


@lru_cache(maxsize=None)
def ecs_flat() -> dict[str, Any]:
    return load_ecs_flat(SHARED / "ecs" / "ecs_flat.yml")


def _schema_fields(node: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, sub in node.get("properties", {}).items():
        path = f"{prefix}{name}"
        out.add(path)
        if isinstance(sub, dict):
            out |= _schema_fields(sub, f"{path}.")
    return out


@lru_cache(maxsize=None)
def common_fields() -> frozenset[str]:
    """Fields every Quarry ECS document may carry, whatever its table."""
    schema = json.loads((ROOT / "schemas" / "ecs" / "document.schema.json").read_text())
    return frozenset(set(ENVELOPE) | _schema_fields(schema))


@lru_cache(maxsize=None)
def table_fields(table: str) -> frozenset[str]:
    _, plans = load_mapping()
    plan = plans[table]
    out = {t.field for targets in plan.columns.values() for t in targets if not t.vendor}
    out |= {".".join(path) for path, _ in plan.constants}
    return frozenset(out)


def test_objects_load_and_references_resolve() -> None:
    objs = objects()
    ids = {(o["type"], o["id"]) for o in objs}
    assert len(ids) == len(objs)
    assert sorted(o["type"] for o in objs) == ["dashboard", "index-pattern"] + ["lens"] * 2 + ["search"] * 6
    for o in objs:
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in ids, f"{o['id']}: reference {ref} is not in the file"
    (dv,) = by_type("index-pattern")
    assert dv["attributes"]["title"] == "logs-osquery.*" and dv["attributes"]["timeFieldName"] == "@timestamp"
    # the data view covers the streams of the index template (logs-osquery.<dataset>-<namespace>)
    (pattern,) = load_template()["index_patterns"]
    assert pattern.startswith(dv["attributes"]["title"].rstrip("*"))


def test_dashboard_panels() -> None:
    (dash,) = by_type("dashboard")
    panels = json.loads(dash["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in dash["references"]}
    assert len(panels) == len(refs) == 8
    cells: set[tuple[int, int]] = set()
    for p in panels:
        ref = refs[f"{p['panelIndex']}:{p['panelRefName']}"]
        assert ref["type"] == p["type"]
        g = p["gridData"]
        assert g["i"] == p["panelIndex"] and 0 <= g["x"] and g["x"] + g["w"] <= 48
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"panel {p['panelIndex']} overlaps another"
        cells |= mine
    titles = " ".join(o["attributes"]["title"] for o in by_type("search") + by_type("lens"))
    for topic in ("processes", "listening ports", "logins", "packages", "file changes", "agents", "per host"):
        assert topic in titles, topic


def _search_fields(o: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(fields a saved search shows or queries, datasets it selects)."""
    src = json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert src["query"]["language"] == "kuery" and src["filter"] == []
    kql = src["query"]["query"]
    fields = set(o["attributes"]["columns"]) | {s[0] for s in o["attributes"]["sort"]}
    fields |= set(re.findall(r"([A-Za-z@][\w.]*)\s*:", kql))
    datasets = set(re.findall(r'"osquery\.([a-z_]+)"', kql))
    return fields, datasets


def _lens_fields(o: dict[str, Any]) -> set[str]:
    layers = o["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]
    out = set()
    for layer in layers.values():
        assert set(layer["columnOrder"]) == set(layer["columns"])
        for col in layer["columns"].values():
            if col["operationType"] != "count":
                out.add(col["sourceField"])
    return out


@pytest.mark.parametrize("kind", ["search", "lens"])
def test_every_field_is_one_quarry_emits(kind: str) -> None:
    tables = all_tables()
    flat = ecs_flat()
    for o in by_type(kind):
        if kind == "search":
            fields, datasets = _search_fields(o)
        else:
            fields, datasets = _lens_fields(o), set()
        allowed = set(common_fields())
        for ds in datasets:
            assert ds in tables, f"{o['id']}: no table {ds}"
            allowed |= table_fields(ds)
        for f in fields:
            assert f in allowed, f"{o['id']}: Quarry does not emit {f} for {sorted(datasets) or 'every table'}"
            assert f in flat, f"{o['id']}: {f} is not an ECS 9.4 field"


def test_panel_datasets() -> None:
    want = {"quarry-processes": {"processes"}, "quarry-listening-ports": {"listening_ports"},
            "quarry-logins": {"last"}, "quarry-packages": {"deb_packages", "rpm_packages"},
            "quarry-file-changes": {"file_events"}, "quarry-health": set()}
    got = {o["id"]: _search_fields(o)[1] for o in by_type("search")}
    assert got == want
    # a search over two tables shows only fields both of them emit
    (pkg,) = [o for o in by_type("search") if o["id"] == "quarry-packages"]
    for f in pkg["attributes"]["columns"]:
        assert f in common_fields() or (f in table_fields("deb_packages") and f in table_fields("rpm_packages")), f
