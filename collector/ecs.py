"""Every result row as an ECS 9.4 document (ecs.md §1, §3, §5.2; mapping in schemas/ecs/mapping.json).

    mapper = EcsMapper()                                    # loads and checks the mapping once
    table = primary_table(sql)                              # the mapping a pack query's rows use
    doc = mapper.document(row, table=table, action="added", query_name=..., unix_time=..., ...)

Document layout (nested JSON, never dotted keys):
- ``@timestamp``: the run's unix time (ISO 8601 UTC, ms); for tables whose rows carry their own event time
  (last, shell_history, file_events, hardware_events) that time when > 0. ``event.created`` is the read time.
- ``event``: kind (snapshot rows: the table's kind, ``state`` unless the table is evented or a metric;
  added/removed rows: ``event``), category/type per table (added/removed rows get the table's change types,
  e.g. processes start/end, packages installation/deletion; otherwise ``info``), action = osquery's action
  (``added``/``removed``/``snapshot``, the osquery package's precedent), module/provider ``osquery``,
  dataset ``osquery.<table>`` (= ``data_stream.dataset``), id (the deterministic id the caller passes),
  reason (why the rows are new: collector.model.REASON_*). ``event.ingested`` is left to the cluster.
- ``host.*`` from HostFacts, ``agent.*`` from AgentFacts (the collector is the agent; no ``observer.*``).
- ``osquery.query.name``, ``osquery.pack``, ``osquery.epoch``, ``osquery.counter``; decorations in ``labels``
  (string values, keys with dots replaced by ``_``).
- mapped columns at their ECS fields with ECS types; other columns at ``osquery.<table>.<column>`` with
  osquery's value types. Two exceptions keep Elasticsearch's ecs@mappings dynamic templates from misreading
  vendor fields: the mapping file converts or renames known ones (``shared_memory.ctime`` as a date,
  ``memory_map.start`` as ``start_address``), and an unmapped column whose name such a template would type
  as a date, ip, float or geo_point is written as ``<column>_value``.
- ``related.{ip,user,hash,hosts}`` from the row; ``data_stream.{type,dataset,namespace}``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import orjson

from collector.ecs_check import dynamic_type
from collector.ecs_convert import REJECT, ip_specified, iso_time, text
from collector.ecs_host import AgentFacts, HostFacts, host_facts
from collector.ecs_mapping import VENDOR, TablePlan, TypeRule, load_mapping

__all__ = ["ECS_VERSION", "AgentFacts", "EcsMapper", "HostFacts", "ResultEvent", "host_facts", "primary_table",
           "query_tables"]

ECS_VERSION = "9.4.0"
FALLBACK_TABLE = "result"  # a query with no FROM table (SELECT 1): dataset osquery.result
_DATASET_BAD = re.compile(r'[\\/*?"<>|,# -]')
_KEY_BAD = re.compile(r"[^0-9A-Za-z_]+")


class ResultEvent(Protocol):
    """What event_document() reads from a result event (collector.events.Event has these)."""

    @property
    def name(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def columns(self) -> Mapping[str, Any]: ...
    @property
    def unix_time(self) -> float: ...
    @property
    def epoch(self) -> int: ...
    @property
    def counter(self) -> int: ...
    @property
    def decorations(self) -> Mapping[str, Any]: ...
    @property
    def reason(self) -> str: ...
    @property
    def table(self) -> str | None: ...
    @property
    def query(self) -> Any: ...  # a collector.model.ScheduledQuery (sql, pack) or None
    @property
    def event_id(self) -> str: ...


# ------------------------------------------------------------------------------------------------ tables
_COMMENT = re.compile(r"--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)
_STRING = re.compile(r"'(?:[^']|'')*'")


_IDENT = r'(?:"([^"]+)"|`([^`]+)`|\[([^\]]+)\]|([A-Za-z_][A-Za-z0-9_$.]*))'
_SOURCE = re.compile(r"\b(from|join)\s+" + _IDENT, re.IGNORECASE)
# after "FROM t [AS] [alias]": ", u" continues a comma join
_COMMA = re.compile(r"\s*(?:(?:as\s+)?(?!(?:where|join|inner|left|cross|natural|group|order|limit|on|using|union)\b)"
                    r"[A-Za-z_][A-Za-z0-9_]*)?\s*,\s*" + _IDENT, re.IGNORECASE)


def _name(m: re.Match[str], first: int) -> str:
    return next(g for g in m.groups()[first:first + 4] if g is not None).split(".")[-1].lower()


@lru_cache(maxsize=4096)
def query_tables(sql: str) -> tuple[str, ...]:
    """Tables a query reads, in order of appearance (FROM, JOIN and comma joins), without duplicates.
    Comments and string literals are skipped; a '(' subquery is looked into, not named."""
    cleaned = _STRING.sub("''", _COMMENT.sub(" ", sql))
    out: list[str] = []
    for m in _SOURCE.finditer(cleaned):
        names = [_name(m, 1)]
        pos = m.end()
        if m.group(1).lower() == "from":
            while (c := _COMMA.match(cleaned, pos)) is not None:
                names.append(_name(c, 0))
                pos = c.end()
        out.extend(n for n in names if n not in out)
    return tuple(out)


def primary_table(sql: str) -> str | None:
    """The first table after FROM (lowercase): its mapping, category and dataset apply to the query's rows."""
    tables = query_tables(sql)
    return tables[0] if tables else None


