"""One result row with its context (`Event`), and osquery's results and status lines, byte for byte.

    ctx = LogContext.from_flags(flags, host_identifier=identity.host_identifier(...))
    events = events_for(diff, ctx, query)        # removed rows first, then added (or one per snapshot row)
    lines = result_lines(diff, ctx, event_format=flags["logger_event_type"], events=events)

Line shapes (reference sheet §2; osquery/core/query.cpp, core/sql/diff_results.cpp):
- event   {"name","hostIdentifier","calendarTime","unixTime","epoch","counter","numerics",["decorations"],
           "columns":{...},"action":"added"|"removed"|"snapshot"}
- batch   {"diffResults":{"removed":[...],"added":[...]}, <the legacy fields>, ["decorations"]}
- snapshot{"snapshot":[...],"action":"snapshot", <the legacy fields>, ["decorations"]}
Row keys are sorted (osquery rows are std::maps). With --decorations_top_level each decoration is a top-level
key written where the "decorations" object would be; a decoration named like a reserved key is written as a
second member (rapidjson's AddMember does not replace), so a reader keeping the last value sees the
decoration, except for `columns`/`action` which come after. With `log_reason` (Quarry's opt-in flag) a
`"reason"` member is appended last; without it the lines are osquery's bytes.

Numerics (--logger_numerics / --log_numerics_as_numbers): INTEGER/BIGINT/DOUBLE values are JSON numbers,
otherwise every value is a string (osquery's castVariant text form, NULL -> ""); the line's `numerics`
field says which. The type is the value's own (as osquery takes it from sqlite3_column_type), so an
expression column that yields an integer is a number too.

Event ids (`Event.event_id`): a UUID-shaped string (version nibble 8, "custom", RFC 9562) made of the first
128 bits of sha256 over [host identifier, query name, epoch, baseline, counter, action, occurrence, row as
sorted (column, text form) pairs]. `baseline` is the unix time of the run that started the counter sequence
(DiffResult.baseline; the run itself for snapshots) and `occurrence` numbers identical rows within one diff.
So a retried or replayed event keeps its id (across restarts too: counter and baseline are persisted),
while the same row added again later, re-added after a reset, or snapshotted in another run gets a new one.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

import collector
from collector import osquery_json as oj
from collector.diff import RESET_REASONS, referenced_tables, row_key
from collector.model import REASON_CHANGE, DiffResult, Row, ScheduledQuery

SEVERITY_NAMES = ("INFO", "WARNING", "ERROR", "FATAL")


def calendar_time(unix_time: float) -> str:
    """osquery's getAsciiTime: asctime() of the UTC time, trimmed, + " UTC" (Mon May  2 22:27:32 2016 UTC)."""
    return time.asctime(time.gmtime(unix_time)).strip() + " UTC"


@dataclass
class LogContext:
    """What every line carries besides the rows; the daemon builds it from flags and updates decorations."""

    host_identifier: str
    epoch: int = 0  # --schedule_epoch (lines take theirs from the DiffResult, which the DiffStore stamps)
    numerics: bool = False
    decorations: dict[str, str] = field(default_factory=dict)
    decorations_top_level: bool = False
    snapshot_event_type: bool = False
    log_reason: bool = False
    clock: Callable[[], float] = time.time
    calendar: Callable[[float], str] = calendar_time

    @classmethod
    def from_flags(cls, flags: Mapping[str, Any], host_identifier: str, **kw: Any) -> LogContext:
        """From osquery flag values (canonical names; missing ones take osquery's defaults)."""
        return cls(host_identifier=host_identifier,
                   epoch=int(flags.get("schedule_epoch", 0) or 0),
                   numerics=bool(flags.get("logger_numerics", False)),
                   decorations_top_level=bool(flags.get("decorations_top_level", False)),
                   snapshot_event_type=bool(flags.get("logger_snapshot_event_type", False)),
                   log_reason=bool(flags.get("log_result_reason", False)), **kw)


