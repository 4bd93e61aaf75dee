"""One config source's keys read into model types, with a diagnostic (and its place) for every defect.

The rules are osquery's (`osquery/config/packs.cpp`, `plugins/config/parsers/*`): interval as a number or a
numeric string, 0/invalid or more than a week skips the query, booleans by `JSON::valueToBool`, reserved query
names refused, informational keys (`description`, `value`, `oncall`) accepted. Wrong types are warnings and
the value falls back to its default; only what cannot be used at all (no SQL, reserved name) drops the entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from collector.config.positions import Document, Key, KeyPath, path_text
from collector.model import Decorators, Diagnostic, Pack, Place, ScheduledQuery

MAX_INTERVAL = 604800  # osquery kMaxQueryInterval: one week
RESERVED_PREFIXES = ("query.", "cache.", "config_views.")  # osquery kReservedDbPrefixes
RESERVED_SUFFIXES = ("epoch", "counter")

QUERY_KEYS = frozenset({"query", "interval", "snapshot", "removed", "platform", "version", "shard",
                        "denylist", "description", "startup_priority", "run_at_start", "shippers",
                        "route", "skip_empty"})
ROUTE_KEYS = frozenset({"topic", "index", "file", "sourcetype"})
QUERY_INFO_KEYS = frozenset({"value", "oncall"})  # informational in osquery's own packs
PACK_KEYS = frozenset({"queries", "discovery", "platform", "version", "shard", "oncall", "shippers", "route",
                       "skip_empty"})


@dataclass
class Dropped:
    """A query the config names but that will never run, and why (shown by --explain)."""

    name: str
    reason: str
    place: Place


@dataclass
class Report:
    """Diagnostics of one source, placed through its Document."""

    doc: Document
    diagnostics: list[Diagnostic] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    def warn(self, path: KeyPath, message: str) -> None:
        self.diagnostics.append(Diagnostic("warning", message, self.doc.place(*path)))

    def error(self, path: KeyPath, message: str) -> None:
        self.diagnostics.append(Diagnostic("error", message, self.doc.place(*path)))

    def drop(self, path: KeyPath, name: str, reason: str, severity: str = "warning") -> None:
        self.diagnostics.append(Diagnostic(severity, f"{name}: {reason}; skipped", self.doc.place(*path)))
        self.dropped.append(Dropped(name, reason, self.doc.place(*path)))


def json_type(value: Any) -> str:
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)


def value_to_bool(value: Any) -> bool | None:
    """osquery's JSON::valueToBool; None when the value is not one osquery reads as a boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str) and value.lower() in ("true", "t", "false", "f"):
        return value.lower() in ("true", "t")
    return None


