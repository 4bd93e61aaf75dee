"""Per-shipper counters, and the status events that leave a trace of every drop, truncation and dead letter.

`ShipperMetrics` holds counters the runner updates; `snapshot()` (in runner.py) adds the live queue and
spool figures. `StatusReporter` aggregates notices by (event, shipper, reason, query, host) and hands one
dict per group to `on_status` every interval, so a flood of drops becomes a bounded stream of status
events (a drop of status events themselves is reported the same way, at most once per interval and key):

    {"event": "drop", "shipper": "kafka_main", "reason": "queue_full_drop_newest",
     "query": "pack_x_processes", "host": "web-1", "rows": 120, "bytes": 48000, "time": 1767225600.0}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from collector.pipeline.api import Record

log = logging.getLogger("quarry.pipeline.metrics")
StatusFn = Callable[[dict[str, Any]], None]
MAX_GROUPS = 10_000  # bound on distinct keys held between two flushes


@dataclass
class ShipperMetrics:
    sent: int = 0  # records handed to send(), every attempt
    requests: int = 0
    acked: int = 0  # records the destination acknowledged
    retried: int = 0  # records sent again after a temporary error
    splits: int = 0  # requests split after TooLarge (or an encode failure)
    probes_ok: int = 0  # health checks that ended a backoff early (retry.probe_s)
    dead_lettered: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    notices: dict[str, int] = field(default_factory=dict)  # truncation / split reported by the shipper
    in_flight: int = 0  # records inside a send() right now
    in_flight_requests: int = 0
    last_error: str = ""
    last_error_time: float = 0.0
    consecutive_failures: int = 0
    unreachable: str = ""  # why the shipper's own probe cannot reach the destination ("" when it can)
    opened: bool = False
    stopped: bool = False

    def error(self, text: str) -> None:
        self.last_error, self.last_error_time = text, time.time()

    def drop(self, reason: str, rows: int) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + rows

    @property
    def health(self) -> str:
        if self.stopped:
            return "stopped"
        if not self.opened:
            return "starting"
        if self.consecutive_failures:
            return "retrying"
        return "unreachable" if self.unreachable else "ok"

    def counters(self) -> dict[str, Any]:
        return {"sent": self.sent, "requests": self.requests, "acked": self.acked, "retried": self.retried,
                "splits": self.splits, "probes_ok": self.probes_ok, "dead_lettered": self.dead_lettered,
                "dropped": dict(self.dropped), "dropped_total": sum(self.dropped.values()),
                "notices": dict(self.notices), "in_flight": self.in_flight,
                "in_flight_requests": self.in_flight_requests, "last_error": self.last_error,
                "last_error_time": self.last_error_time or None, "health": self.health}


class StatusReporter:
    def __init__(self, on_status: StatusFn | None) -> None:
        self._on_status = on_status
        self._groups: dict[tuple[str, str, str, str, str], list[int]] = {}
        self.overflow = 0

    def add(self, event: str, shipper: str, reason: str, records: Iterable[Record], rows: int | None = None,
            size: int | None = None) -> None:
        """Count `records` (or, when only a sample is known, `rows`/`size` split over the sample's keys)."""
        sample = list(records)
        if rows is None:
            for r in sample:
                self._bump((event, shipper, reason, r.name, r.host), 1, r.size)
            return
        if not sample:
            self._bump((event, shipper, reason, "", ""), rows, size or 0)
            return
        first = sample[0]  # a summary (a dropped spool segment): attribute it to the first query seen
        self._bump((event, shipper, reason, first.name, first.host), rows, size or 0)

    def _bump(self, key: tuple[str, str, str, str, str], rows: int, size: int) -> None:
        g = self._groups.get(key)
        if g is None:
            if len(self._groups) >= MAX_GROUPS:
                key = (key[0], key[1], key[2], "*", "*")
                g = self._groups.get(key)
            if g is None:
                g = self._groups[key] = [0, 0]
        g[0] += rows
        g[1] += size

    def flush(self) -> list[dict[str, Any]]:
        """Emit one status dict per group collected since the last flush."""
        groups, self._groups = self._groups, {}
        now = time.time()
        out = [{"event": k[0], "shipper": k[1], "reason": k[2], "query": k[3], "host": k[4], "rows": v[0],
                "bytes": v[1], "time": now} for k, v in groups.items()]
        for status in out:
            log.warning("%s: %s %d row(s) of %s (%d bytes): %s", status["shipper"], status["event"],
                        status["rows"], status["query"] or "?", status["bytes"], status["reason"])
            if self._on_status is not None:
                try:
                    self._on_status(status)
                except Exception:  # the daemon's callback must not break the pipeline
                    log.exception("on_status callback failed")
        return out


def status_line(name: str, snap: dict[str, Any]) -> str:
    """The periodic one-line summary of a shipper, for the log."""
    age = snap.get("oldest_event_age_s")
    return (f"shipper {name} [{snap['health']}]: queued {snap['queued_events']} ({snap['queued_bytes']} B), "
            f"spool {snap['spool_events']} ({snap['spool_bytes']} B), in flight {snap['in_flight']}, "
            f"acked {snap['acked']}, retried {snap['retried']}, dead-lettered {snap['dead_lettered']}, "
            f"dropped {snap['dropped_total']}, oldest {'-' if age is None else f'{age:.1f}s'}"
            + (f", last error: {snap['last_error']}" if snap["last_error"] else ""))
