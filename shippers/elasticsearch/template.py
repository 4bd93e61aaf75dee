"""The composable index template for `logs-osquery.*-*` data streams, derived from schemas/ecs.

    build_template() -> dict         the template body, generated from schemas/ecs/mapping.json targets plus the
                                      envelope every Quarry ECS document carries (collector/ecs.py)
    load_template(flavor) -> dict    schemas/elasticsearch/index_template.json, adapted for OpenSearch

The JSON file is generated (`python -m shippers.elasticsearch.template > schemas/elasticsearch/index_template.json`)
and a test checks that it is current, so the mapping file stays the single source of truth.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from collector.ecs_mapping import load_mapping

TEMPLATE_FILE = Path(__file__).resolve().parents[2] / "schemas" / "elasticsearch" / "index_template.json"

# converter (schemas/ecs/mapping.json "as") -> Elasticsearch field type
CONVERTER_TYPES = {
    "keyword": "keyword", "keyword_list": "keyword", "long": "long", "port": "long", "kib": "long",
    "date": "date", "ip": "ip", "ip_specified": "ip", "ip_list": "ip", "mac": "keyword", "mac_list": "keyword",
    "boolean": "boolean", "iana": "keyword", "transport": "keyword", "family": "keyword",
    "file_type": "keyword", "basename": "keyword", "dirname": "keyword",
}

# Fields collector/ecs.py writes on every document (the envelope), with their ECS types.
ENVELOPE: dict[str, str] = {
    "@timestamp": "date", "ecs.version": "keyword", "message": "text", "tags": "keyword",
    "event.kind": "keyword", "event.category": "keyword", "event.type": "keyword", "event.action": "keyword",
    "event.module": "keyword", "event.provider": "keyword", "event.dataset": "keyword", "event.created": "date",
    "event.reason": "keyword", "event.id": "keyword", "event.ingested": "date",
    "host.name": "keyword", "host.hostname": "keyword", "host.id": "keyword", "host.architecture": "keyword",
    "host.ip": "ip", "host.mac": "keyword", "host.os.type": "keyword", "host.os.name": "keyword",
    "host.os.version": "keyword", "host.os.platform": "keyword", "host.os.family": "keyword",
    "host.os.kernel": "keyword", "host.os.full": "keyword",
    "agent.type": "keyword", "agent.name": "keyword", "agent.version": "keyword", "agent.id": "keyword",
    "agent.ephemeral_id": "keyword",
    "osquery.query.name": "keyword", "osquery.pack": "keyword", "osquery.epoch": "long", "osquery.counter": "long",
    "related.ip": "ip", "related.user": "keyword", "related.hash": "keyword", "related.hosts": "keyword",
    # logs@mappings uses constant_keyword; that type is an x-pack plugin (absent from OpenSearch and from
    # minimal Elasticsearch builds), so plain keyword keeps one template valid everywhere
    "data_stream.type": "keyword", "data_stream.dataset": "keyword", "data_stream.namespace": "keyword",
}
PRIORITY = 200  # > 100: wins over Elasticsearch's managed logs@template (pattern logs-*-*)
# the operator's hook (Elastic's @custom convention): settings such as the ILM policy go there
# (deploy/elasticsearch/ installs one); optional, so the template installs without it
CUSTOM_COMPONENT = "logs-osquery@custom"


def _fields() -> dict[str, str]:
    out = dict(ENVELOPE)
    _, plans = load_mapping()
    for plan in plans.values():
        for targets in plan.columns.values():
            for t in targets:
                es_type = CONVERTER_TYPES.get(t.converter, "keyword")
                # first writer wins; ECS gives a field one type, so a clash would be a mapping-file bug
                out.setdefault(t.field, es_type)
        for path, _value in plan.constants:
            out.setdefault(".".join(path), "keyword")
        if plan.entity_id is not None:
            out.setdefault(".".join(plan.entity_id[0]), "keyword")
    return out


def _put(props: dict[str, Any], dotted: str, es_type: str) -> None:
    parts = dotted.split(".") if dotted != "@timestamp" else ["@timestamp"]
    for p in parts[:-1]:
        node = props.setdefault(p, {"properties": {}})
        if "properties" not in node:  # a leaf already sits here (x and x.y): keep the leaf, skip the child
            return
        props = node["properties"]
    leaf: dict[str, Any] = {"type": es_type}
    if es_type == "keyword":
        leaf["ignore_above"] = 1024
    props.setdefault(parts[-1], leaf)


def build_template() -> dict[str, Any]:
    props: dict[str, Any] = {}
    fields = _fields()
    # parents before children so an object path is never shadowed by a leaf created later
    for name in sorted(fields, key=lambda f: (f.count("."), f)):
        _put(props, name, fields[name])
    osq = props.setdefault("osquery", {"properties": {}})
    osq["type"] = "object"
    osq["dynamic"] = True  # vendor columns osquery.<table>.<column>: typed by the rules below
    labels = props.setdefault("labels", {"type": "object"})
    labels["dynamic"] = True
    return {
        "index_patterns": ["logs-osquery.*-*"],
        "priority": PRIORITY,
        "data_stream": {},
        "composed_of": [CUSTOM_COMPONENT],
        "ignore_missing_component_templates": [CUSTOM_COMPONENT],
        "_meta": {"managed_by": "quarry", "description": "Quarry osquery results (ECS 9.4) - generated from "
                                                          "schemas/ecs/mapping.json by shippers/elasticsearch/template.py"},
        "template": {
            "settings": {"index": {"mapping": {"total_fields": {"limit": 5000}}}},
            "mappings": {
                "date_detection": False,
                "numeric_detection": False,
                "dynamic_templates": [
                    {"strings_as_keyword": {"match_mapping_type": "string",
                                            "mapping": {"type": "keyword", "ignore_above": 1024}}},
                ],
                "properties": props,
            },
        },
    }


def load_template(flavor: str = "elasticsearch", path: Path | None = None) -> dict[str, Any]:
    """The template body for one product (the same mappings; OpenSearch 2.x gets no `_meta`)."""
    body: dict[str, Any] = json.loads((path or TEMPLATE_FILE).read_text())
    if flavor == "opensearch":
        # OpenSearch 2.x knows neither `_meta` nor ignore_missing_component_templates (ISM, not a component
        # template, carries its lifecycle)
        for key in ("_meta", "composed_of", "ignore_missing_component_templates"):
            body.pop(key, None)
    return body


if __name__ == "__main__":
    print(json.dumps(build_template(), indent=1, sort_keys=True))
