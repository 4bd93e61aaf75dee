"""The loaded configuration (`Config`) and which of its queries run on this host, and why not.

    config.scheduled(hostname, engine, denylisted={"pack_x_y"})  -> [ScheduledQuery] that run here
    config.explain(hostname, engine)                              -> [Verdict] for every query, with reasons

Selectors follow osquery (osquery.md §1.5-1.6): pack-level platform/version/shard gate the whole pack, then
each query's own; a pack's discovery queries must all return at least one row (short-circuit at the first
that does not), cached for --pack_refresh_interval; a denylisted query does not run unless it says
`denylist: false`. Quarry adds one gate: a query whose SQL does not compile on this engine (unknown table
or column) does not run, and says why.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from collector import OSQUERY_COMPAT_VERSION
from collector.config.schema import Dropped
from collector.config.selectors import build_platform, check_platform, machine_shard, version_at_least
from collector.errors import QueryError
from collector.model import Decorators, Pack, Place, ScheduledQuery
from collector.runtime import PackInfo


class SQLEngine(Protocol):
    def query(self, sql: str, *, timeout: float | None = None) -> Any: ...

    def columns(self, sql: str) -> list[str]: ...


@dataclass
class Verdict:
    """Whether one configured query runs on this host; `reasons` says why not (empty when it runs)."""

    query: ScheduledQuery
    reasons: list[str]  # the query's own: platform, version, shard, denylisted, sql
    pack_reasons: list[str] = field(default_factory=list)  # its pack's: platform, version, shard, discovery

    @property
    def name(self) -> str:
        return self.query.name

    @property
    def runs(self) -> bool:
        return not self.reasons and not self.pack_reasons

    @property
    def why_not(self) -> list[str]:
        return [*self.pack_reasons, *self.reasons]


@dataclass
class Config:
    sources: tuple[str, ...] = ()  # config files in the order they were applied
    schedule: tuple[ScheduledQuery, ...] = ()  # the `schedule` queries of every source
    packs: tuple[Pack, ...] = ()
    decorators: Decorators = field(default_factory=Decorators)
    options: dict[str, Any] = field(default_factory=dict)  # merged raw `options` (flags are in Loaded.flags)
    custom: dict[str, Any] = field(default_factory=dict)  # custom_* options
    file_paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exclude_paths: dict[str, tuple[str, ...]] = field(default_factory=dict)
    events: dict[str, tuple[str, ...]] = field(default_factory=dict)  # enable_/disable_subscribers
    kafka_topics: dict[str, tuple[str, ...]] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)
    shippers: dict[str, dict[str, Any]] = field(default_factory=dict)  # raw, for the shipping layer
    extra: dict[str, Any] = field(default_factory=dict)  # unknown or unimplemented top-level keys, kept
    dropped: tuple[Dropped, ...] = ()  # configured queries that can never run (bad interval, ...)
    sql_places: tuple[tuple[str, str, Place], ...] = ()  # (label, sql, place): decorators and views
    key_places: dict[tuple[str, ...], Place] = field(default_factory=dict)  # e.g. ("kafka_topics", topic)
    pack_refresh_interval: int = 3600
    _discovery: dict[tuple[str, tuple[str, ...]], tuple[float, str | None]] = field(
        default_factory=dict, repr=False, compare=False)
    _stats: dict[str, PackInfo] = field(default_factory=dict, repr=False, compare=False)

    # --- reading ---------------------------------------------------------------------------------------
    def queries(self) -> list[ScheduledQuery]:
        """Every configured query before selection: the schedule, then each pack's."""
        return [*self.schedule, *(q for p in self.packs for q in p.queries)]

    def pack(self, name: str) -> Pack | None:
        return next((p for p in self.packs if p.name == name), None)

    def pack_info(self) -> dict[str, PackInfo]:
        """osquery_packs rows (discovery counters are filled by scheduled()/explain())."""
        out = {}
        for p in self.packs:
            info = self._stats.get(p.name) or PackInfo()
            info.platform, info.version, info.shard = p.platform or "", p.version or "", p.shard or 0
            out[p.name] = info
        return out

    # --- selection ------------------------------------------------------------------------------------
    def scheduled(self, hostname: str | None, engine: SQLEngine, *,
                  denylisted: Container[str] | Mapping[str, float] = (), platform: str | None = None,
                  version: str = OSQUERY_COMPAT_VERSION, now: float | None = None) -> list[ScheduledQuery]:
        """The queries that run on this host, in configuration order."""
        return [v.query for v in self.explain(hostname, engine, denylisted=denylisted, platform=platform,
                                              version=version, now=now) if v.runs]

    def explain(self, hostname: str | None, engine: SQLEngine, *,
                denylisted: Container[str] | Mapping[str, float] = (), platform: str | None = None,
                version: str = OSQUERY_COMPAT_VERSION, now: float | None = None) -> list[Verdict]:
        """A Verdict for every configured query (dropped ones excluded: see `dropped`)."""
        host = hostname if hostname is not None else socket.gethostname()
        build = platform or build_platform()
        shard_here = machine_shard(host)
        now = time.time() if now is None else now
        out = [Verdict(q, self._query_reasons(q, build, version, shard_here, engine, denylisted))
               for q in self.schedule]
        for p in self.packs:
            gate = _selector_reasons("pack", p.platform, p.version, p.shard, build, version, shard_here)
            if not gate and p.discovery:
                failed = self._discover(p, engine, now)
                if failed:
                    gate.append(failed)
            info = self._stats.setdefault(p.name, PackInfo())
            info.active = not gate
            for q in p.queries:
                out.append(Verdict(q, self._query_reasons(q, build, version, shard_here, engine, denylisted,
                                                          compile_sql=not gate), list(gate)))
        return out

    def _query_reasons(self, q: ScheduledQuery, build: str, version: str, shard_here: int, engine: SQLEngine,
                       denylisted: Container[str] | Mapping[str, float],
                       compile_sql: bool = True) -> list[str]:
        reasons = _selector_reasons("query", q.platform, q.version, q.shard, build, version, shard_here)
        if q.name in denylisted and q.denylist:
            until = denylisted.get(q.name) if isinstance(denylisted, Mapping) else None
            when = ""
            if isinstance(until, (int, float)):
                when = f" until {datetime.fromtimestamp(until, UTC).isoformat()}"
            reasons.append(f"denylisted{when} (stopped by the watchdog; `denylist: false` exempts a query)")
        if not reasons and compile_sql:  # only what would otherwise run: a darwin table is no error on Linux
            try:
                engine.columns(q.sql)
            except QueryError as e:
                reasons.append(f"sql: {e}")
        return reasons

    def _discover(self, p: Pack, engine: SQLEngine, now: float) -> str | None:
        """None when every discovery query returns a row, else why the pack is inactive."""
        key = (p.name, p.discovery)
        info = self._stats.setdefault(p.name, PackInfo())
        cached = self._discovery.get(key)
        if cached is not None and now - cached[0] < self.pack_refresh_interval:
            info.discovery_cache_hits += 1
            return cached[1]
        failed: str | None = None
        for i, sql in enumerate(p.discovery, 1):
            info.discovery_executions += 1
            try:
                rows = engine.query(sql).rows
            except QueryError as e:
                failed = f"discovery: query {i} failed: {e} ({_short(sql)})"
                break
            if not rows:
                failed = f"discovery: query {i} returned no rows ({_short(sql)})"
                break
        self._discovery[key] = (now, failed)
        return failed


def _selector_reasons(what: str, platform: str | None, required: str | None, shard: int | None, build: str,
                      version: str, shard_here: int) -> list[str]:
    reasons = []
    if not check_platform(platform, build):
        reasons.append(f"platform: {what} is for {platform!r}, this host is {build}")
    if not version_at_least(required, version):
        reasons.append(f"version: {what} needs osquery {required}, Quarry is compatible with {version}")
    if shard and shard < shard_here:
        reasons.append(f"shard: {what} runs on shards 0-{shard}, this host is shard {shard_here}")
    return reasons


def _short(sql: str, limit: int = 60) -> str:
    one = " ".join(sql.split())
    return one if len(one) <= limit else one[: limit - 3] + "..."
