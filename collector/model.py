"""The few types the daemon's modules meet at (design map: config -> scheduler -> engine -> diff -> events).

Each arrow is one call with plain data:
    collector.config.load(...)            -> Config (with Diagnostics)
    Config.scheduled(host)                -> list[ScheduledQuery] after selectors
    scheduler runs a ScheduledQuery       -> QueryRun (typed rows, resource usage, or an error)
    collector.diff.DiffStore.apply(run)   -> DiffResult (added/removed/snapshot, epoch, counter, reason)
    collector.events.events_for(...)      -> list[Event]; Event.osquery_line() / Event.ecs_document()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Value = str | int | float | bytes | None
Row = dict[str, Value]


@dataclass(frozen=True)
class Place:
    """Where a config item came from, for errors as file:line:column."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        s = self.file
        if self.line is not None:
            s += f":{self.line}"
            if self.column is not None:
                s += f":{self.column}"
        return s


@dataclass(frozen=True)
class ScheduledQuery:
    name: str  # osquery's scheduled name: the schedule key, or pack_<pack>_<query>
    sql: str
    interval: int = 3600
    snapshot: bool = False
    removed: bool = True
    platform: str | None = None
    version: str | None = None
    shard: int | None = None
    denylist: bool = True
    description: str = ""
    pack: str | None = None
    startup_priority: int | None = None  # osquery: run once at start, ascending
    run_at_start: bool = False  # Quarry opt-in: run as soon as the daemon starts, then on schedule
    shippers: tuple[str, ...] | None = None  # routing (shipping issue); None = every shipper
    # Per-query destination overrides the shippers honour: topic (kafka), index (elasticsearch/opensearch,
    # splunk_hec), file (file), sourcetype (splunk_hec).
    route: tuple[tuple[str, str], ...] = ()
    skip_empty: bool = False  # Quarry: an empty snapshot is neither logged nor shipped
    place: Place | None = None


@dataclass(frozen=True)
class Pack:
    name: str
    queries: tuple[ScheduledQuery, ...]
    discovery: tuple[str, ...] = ()
    platform: str | None = None
    version: str | None = None
    shard: int | None = None
    place: Place | None = None


@dataclass(frozen=True)
class Decorators:
    load: tuple[str, ...] = ()
    always: tuple[str, ...] = ()
    interval: tuple[tuple[int, tuple[str, ...]], ...] = ()  # (seconds, queries), seconds % 60 == 0


@dataclass
class QueryRun:
    """One execution of one scheduled query."""

    query: ScheduledQuery
    columns: list[str]
    rows: list[Row]
    started: float  # unix time the run started
    wall_ms: int = 0
    user_ms: int = 0
    system_ms: int = 0
    memory: int = 0  # bytes of RSS growth attributed to the run
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


# Why a run's rows are all "added": the ECS document carries it as event.reason.
REASON_FIRST_RUN = "first run"
REASON_EPOCH = "schedule_epoch changed"
REASON_SQL_CHANGED = "query SQL changed"
REASON_STATE_LOST = "previous results lost or unreadable"
REASON_CHANGE = "change"
REASON_SNAPSHOT = "snapshot"


@dataclass
class DiffResult:
    name: str
    added: list[Row]
    removed: list[Row]
    epoch: int
    counter: int
    reason: str
    snapshot: list[Row] | None = None  # set for snapshot queries instead of added/removed
    # Added by the results engineer: unix time of the run that started this counter sequence (the run itself
    # for snapshots); collector.events puts it in event ids so a new baseline never reuses old ids.
    baseline: float = 0.0

    @property
    def empty(self) -> bool:
        return not self.added and not self.removed and self.snapshot is None


@dataclass
class Diagnostic:
    severity: str  # "error" | "warning"
    message: str
    place: Place | None = None

    def __str__(self) -> str:
        return f"{self.place}: {self.severity}: {self.message}" if self.place else f"{self.severity}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"severity": self.severity, "message": self.message, "place": str(self.place) if self.place else None}