def value_to_size(value: Any) -> int | None:
    """osquery's JSON::valueToSize: a non-negative whole number or a numeric string."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float):
        return int(value) if value.is_integer() and value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _bool(r: Report, entry: dict[str, Any], path: KeyPath, key: str, default: bool) -> bool:
    if key not in entry:
        return default
    value = value_to_bool(entry[key])
    if value is None:
        r.warn((*path, key), f"{path_text((*path, key))}: expected a boolean, got {json_type(entry[key])} "
                             f"{entry[key]!r}; read as false (osquery's rule)")
        return False
    return value


def _text(r: Report, entry: dict[str, Any], path: KeyPath, key: str) -> str | None:
    value = entry.get(key)
    if value is None or isinstance(value, str):
        return value
    r.warn((*path, key), f"{path_text((*path, key))}: expected a string, got {json_type(value)}; ignored")
    return None


def shard(r: Report, entry: dict[str, Any], path: KeyPath) -> int | None:
    if "shard" not in entry:
        return None
    value = value_to_size(entry["shard"])
    if value is None or value > 100:
        r.warn((*path, "shard"), f"{path_text((*path, 'shard'))}: expected a shard 1-100, got "
                                 f"{entry['shard']!r}; ignored (the query runs on every shard)")
        return None
    return value or None  # 0 means every shard


def interval(r: Report, entry: dict[str, Any], path: KeyPath, name: str, default: int) -> int | None:
    if "interval" not in entry:
        return default
    raw = entry["interval"]
    value = value_to_size(raw)
    where = (*path, "interval")
    if value is None:
        r.drop(where, name, f"interval {raw!r} is not a number of seconds")
    elif value == 0:
        r.drop(where, name, "interval 0")
    elif value > MAX_INTERVAL:
        r.drop(where, name, f"interval {value} is longer than a week ({MAX_INTERVAL} s)")
    else:
        return value
    return None


def reserved(name: str) -> bool:
    return name.startswith(RESERVED_PREFIXES) or name.endswith(RESERVED_SUFFIXES)


def scheduled_query(r: Report, path: KeyPath, name: str, pack: str | None,
                    default_interval: int, inherited: Routing | None = None) -> ScheduledQuery | None:
    """One `schedule` or pack `queries` entry; None (with a diagnostic) when it cannot be scheduled."""
    entry = _at(r.doc.value, path)
    where = r.doc.place(*path)
    if not isinstance(entry, dict):
        r.drop(path, name, f"expected an object, got {json_type(entry)}", "error")
        return None
    sql = entry.get("query")
    if not isinstance(sql, str) or not sql.strip():
        r.drop((*path, "query") if "query" in entry else path, name, "no `query` string", "error")
        return None
    if reserved(name):
        r.drop(path, name, "the name is reserved (it may not start with query., cache., config_views. "
                           "or end with epoch or counter)", "error")
        return None
    for key in entry:
        if key == "blacklist":
            r.warn((*path, key), f"{path_text((*path, key))}: `blacklist` was removed in osquery 5.0; use "
                                 "`denylist`; ignored")
        elif key not in QUERY_KEYS and key not in QUERY_INFO_KEYS:
            r.warn((*path, key), f"{path_text((*path, key))}: unknown key; ignored")
    seconds = interval(r, entry, path, name, default_interval)
    if seconds is None:
        return None
    inherited = inherited or Routing()
    priority = None
    if "startup_priority" in entry:
        priority = value_to_size(entry["startup_priority"])
        if priority is None:
            r.warn((*path, "startup_priority"), f"{path_text((*path, 'startup_priority'))}: expected a "
                                                "non-negative number; ignored")
    run_at_start = False
    if "run_at_start" in entry:
        if isinstance(entry["run_at_start"], bool):
            run_at_start = entry["run_at_start"]
        else:
            r.warn((*path, "run_at_start"), f"{path_text((*path, 'run_at_start'))}: expected true or false; "
                                            "read as false")
    routing = _routing(r, entry, path, name, inherited)
    if routing is None:
        return None
    return ScheduledQuery(
        name=name, sql=sql, interval=seconds,
        snapshot=_bool(r, entry, path, "snapshot", False),
        removed=_bool(r, entry, path, "removed", True),
        platform=_text(r, entry, path, "platform"),
        version=_text(r, entry, path, "version"),
        shard=shard(r, entry, path),
        denylist=_bool(r, entry, path, "denylist", True),
        description=_text(r, entry, path, "description") or "",
        pack=pack, startup_priority=priority, run_at_start=run_at_start, shippers=routing.shippers,
        place=where, route=routing.route, skip_empty=routing.skip_empty,
    )


@dataclass(frozen=True)
class Routing:
    """Where a query's results go: a pack's setting is the default of each of its queries."""

    shippers: tuple[str, ...] | None = None
    route: tuple[tuple[str, str], ...] = ()
    skip_empty: bool = False


def _routing(r: Report, entry: dict[str, Any], path: KeyPath, name: str,
             inherited: Routing) -> Routing | None:
    """`shippers`, `route` and `skip_empty` of a query or a pack; None (with an error) when unusable.

    A query's `shippers` replaces its pack's list; its `route` keys override the pack's key by key.
    """
    shippers = inherited.shippers
    if "shippers" in entry:
        value = entry["shippers"]
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            # Routing must not silently widen to every shipper: drop the query (or pack) instead.
            r.drop((*path, "shippers"), name, "`shippers` must be a list of shipper names", "error")
            return None
        shippers = tuple(value)
    route = dict(inherited.route)
    if "route" in entry:
        value = entry["route"]
        if (not isinstance(value, dict) or not set(value) <= ROUTE_KEYS
                or not all(isinstance(v, str) and v for v in value.values())):
            # A misrouted result is worse than none: drop the query (or pack) and say why.
            r.drop((*path, "route"), name, "`route` must be an object with string values for "
                   + ", ".join(sorted(ROUTE_KEYS)), "error")
            return None
        route.update(value)
    skip_empty = _bool(r, entry, path, "skip_empty", inherited.skip_empty)
    return Routing(shippers, tuple(sorted(route.items())), skip_empty)


def schedule(r: Report, default_interval: int) -> list[ScheduledQuery]:
    value = r.doc.value.get("schedule")
    if not isinstance(value, dict):
        r.warn(("schedule",), f"schedule: expected an object of queries, got {json_type(value)}; ignored")
        return []
    out = []
    for name in value:
        q = scheduled_query(r, ("schedule", name), name, None, default_interval)
        if q is not None:
            out.append(q)
    return out


def pack(r: Report, path: KeyPath, name: str, delimiter: str, default_interval: int) -> Pack | None:
    """A pack object at `path` of the report's document (inline, or the root of a pack file)."""
    value = _at(r.doc.value, path)
    if not isinstance(value, dict):
        r.error(path, f"pack {name}: expected an object, got {json_type(value)}; skipped")
        return None
    for key in value:
        if key not in PACK_KEYS:
            r.warn((*path, key), f"pack {name}: unknown key {key!r}; ignored")
    discovery = value.get("discovery", [])
    if not isinstance(discovery, list) or not all(isinstance(d, str) for d in discovery):
        # Running the pack without its gate could run it where it was never meant to: skip it whole.
        r.error((*path, "discovery"), f"pack {name}: `discovery` must be a list of SQL strings; pack skipped")
        return None
    queries = value.get("queries", {})
    if not isinstance(queries, dict):
        r.error((*path, "queries"), f"pack {name}: `queries` must be an object; the pack has no queries")
        queries = {}
    routing = _routing(r, value, path, f"pack {name}", Routing())
    if routing is None:
        return None
    out: list[ScheduledQuery] = []
    for qname in queries:
        full = f"pack{delimiter}{name}{delimiter}{qname}"
        q = scheduled_query(r, (*path, "queries", qname), full, name, default_interval, routing)
        if q is not None:
            out.append(q)
    return Pack(name=name, queries=tuple(out), discovery=tuple(discovery),
                platform=_text(r, value, path, "platform"), version=_text(r, value, path, "version"),
                shard=shard(r, value, path), place=r.doc.place(*path))