def _legacy(name: str, host: str, calendar: str, unix_time: int, epoch: int, counter: int, numerics: bool,
            decorations: Mapping[str, object], top_level: bool) -> list[tuple[str, bytes]]:
    """osquery's addLegacyFieldsAndDecorations, in its order (as (key, encoded value) pairs)."""
    pairs = [("name", oj.string(name)), ("hostIdentifier", oj.string(host)),
             ("calendarTime", oj.string(calendar)), ("unixTime", str(int(unix_time)).encode()),
             ("epoch", str(int(epoch)).encode()), ("counter", str(int(counter)).encode()),
             ("numerics", oj.boolean(numerics))]
    if decorations:
        decos = [(k, oj.string(oj.text(decorations[k]))) for k in sorted(decorations)]
        if top_level:
            pairs.extend(decos)
        else:
            pairs.append(("decorations", oj.obj(decos)))
    return pairs


@lru_cache(maxsize=256)
def _legacy_bytes(name: str, host: str, calendar: str, unix_time: int, epoch: int, counter: int,
                  numerics: bool, decorations: tuple[tuple[str, str], ...], top_level: bool) -> bytes:
    pairs = _legacy(name, host, calendar, unix_time, epoch, counter, numerics, dict(decorations), top_level)
    return oj.obj(pairs)[1:-1]


@dataclass(frozen=True, eq=False)
class Event:
    """One result row with its context. `osquery_line()` and `event_id` are computed once.

    Compared and hashed by identity (rows are dicts); equal content is what `event_id` expresses.
    """

    name: str
    action: str  # "added" | "removed" | "snapshot"
    columns: Row
    host_identifier: str
    unix_time: int
    calendar_time: str
    epoch: int
    counter: int
    numerics: bool = False
    decorations: Mapping[str, str] = field(default_factory=dict)
    decorations_top_level: bool = False
    reason: str = REASON_CHANGE
    log_reason: bool = False
    table: str | None = None  # the query's primary table (first FROM), for the ECS mapping
    query: ScheduledQuery | None = None
    baseline: float = 0.0
    occurrence: int = 0  # 0 for the first of identical rows in one diff, 1 for the next, ...

    def osquery_line(self) -> bytes:
        """The event-format line (§2.2), without the trailing newline."""
        cached = self.__dict__.get("_line")
        if cached is None:
            # The legacy fields are the same for every row of a run: encoded once per run (cache below).
            head = _legacy_bytes(self.name, self.host_identifier, self.calendar_time, self.unix_time,
                                 self.epoch, self.counter, self.numerics,
                                 tuple(sorted(self.decorations.items())), self.decorations_top_level)
            tail = b',"reason":' + oj.string(self.reason) if self.log_reason else b""
            cached = (b"{" + head + b',"columns":' + oj.row(self.columns, self.numerics) + b',"action":'
                      + oj.string(self.action) + tail + b"}")
            self.__dict__["_line"] = cached
        return cached

    @property
    def event_id(self) -> str:
        cached = self.__dict__.get("_id")
        if cached is None:
            content = [self.host_identifier, self.name, self.epoch, self.baseline, self.counter, self.action,
                       self.occurrence, [list(p) for p in row_key(self.columns)]]
            digest = bytearray(hashlib.sha256(orjson.dumps(content)).digest()[:16])
            digest[6] = (digest[6] & 0x0F) | 0x80  # version 8: custom
            digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 9562 variant
            cached = str(uuid.UUID(bytes=bytes(digest)))
            self.__dict__["_id"] = cached
        return cached

    @property
    def snapshot(self) -> bool:
        return self.action == "snapshot"


def primary_table(query: ScheduledQuery | None) -> str | None:
    tables = referenced_tables(query.sql) if query is not None else []
    return tables[0] if tables else None


def events_for(diff: DiffResult, ctx: LogContext, query: ScheduledQuery | None = None) -> list[Event]:
    """One Event per row: all removed rows before all added ones (osquery's order), or one per snapshot."""
    unix_time = int(ctx.clock())
    calendar = ctx.calendar(unix_time)
    decorations = dict(ctx.decorations)
    table = primary_table(query)
    if diff.snapshot is not None:
        groups = [("snapshot", diff.snapshot)]
    else:
        groups = [("removed", diff.removed), ("added", diff.added)]
    out: list[Event] = []
    for action, rows in groups:
        seen: Counter[tuple[tuple[str, str], ...]] = Counter()
        for r in rows:
            key = row_key(r)
            out.append(Event(name=diff.name, action=action, columns=r, host_identifier=ctx.host_identifier,
                             unix_time=unix_time, calendar_time=calendar, epoch=diff.epoch,
                             counter=diff.counter, numerics=ctx.numerics, decorations=decorations,
                             decorations_top_level=ctx.decorations_top_level, reason=diff.reason,
                             log_reason=ctx.log_reason, table=table, query=query, baseline=diff.baseline,
                             occurrence=seen[key]))
            seen[key] += 1
    return out


