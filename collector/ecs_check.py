"""Validates an ECS document against ecs_flat.yml (ecs.md §6) and knows Elasticsearch's ecs@mappings traps.

    problems = check(document, load_ecs_flat(path))     # [] when valid; each item names field and value

Rules: every flattened key is an ECS field, lies under an ECS object/flattened field (labels.*: string
values, no nesting) or under the vendor namespace osquery.*; multi-fields (*.text) are never keys; values
have the ECS type (keyword -> str, long -> int, date -> ISO 8601 with zone, ip -> address, boolean -> bool);
normalize: array fields are lists and others are not; allowed and expected values are honoured; @timestamp
and ecs.version are present; data_stream.dataset equals event.dataset. osquery.* leaves are free-form, except
that a name an ecs@mappings dynamic template would type (``*.start`` -> date, ``*_ip`` -> ip, ...) must hold
a value of that type (see ``dynamic_type``), because Elasticsearch drops or misreads it otherwise.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from pathlib import Path
from typing import Any

VENDOR_PREFIX = "osquery."
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$")
_MAC = re.compile(r"^[0-9A-F]{2}(-[0-9A-F]{2}){5}(-[0-9A-F]{2}){0,2}$")
_DATE_SUFFIXES = (".timestamp", "_timestamp", ".not_after", ".not_before", ".accessed", ".created", ".installed",
                  ".creation_date", ".ctime", ".mtime", ".ingested", ".start", ".end")
_KEYWORD_TEXT_SUFFIXES = (".title", ".executable", ".name", ".working_directory", ".full_name", "file.path",
                          "file.target_path", "os.full")
_LOWERCASE = frozenset({"network.transport", "network.type", "network.protocol", "host.os.type"})
_DATASET_BAD = re.compile(r'[\\/*?"<>|,# -]|[A-Z]')


def load_ecs_flat(path: str | Path) -> dict[str, dict[str, Any]]:
    """ecs_flat.yml as {flat_name: spec} (PyYAML; used by tests and tools, not by the daemon)."""
    import yaml  # a test/tool dependency only

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: 10x faster on this 1.2 MB file
    with open(path, encoding="utf-8") as f:
        data: dict[str, dict[str, Any]] = yaml.load(f, Loader=loader)  # noqa: S506 - a safe loader
    return data


def dynamic_type(path: str) -> str | None:
    """The type Elasticsearch's ecs@mappings dynamic templates give a new field by its name alone, when
    that type constrains the value (date, ip for strings, float, geo_point); None for keyword/long/text."""
    if path == "ip" or path.endswith((".ip", "_ip")):
        return "ip"
    if path.endswith(("command_line", "stack_trace", "url.full", "url.original", "url.path", ".message_id",
                      *_KEYWORD_TEXT_SUFFIXES)):
        return None  # wildcard/keyword templates come first in ecs@mappings
    if path in ("created", "ingested") or path.endswith(_DATE_SUFFIXES):
        return "date"
    if (".score." in path or "_score" in path) and not path.endswith(".version"):
        return "float"
    if path == "location" or path.endswith(".location"):
        return "geo_point"
    return None


def _flatten(doc: Any, prefix: str, ecs: dict[str, dict[str, Any]], out: list[tuple[str, Any]],
             problems: list[str]) -> None:
    for key, value in doc.items():
        if not isinstance(key, str) or not key:
            problems.append(f"{prefix}{key!r}: keys must be non-empty strings")
            continue
        if "." in key:
            problems.append(f"{prefix}{key}: dotted key: emit nested objects (ecs.md §1.7)")
            continue
        path = prefix + key
        spec = ecs.get(path)
        if isinstance(value, dict) and (spec is None or spec["type"] not in ("object", "flattened", "nested",
                                                                              "geo_point")):
            if spec is not None:
                multi = {mf.get("name") for mf in spec.get("multi_fields", ())}
                for sub in value:
                    if sub in multi:
                        problems.append(f"{path}.{sub}: is a multi-field of {path} (index side only): never emit it")
                    else:
                        problems.append(f"{path}: is a {spec['type']} field, not an object: {value!r}")
                continue
            _flatten(value, path + ".", ecs, out, problems)
        else:
            out.append((path, value))


def _type_ok(ecs_type: str, v: Any) -> bool:
    if ecs_type in ("keyword", "wildcard", "match_only_text", "constant_keyword", "text"):
        return isinstance(v, str)
    if ecs_type in ("long", "integer", "short", "byte", "unsigned_long"):
        return isinstance(v, int) and not isinstance(v, bool)
    if ecs_type in ("float", "double", "scaled_float", "half_float"):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if ecs_type == "boolean":
        return isinstance(v, bool)
    if ecs_type == "date":
        return _is_date(v)
    if ecs_type == "ip":
        return _is_ip(v)
    if ecs_type == "geo_point":
        return isinstance(v, (dict, str, list))
    if ecs_type in ("object", "flattened", "nested"):
        return isinstance(v, (dict, list))
    return False


def _is_date(v: Any) -> bool:
    if not isinstance(v, str) or not _ISO.match(v):
        return False
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_ip(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def _object_parent(path: str, ecs: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]] | None:
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:i])
        spec = ecs.get(parent)
        if spec is not None and spec["type"] in ("object", "flattened", "nested"):
            return parent, spec
    return None


def _check_vendor(path: str, value: Any, problems: list[str]) -> None:
    kind = dynamic_type(path)
    if kind is None:
        return
    values = value if isinstance(value, list) else [value]
    for v in values:
        if kind == "date" and not _is_date(v):
            problems.append(f"{path}: ecs@mappings maps this name as a date, value {v!r} is not ISO 8601")
        elif kind == "ip" and isinstance(v, str) and not _is_ip(v):
            problems.append(f"{path}: ecs@mappings maps this name as an ip, value {v!r} is not an address")
        elif kind == "float" and not isinstance(v, (int, float)):
            problems.append(f"{path}: ecs@mappings maps this name as a float, value {v!r} is not a number")
        elif kind == "geo_point":
            problems.append(f"{path}: ecs@mappings maps this name as a geo_point: {v!r}")


def check(document: dict[str, Any], ecs_flat: dict[str, dict[str, Any]], *,
          warnings: list[str] | None = None) -> list[str]:
    """Problems of one document, in document order; [] when valid. Soft findings (an event.type that none
    of the event.category values expects) go to `warnings` when given."""
    problems: list[str] = []
    flat: list[tuple[str, Any]] = []
    _flatten(document, "", ecs_flat, flat, problems)
    seen = {p for p, _ in flat}
    for req in ("@timestamp", "ecs.version"):
        if req not in seen:
            problems.append(f"{req}: required field missing")
    for path, value in flat:
        if path.startswith(VENDOR_PREFIX):
            _check_vendor(path, value, problems)
            continue
        spec = ecs_flat.get(path)
        if spec is None:
            problems.extend(_unknown(path, value, ecs_flat))
            continue
        problems.extend(_check_field(path, value, spec))
    values = dict(flat)
    if "data_stream.dataset" in values and values.get("data_stream.dataset") != values.get("event.dataset"):
        problems.append(f"event.dataset: {values.get('event.dataset')!r} differs from data_stream.dataset "
                        f"{values['data_stream.dataset']!r}")
    for key in ("data_stream.dataset", "data_stream.namespace"):
        v = values.get(key)
        if isinstance(v, str) and (not v or len(v) > 100 or _DATASET_BAD.search(v)):
            problems.append(f"{key}: {v!r} is not a valid data stream name part")
    if warnings is not None:
        warnings.extend(_expected_types(values.get("event.category"), values.get("event.type"), ecs_flat))
    return problems


def _unknown(path: str, value: Any, ecs: dict[str, dict[str, Any]]) -> list[str]:
    parent = _object_parent(path, ecs)
    if parent is not None:
        name, spec = parent
        if name == "labels" or spec.get("object_type") == "keyword":
            if not isinstance(value, str):
                return [f"{path}: {name} values must be strings, got {value!r}"]
            if path.count(".") != name.count(".") + 1:
                return [f"{path}: {name} must not be nested"]
        return []
    base, _, leaf = path.rpartition(".")
    for mf in (ecs.get(base) or {}).get("multi_fields", ()):
        if mf.get("name") == leaf:
            return [f"{path}: is a multi-field of {base} (index side only): never emit it"]
    return [f"{path}: not an ECS 9.4 field (value {value!r}); custom data goes under osquery.*"]


def _check_field(path: str, value: Any, spec: dict[str, Any]) -> list[str]:
    problems = []
    if spec["type"] in ("object", "flattened") and isinstance(value, dict):
        if spec.get("object_type") == "keyword":  # labels: flat string values (ECS: "no nested objects")
            for k, v in value.items():
                if isinstance(v, dict):
                    problems.append(f"{path}.{k}: {path} must not be nested")
                elif not isinstance(v, str):
                    problems.append(f"{path}.{k}: {path} values must be strings, got {v!r}")
        return problems
    is_array = "array" in (spec.get("normalize") or ())
    if isinstance(value, list):
        if not is_array:
            return [f"{path}: a single {spec['type']} is expected, got a list {value!r}"]
        items = value
    else:
        if is_array:
            return [f"{path}: normalize: array field must be a list, got {value!r}"]
        items = [value]
    for v in items:
        if not _type_ok(spec["type"], v):
            problems.append(f"{path}: {v!r} is not a valid {spec['type']}")
            continue
        allowed = spec.get("allowed_values")
        if allowed and v not in {a["name"] for a in allowed}:
            problems.append(f"{path}: {v!r} is not an allowed value")
        expected = spec.get("expected_values")
        if expected and v not in expected:
            problems.append(f"{path}: {v!r} is not an expected value ({', '.join(expected)})")
        if path in _LOWERCASE and isinstance(v, str) and v != v.lower():
            problems.append(f"{path}: {v!r} must be lower case")
        if path.endswith(".mac") and isinstance(v, str) and not _MAC.match(v):
            problems.append(f"{path}: {v!r} is not in RFC 7042 form (AA-BB-CC-DD-EE-FF)")
    return problems


def _expected_types(categories: Any, types: Any, ecs: dict[str, dict[str, Any]]) -> list[str]:
    if not isinstance(categories, list) or not isinstance(types, list):
        return []
    expected: set[str] = set()
    for a in ecs["event.category"].get("allowed_values", ()):
        if a["name"] in categories:
            expected.update(a.get("expected_event_types") or ())
    return [f"event.type: {t!r} is not expected for event.category {categories}" for t in types
            if t not in expected]
