"""The daemon's buffer of evented-table rows (hardware_events, file_events), kept in State.

Publishers (collector/publishers/) call `add(table, rows)` from their threads; evented tables read
`rows(table)` through the engine's runtime (`Runtime.event_store`, found with `store_of`). Retention is
osquery's (`osquery/events/eventsubscriberplugin.cpp`):

- `--events_expiry` (default 3600 s): events older than this are deleted when the table is queried; events
  nobody queries stay until the maximum is reached. An expiry of 0 disables the time-based expiry.
- `--events_max` (default 50000 per table): beyond it the oldest events are dropped. `rows()` enforces it
  exactly; `add()` trims lazily (once a tenth of the maximum has been added since the last trim), so a burst
  of events costs one DELETE per batch of inserts, not one per event.

Every row gets `time` (when the publisher saw the event, if it did not set one) and `eid`, osquery's
ten-digit, zero-padded event id, increasing per table across restarts: the next id is kept in the State
domain "events" and reserved before the rows are written, so a crash leaves a gap, never a duplicate.
Events themselves live in State's events table and so survive a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from collector.state import State

log = logging.getLogger("quarry.eventstore")

Row = dict[str, Any]

DOMAIN = "events"  # State kv domain: "<table>.eid" -> next event id


class EventSource(Protocol):
    """What an evented table needs from the store."""

    def rows(self, table: str) -> list[Row]: ...


@dataclass
class TableStats:
    """Per-table counters since this process started (osquery_events shows `events`)."""

    events: int = 0  # rows added since start
    last_event: int = 0  # unix time of the newest row added since start, 0 if none
    expired: int = 0  # rows deleted by expiry or the maximum since start


class EventStore:
    def __init__(self, state: State, *, expiry: int = 3600, max_events: int = 50000,
                 clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.expiry = int(expiry)
        self.max_events = max(1, int(max_events))
        self._clock = clock
        self._lock = threading.Lock()
        self._stats: dict[str, TableStats] = {}
        self._since_trim: dict[str, int] = {}

    def configure(self, *, expiry: int | None = None, max_events: int | None = None) -> None:
        """Apply new --events_expiry / --events_max values (hot reload); takes effect on the next call."""
        with self._lock:
            if expiry is not None:
                self.expiry = int(expiry)
            if max_events is not None:
                self.max_events = max(1, int(max_events))

    # --- writing --------------------------------------------------------------------------------------------
    def add(self, table: str, rows: Iterable[Row]) -> int:
        """Buffer rows of an evented table; returns how many were added. Safe from any thread."""
        batch = [dict(r) for r in rows]
        if not batch:
            return 0
        now = int(self._clock())
        with self._lock:
            first = self._reserve(table, len(batch))
            for i, row in enumerate(batch):
                if not row.get("time"):
                    row["time"] = now
                row["eid"] = f"{first + i:010d}"
            self.state.add_events(table, batch)
            stats = self._stats.setdefault(table, TableStats())
            stats.events += len(batch)
            stats.last_event = max(stats.last_event, max(int(r["time"]) for r in batch))
            pending = self._since_trim.get(table, 0) + len(batch)
            if pending >= max(64, self.max_events // 10):
                stats.expired += self.state.expire_events(table, 0, self.max_events)
                pending = 0
            self._since_trim[table] = pending
        return len(batch)

    def _reserve(self, table: str, count: int) -> int:
        key = f"{table}.eid"
        stored = self.state.get(DOMAIN, key)
        first = stored if isinstance(stored, int) and stored > 0 else 1
        self.state.put(DOMAIN, key, first + count)
        return first

    # --- reading --------------------------------------------------------------------------------------------
    def rows(self, table: str) -> list[Row]:
        """The buffered rows, oldest first, after osquery's query-time expiry and the maximum."""
        with self._lock:
            older_than = int(self._clock()) - self.expiry if self.expiry > 0 else 0
            dropped = self.state.expire_events(table, older_than, self.max_events)
            self._stats.setdefault(table, TableStats()).expired += dropped
            self._since_trim[table] = 0
        return self.state.events(table)

    def stats(self, table: str) -> TableStats:
        with self._lock:
            s = self._stats.get(table)
            return TableStats(s.events, s.last_event, s.expired) if s else TableStats()


def store_of(runtime: Any) -> EventSource | None:
    """The event store an engine's runtime offers, or None (shell and one-shot queries run no publisher).

    The daemon sets `Runtime.event_store`. A runtime whose `events` attribute is itself a store (has
    `rows`) is accepted too, for callers that pass a bare namespace as the runtime.
    """
    store = getattr(runtime, "event_store", None)
    if store is not None and callable(getattr(store, "rows", None)):
        return store  # type: ignore[no-any-return]
    events = getattr(runtime, "events", None)
    if events is not None and callable(getattr(events, "rows", None)):
        return events  # type: ignore[no-any-return]
    return None