def _tail(diff: DiffResult, ctx: LogContext) -> list[tuple[str, bytes]]:
    unix_time = int(ctx.clock())
    pairs = _legacy(diff.name, ctx.host_identifier, ctx.calendar(unix_time), unix_time, diff.epoch,
                    diff.counter, ctx.numerics, ctx.decorations, ctx.decorations_top_level)
    if ctx.log_reason:
        pairs.append(("reason", oj.string(diff.reason)))
    return pairs


def batch_line(diff: DiffResult, ctx: LogContext) -> bytes | None:
    """The batch-format line (§2.3), or None when there is nothing to log.

    A (re)initial run with zero rows still logs a line with empty arrays (counter 0); an empty diff of a
    later run logs nothing.
    """
    if diff.snapshot is not None:
        raise ValueError(f"{diff.name}: a snapshot result has no batch line; use snapshot_line")
    if diff.empty and not (diff.counter == 0 and diff.reason in RESET_REASONS):
        return None
    results = oj.obj([("removed", oj.rows(diff.removed, ctx.numerics)),
                      ("added", oj.rows(diff.added, ctx.numerics))])
    return oj.obj([("diffResults", results), *_tail(diff, ctx)])


def snapshot_line(diff: DiffResult, ctx: LogContext) -> bytes:
    """The one-line-per-run snapshot line (§2.4); logged even when the snapshot is empty, as osquery does."""
    if diff.snapshot is None:
        raise ValueError(f"{diff.name}: not a snapshot result")
    head = [("snapshot", oj.rows(diff.snapshot, ctx.numerics)), ("action", b'"snapshot"')]
    return oj.obj(head + _tail(diff, ctx))


def result_lines(diff: DiffResult, ctx: LogContext, *, event_format: bool = True,
                 events: list[Event] | None = None, query: ScheduledQuery | None = None) -> list[bytes]:
    """The osquery lines one run produces, per --logger_event_type and --logger_snapshot_event_type.

    `events` (from events_for) are reused when given, so each row is rendered once.
    """
    if diff.snapshot is not None and not ctx.snapshot_event_type:
        return [snapshot_line(diff, ctx)]
    if diff.snapshot is None and not event_format:
        line = batch_line(diff, ctx)
        return [line] if line is not None else []
    if events is None:
        events = events_for(diff, ctx, query)
    return [e.osquery_line() for e in events]


def status_line(severity: int, message: str, filename: str, line: int, ctx: LogContext,
                *, unix_time: float | None = None) -> bytes:
    """A status record in osquery's buffered-logger JSON shape (§2.6, plugins/logger/buffered.cpp).

    {"hostIdentifier","calendarTime","unixTime","severity","filename","line","message","version",
    ["decorations"]}. unixTime, severity and line are JSON numbers, as the reference sheet gives them (older
    osquery wrote them as strings through boost's ptree, osquery#7150); `version` is Quarry's.
    """
    t = int(ctx.clock() if unix_time is None else unix_time)
    pairs = [("hostIdentifier", oj.string(ctx.host_identifier)), ("calendarTime", oj.string(ctx.calendar(t))),
             ("unixTime", str(t).encode()), ("severity", str(int(severity)).encode()),
             ("filename", oj.string(filename)), ("line", str(int(line)).encode()),
             ("message", oj.string(message)), ("version", oj.string(collector.__version__))]
    if ctx.decorations:
        decos = [(k, oj.string(oj.text(ctx.decorations[k]))) for k in sorted(ctx.decorations)]
        if ctx.decorations_top_level:
            pairs.extend(decos)
        else:
            pairs.append(("decorations", oj.obj(decos)))
    return oj.obj(pairs)
