"""Loads schemas/ecs/mapping.json into per-table plans that collector/ecs.py applies to every row.

The file is data (its "format" key documents it). Loading checks its shape and names the offending key
(``ConfigError(field="tables.processes.columns.pid")``), so a broken mapping fails at start-up, not per row.
Whether the target fields are real ECS fields is checked by the tests against ecs_flat.yml, which the
daemon does not need at run time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from collector.ecs_convert import CONVERTERS
from collector.errors import ConfigError

MAPPING_PATH = Path(__file__).resolve().parents[1] / "schemas" / "ecs" / "mapping.json"

KINDS = ("state", "event", "metric", "asset")
RELATED_KINDS = ("ip", "hosts", "hosts_split", "user")
VENDOR = "osquery"
# osquery.<name> keys the envelope uses; a table with one of these names would collide with it.
ENVELOPE_KEYS = frozenset({"query", "pack", "epoch", "counter"})

_HASH_LEAVES = ("md5", "sha1", "sha256", "sha384", "sha512")


@dataclass(frozen=True)
class Target:
    column: str
    field: str  # dotted ECS (or osquery.*) name
    path: tuple[str, ...]
    converter: str
    convert: Callable[[Any], Any]
    array: bool
    vendor: bool  # the target is under osquery.*: a rejected value is dropped, not kept raw
    times: str | None = None  # multiply by this column's value (mounts: blocks * blocks_size)
    related: str | None = None  # related.<x> this target feeds: "ip" | "hash" | "user"


@dataclass(frozen=True)
class TypeRule:
    column: str
    values: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class TablePlan:
    name: str
    kind: str = "state"
    category: tuple[str, ...] = ()
    type: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    type_by: tuple[TypeRule, ...] = ()
    snapshot_type_by: tuple[TypeRule, ...] = ()
    timestamp: str | None = None
    constants: tuple[tuple[tuple[str, ...], str], ...] = ()
    entity_id: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    columns: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    related: dict[str, str] = field(default_factory=dict)


class _Loader:
    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.file, field=where)

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(where, "expected a list of non-empty strings")
        return tuple(value)

    def target(self, table: str, column: str, spec: Any, where: str) -> Target:
        if not isinstance(spec, dict) or not isinstance(spec.get("to"), str) or not isinstance(spec.get("as"), str):
            raise self.fail(where, 'expected {"to": <field>, "as": <converter>}')
        unknown = set(spec) - {"to", "as", "times", "note"}
        if unknown:
            raise self.fail(where, f"unknown key(s) {sorted(unknown)}")
        to, conv_name = spec["to"], spec["as"]
        conv = CONVERTERS.get(conv_name)
        if conv is None:
            raise self.fail(where, f"unknown converter {conv_name!r} (known: {', '.join(CONVERTERS)})")
        parts = tuple(to.split("."))
        if not all(parts):
            raise self.fail(where, f"bad field name {to!r}")
        vendor = parts[0] == VENDOR
        if vendor and (len(parts) < 3 or parts[1] != table):
            raise self.fail(where, f"custom fields go under osquery.{table}.<name>, not {to!r}")
        times = spec.get("times")
        if times is not None and not isinstance(times, str):
            raise self.fail(where, "times: expected a column name")
        related = None
        if not vendor:
            if conv.ecs_types == frozenset({"ip"}):
                related = "ip"
            elif parts[-2:-1] == ("hash",) and parts[-1] in _HASH_LEAVES:
                related = "hash"
            elif to in ("user.name", "file.owner") or to.endswith(".user.name"):
                related = "user"
        return Target(column, to, parts, conv_name, conv.fn, conv.array, vendor, times, related)

    def rules(self, value: Any, where: str) -> tuple[TypeRule, ...]:
        if not isinstance(value, list):
            raise self.fail(where, "expected a list of {column, values}")
        out = []
        for i, rule in enumerate(value):
            w = f"{where}[{i}]"
            if not isinstance(rule, dict) or not isinstance(rule.get("column"), str) \
                    or not isinstance(rule.get("values"), dict):
                raise self.fail(w, "expected {column, values}")
            values = {str(k): self.strings(v, f"{w}.values.{k}") for k, v in rule["values"].items()}
            out.append(TypeRule(rule["column"], values))
        return tuple(out)

    def table(self, name: str, spec: Any) -> TablePlan:
        where = f"tables.{name}"
        if not isinstance(spec, dict):
            raise self.fail(where, "expected an object")
        known = {"kind", "category", "type", "added", "removed", "type_by", "snapshot_type_by", "timestamp",
                 "constants", "entity_id", "columns", "related", "note"}
        unknown = set(spec) - known
        if unknown:
            raise self.fail(where, f"unknown key(s) {sorted(unknown)}")
        if name in ENVELOPE_KEYS:
            raise self.fail(where, f"table name collides with the envelope field osquery.{name}")
        kind = spec.get("kind", "state")
        if kind not in KINDS:
            raise self.fail(f"{where}.kind", f"expected one of {KINDS}")
        types = self.strings(spec.get("type", ["info"]), f"{where}.type")
        columns: dict[str, tuple[Target, ...]] = {}
        for column, targets in (spec.get("columns") or {}).items():
            w = f"{where}.columns.{column}"
            items = targets if isinstance(targets, list) else [targets]
            columns[column] = tuple(self.target(name, column, t, f"{w}[{i}]" if isinstance(targets, list) else w)
                                    for i, t in enumerate(items))
        related = spec.get("related") or {}
        for column, kind_ in related.items():
            if kind_ not in RELATED_KINDS:
                raise self.fail(f"{where}.related.{column}", f"expected one of {RELATED_KINDS}")
        constants = []
        for fname, value in (spec.get("constants") or {}).items():
            if not isinstance(value, str):
                raise self.fail(f"{where}.constants.{fname}", "expected a string")
            constants.append((tuple(fname.split(".")), value))
        entity = spec.get("entity_id")
        entity_id = None
        if entity is not None:
            if not isinstance(entity, dict) or not isinstance(entity.get("to"), str):
                raise self.fail(f"{where}.entity_id", "expected {to, columns}")
            entity_id = (tuple(entity["to"].split(".")), self.strings(entity.get("columns"), f"{where}.entity_id"))
        timestamp = spec.get("timestamp")
        if timestamp is not None and not isinstance(timestamp, str):
            raise self.fail(f"{where}.timestamp", "expected a column name")
        return TablePlan(
            name=name, kind=kind,
            category=self.strings(spec.get("category", []), f"{where}.category") if spec.get("category") else (),
            type=types,
            added=self.strings(spec["added"], f"{where}.added") if "added" in spec else types,
            removed=self.strings(spec["removed"], f"{where}.removed") if "removed" in spec else types,
            type_by=self.rules(spec.get("type_by", []), f"{where}.type_by"),
            snapshot_type_by=self.rules(spec.get("snapshot_type_by", []), f"{where}.snapshot_type_by"),
            timestamp=timestamp, constants=tuple(constants), entity_id=entity_id,
            columns=columns, related=dict(related),
        )


def load_mapping(path: str | Path | None = None) -> tuple[str, dict[str, TablePlan]]:
    """(ecs_version, {table: TablePlan}) from the mapping file; ConfigError naming the place when invalid."""
    p = Path(path) if path is not None else MAPPING_PATH
    loader = _Loader(str(p))
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the ECS mapping: {e.strerror or e}", file=str(p)) from e
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ConfigError(f"invalid JSON: {e.msg}", file=str(p), line=e.lineno, column=e.colno) from e
    if not isinstance(data, dict) or not isinstance(data.get("tables"), dict):
        raise loader.fail("tables", "missing: expected an object of tables")
    version = data.get("ecs_version")
    if not isinstance(version, str):
        raise loader.fail("ecs_version", "expected a version string")
    return version, {name: loader.table(name, spec) for name, spec in data["tables"].items()}