# ------------------------------------------------------------------------------------------------ mapper
def _put(doc: dict[str, Any], path: tuple[str, ...], value: Any, array: bool) -> None:
    d = doc
    for part in path[:-1]:
        nxt = d.get(part)
        if nxt is None:
            nxt = d[part] = {}
        d = nxt
    leaf = path[-1]
    if array and leaf in d:  # host.ip of an interface row joins the host's own list
        d[leaf].extend(v for v in value if v not in d[leaf])
    else:
        d[leaf] = value


def _types(rules: tuple[TypeRule, ...], row: Mapping[str, Any]) -> tuple[str, ...] | None:
    for rule in rules:
        v = row.get(rule.column)
        if v is not None:
            got = rule.values.get(text(v))
            if got is not None:
                return got
    return None


class EcsMapper:
    """Turns result rows into ECS documents. Thread-safe after construction (it only reads its plans)."""

    def __init__(self, mapping_path: str | Path | None = None, *, namespace: str = "default") -> None:
        if not namespace or len(namespace) > 100 or namespace != namespace.lower() or _DATASET_BAD.search(namespace):
            raise ValueError(f"data_stream namespace {namespace!r}: lower case, no '-', space or \\/*?\"<>|,#")
        self.namespace = namespace
        self.ecs_version, self.plans = load_mapping(mapping_path)
        self._vendor_keys: dict[str, dict[str, str]] = {}  # table -> column -> osquery.<table>.<key>
        self._envelopes: dict[tuple[HostFacts, AgentFacts], bytes] = {}
        self._merged: dict[tuple[str, tuple[str, ...]], TablePlan] = {}

    def plan(self, table: str, joined: Sequence[str] = ()) -> TablePlan:
        """The table's plan; with joined tables, their ECS column targets apply to columns the primary
        table does not have (file JOIN hash: md5 -> file.hash.md5), never to the primary's own columns."""
        key = (table, tuple(joined))
        p = self._merged.get(key)
        if p is None:
            p = self.plans.get(table) or TablePlan(name=table)
            own = _columns_of(table)
            columns, related = dict(p.columns), dict(p.related)
            for other in key[1]:
                op = self.plans.get(other)
                if op is None or other == table:
                    continue
                for column, targets in op.columns.items():
                    ecs_targets = tuple(t for t in targets if not t.vendor)
                    if ecs_targets and column not in columns and column not in own:
                        columns[column] = ecs_targets
                for column, kind in op.related.items():
                    if column not in own:
                        related.setdefault(column, kind)
            if key[1]:
                p = replace(p, columns=columns, related=related)
            if len(self._merged) > 4096:  # bounded: ad-hoc queries could name endless table combinations
                self._merged.clear()
            self._merged[key] = p
        return p

    def _vendor_key(self, keys: dict[str, str], table: str, column: str) -> str:
        key = _KEY_BAD.sub("_", column).strip("_").lower() or "value"
        if dynamic_type(f"{VENDOR}.{table}.{key}") is not None:
            key += "_value"  # an ecs@mappings template would type it (date, ip, ...): see module doc
        if len(keys) < 10000:  # bounded: ad-hoc aliases could be endless
            keys[column] = key
        return key

    def _envelope(self, host: HostFacts, agent: AgentFacts) -> dict[str, Any]:
        """A fresh copy of host.* and agent.* (kept serialised: orjson.loads is the fastest deep copy)."""
        env = self._envelopes.get((host, agent))
        if env is None:
            os_: dict[str, Any] = {"type": host.os_type}
            for key, value in (("name", host.os_name), ("version", host.os_version), ("platform", host.os_platform),
                               ("family", host.os_family), ("kernel", host.os_kernel)):
                if value:
                    os_[key] = value
            full = host.os_full or " ".join(v for v in (host.os_name, host.os_version) if v)
            if full:
                os_["full"] = full
            h: dict[str, Any] = {"name": host.name or host.hostname.lower(), "hostname": host.hostname, "os": os_}
            if host.id:
                h["id"] = host.id
            if host.architecture:
                h["architecture"] = host.architecture
            if host.ips:
                h["ip"] = list(host.ips)
            if host.macs:
                h["mac"] = list(host.macs)
            a: dict[str, Any] = {"type": agent.type, "name": agent.name, "version": agent.version, "id": agent.id}
            if agent.ephemeral_id:
                a["ephemeral_id"] = agent.ephemeral_id
            env = orjson.dumps({"host": h, "agent": a})
            if len(self._envelopes) > 16:  # facts change rarely (hot reload); keep the cache small
                self._envelopes.clear()
            self._envelopes[(host, agent)] = env
        result: dict[str, Any] = orjson.loads(env)
        return result

    def event_document(self, event: ResultEvent, *, host: HostFacts, agent: AgentFacts) -> dict[str, Any]:
        """document() for a result event (collector.events.Event or anything shaped like ResultEvent)."""
        query = event.query
        sql = getattr(query, "sql", None)
        table, joined = self.tables(sql) if isinstance(sql, str) else (event.table, ())
        return self.document(event.columns, table=table or event.table, joined=joined, action=event.action,
                             query_name=event.name, pack=getattr(query, "pack", None), unix_time=event.unix_time,
                             epoch=event.epoch, counter=event.counter, event_id=event.event_id,
                             reason=event.reason, decorations=event.decorations, host=host, agent=agent)

    def tables(self, sql: str) -> tuple[str | None, tuple[str, ...]]:
        """(primary table, joined tables) of a query: pass them as document(table=, joined=)."""
        tables = query_tables(sql)
        return (tables[0], tables[1:]) if tables else (None, ())

    def document(self, row: Mapping[str, Any], *, table: str | None, action: str, query_name: str,
                 unix_time: float, event_id: str | None, reason: str, host: HostFacts, agent: AgentFacts,
                 pack: str | None = None, epoch: int = 0, counter: int = 0,
                 decorations: Mapping[str, Any] | None = None, snapshot: bool | None = None,
                 created: float | None = None, joined: Sequence[str] = ()) -> dict[str, Any]:
        """One ECS document for one row. action: osquery's added | removed | snapshot."""
        tname = (table or FALLBACK_TABLE).lower()
        plan = self.plan(tname, joined)
        if snapshot is None:
            snapshot = action == "snapshot"
        dataset = f"{VENDOR}.{tname}"
        env = self._envelope(host, agent)
        doc: dict[str, Any] = {"@timestamp": None, "ecs": {"version": self.ecs_version}}
        doc.update(env)
        row_time = plan.timestamp and row.get(plan.timestamp)
        ts = iso_time(unix_time)
        doc["@timestamp"] = iso_time(row_time) if isinstance(row_time, (int, float)) and 0 < row_time < 253402300800 \
            else ts
        event: dict[str, Any] = {"kind": plan.kind if snapshot else "event"}
        if plan.category:
            types = _types(plan.type_by, row)
            if types is None and snapshot:
                types = _types(plan.snapshot_type_by, row)
            if types is None:
                types = plan.type if snapshot else plan.added if action == "added" else \
                    plan.removed if action == "removed" else plan.type
            event["category"] = list(plan.category)
            event["type"] = list(types)
        event.update(action=action, module=VENDOR, provider=VENDOR, dataset=dataset,
                     created=iso_time(created) if created is not None else ts, reason=reason)
        if event_id:
            event["id"] = event_id
        doc["event"] = event
        meta: dict[str, Any] = {"query": {"name": query_name}}
        if pack:
            meta["pack"] = pack
        meta["epoch"] = epoch
        meta["counter"] = counter
        doc[VENDOR] = meta
        if decorations:
            labels = {_KEY_BAD.sub("_", str(k)): text(v) for k, v in decorations.items() if v is not None}
            if labels:
                doc["labels"] = labels
        related: dict[str, list[str]] = {}
        self._map_row(doc, plan, tname, row, related)
        for path, value in plan.constants:
            _put(doc, path, value, False)
        if plan.entity_id is not None:
            path, cols = plan.entity_id
            parts = [row.get(c) for c in cols]
            if all(p is not None for p in parts):
                seed = "|".join([host.id or host.hostname, *(text(p) for p in parts)])
                _put(doc, path, hashlib.blake2b(seed.encode(), digest_size=16).hexdigest(), False)
        if related:
            doc["related"] = related
        doc["data_stream"] = {"type": "logs", "dataset": dataset, "namespace": self.namespace}
        return doc

    def _map_row(self, doc: dict[str, Any], plan: TablePlan, table: str, row: Mapping[str, Any],
                 related: dict[str, list[str]]) -> None:
        vendor: dict[str, Any] = {}
        keys = self._vendor_keys.get(table)
        if keys is None:
            keys = self._vendor_keys[table] = {}
        columns = plan.columns
        for column, value in row.items():
            if value is None:
                continue
            targets = columns.get(column)
            keep_raw = True
            if targets:
                keep_raw = False
                placed = False
                for t in targets:
                    v = value
                    if t.times is not None:
                        factor = row.get(t.times)
                        if not isinstance(factor, int) or not isinstance(value, int):
                            keep_raw = keep_raw or not t.vendor
                            continue
                        v = value * factor
                    out = t.convert(v)
                    if out is REJECT:
                        keep_raw = keep_raw or not t.vendor
                        continue
                    placed = True
                    if t.vendor:
                        vendor[t.path[-1]] = out
                    else:
                        _put(doc, t.path, out, t.array)
                    if t.related is not None:
                        _related(related, t.related, out)
                keep_raw = keep_raw and not placed
            if keep_raw:
                key = keys.get(column) or self._vendor_key(keys, table, column)
                vendor[key] = text(value) if isinstance(value, bytes) else value
            if column in plan.related:
                _related_raw(related, plan.related[column], value)
        if vendor:
            doc[VENDOR][table] = vendor


@lru_cache(maxsize=None)
def _columns_of(table: str) -> frozenset[str]:
    from collector.registry import all_tables  # late: the registry imports every table module

    reg = all_tables().get(table)
    return frozenset(c.name for c in reg.spec.columns) if reg is not None else frozenset()


def _add(related: dict[str, list[str]], key: str, value: str) -> None:
    lst = related.setdefault(key, [])
    if value not in lst:
        lst.append(value)


def _related(related: dict[str, list[str]], kind: str, value: Any) -> None:
    for v in value if isinstance(value, list) else (value,):
        if kind == "ip" and v in ("0.0.0.0", "::"):
            continue
        _add(related, kind, v)


def _related_raw(related: dict[str, list[str]], kind: str, value: Any) -> None:
    if kind == "user":
        s = text(value)
        if s:
            _add(related, "user", s)
        return
    words = text(value).split() if kind == "hosts_split" else [text(value).strip()]
    for w in words:
        if not w:
            continue
        a = ip_specified(w)
        if a is not REJECT:
            _add(related, "ip", a)
        elif kind != "ip":
            _add(related, "hosts", w)