def decorators(r: Report) -> tuple[Decorators, list[tuple[str, str, Place]]]:
    """The source's decorators and (label, sql, place) of each, for compilation."""
    value = r.doc.value.get("decorators")
    sqls: list[tuple[str, str, Place]] = []
    if not isinstance(value, dict):
        r.warn(("decorators",), f"decorators: expected an object, got {json_type(value)}; ignored")
        return Decorators(), sqls

    def sql_list(path: KeyPath, label: str) -> tuple[str, ...]:
        items = _at(r.doc.value, path)
        if not isinstance(items, list):
            r.warn(path, f"{path_text(path)}: expected a list of SQL strings; ignored")
            return ()
        good = []
        for i, sql in enumerate(items):
            if isinstance(sql, str) and sql.strip():
                good.append(sql)
                sqls.append((f"{label}[{i}]", sql, r.doc.place(*path, i)))
            else:
                r.warn((*path, i), f"{path_text((*path, i))}: expected an SQL string; ignored")
        return tuple(good)

    load = sql_list(("decorators", "load"), "decorators.load") if "load" in value else ()
    always = sql_list(("decorators", "always"), "decorators.always") if "always" in value else ()
    intervals: list[tuple[int, tuple[str, ...]]] = []
    raw_intervals = value.get("interval", {})
    if not isinstance(raw_intervals, dict):
        r.warn(("decorators", "interval"), "decorators.interval: expected an object keyed by seconds; "
                                           "ignored")
        raw_intervals = {}
    for key in raw_intervals:
        seconds = int(key) if key.strip().isdigit() else None
        if seconds is None or seconds == 0 or seconds % 60:
            r.warn(("decorators", "interval", key), f"decorators.interval: {key!r} is not a positive "
                                                    "multiple of 60 seconds; skipped")
            continue
        intervals.append((seconds, sql_list(("decorators", "interval", key), f"decorators.interval.{key}")))
    for key in value:
        if key not in ("load", "always", "interval"):
            r.warn(("decorators", key), f"decorators: unknown key {key!r}; ignored")
    return Decorators(load, always, tuple(sorted(intervals))), sqls


def string_lists(r: Report, key: str) -> dict[str, tuple[str, ...]]:
    """`{name: [string, ...]}` (file_paths, exclude_paths, kafka_topics, events)."""
    value = r.doc.value.get(key)
    if not isinstance(value, dict):
        r.warn((key,), f"{key}: expected an object of lists, got {json_type(value)}; ignored")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for name, items in value.items():
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            r.warn((key, name), f"{key}.{name}: expected a list of strings; ignored")
            continue
        out[name] = tuple(items)
    return out


def views(r: Report) -> dict[str, tuple[str, Place]]:
    value = r.doc.value.get("views")
    if not isinstance(value, dict):
        r.warn(("views",), f"views: expected an object of view name to SQL, got {json_type(value)}; ignored")
        return {}
    out = {}
    for name, sql in value.items():
        if isinstance(sql, str) and sql.strip():
            out[name] = (sql, r.doc.place("views", name))
        else:
            r.warn(("views", name), f"views.{name}: expected an SQL string; ignored")
    return out


def shippers(r: Report) -> dict[str, dict[str, Any]]:
    """Quarry's `shippers`: kept raw for the shipping layer; here only its outer shape is checked."""
    value = r.doc.value.get("shippers")
    if not isinstance(value, dict):
        r.error(("shippers",), f"shippers: expected an object of named shippers, got {json_type(value)}")
        return {}
    out = {}
    for name, body in value.items():
        if not isinstance(body, dict):
            r.error(("shippers", name), f"shippers.{name}: expected an object, got {json_type(body)}; "
                                        "skipped")
        elif not isinstance(body.get("type"), str) or not body["type"]:
            r.error(("shippers", name), f"shippers.{name}: needs a string `type` (e.g. \"file\"); skipped")
        else:
            out[name] = body
    return out


def _at(value: Any, path: tuple[Key, ...]) -> Any:
    for k in path:
        value = value[k]
    return value
