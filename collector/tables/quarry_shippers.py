"""osquery_shippers: Quarry's own osquery_* table, one row per configured shipper of the running daemon.

Not an osquery table (spec.quarry_only). The daemon's status publisher (collector.status) hands the pipeline's
figures to the runtime every --status_interval seconds; this generator only reads them, so the rows are at
most that old. `quarry query` and the shell run no pipeline: there the table is empty.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson

from collector.runtime import current
from collector.table import BIGINT, DOUBLE, INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'osquery_shippers',
    "Quarry: the running daemon's shippers (SIEM destinations) with their delivery counters, updated every "
    "--status_interval seconds. Empty outside the daemon (quarry query, quarry shell).",
    columns=[
        col('name', TEXT, 'Shipper name from the config'),
        col('type', TEXT, 'Shipper type: file, splunk_hec, elasticsearch, opensearch, logstash, kafka'),
        col('format', TEXT, 'Event format sent: osquery or ecs'),
        col('health', TEXT, 'starting, ok, retrying, unreachable (its probe gets no answer) or stopped'),
        col('failing', INTEGER, '1 when sends fail, the shipper could not open, or it stopped, else 0'),
        col('queued_events', BIGINT, 'Events in the in-memory queue'),
        col('queued_bytes', BIGINT, 'Bytes in the in-memory queue'),
        col('in_flight', BIGINT, 'Events inside a request right now'),
        col('sent', BIGINT, 'Events handed to the destination, every attempt'),
        col('requests', BIGINT, 'Requests made to the destination'),
        col('acked', BIGINT, 'Events the destination acknowledged'),
        col('retried', BIGINT, 'Events sent again after a temporary error'),
        col('dropped', BIGINT, 'Events dropped, all reasons'),
        col('dropped_by_reason', TEXT, 'JSON object: events dropped per reason'),
        col('dead_lettered', BIGINT, 'Events written to the dead-letter file'),
        col('spool_events', BIGINT, 'Events in the disk spool not yet acknowledged'),
        col('spool_bytes', BIGINT, 'Bytes of the disk spool'),
        col('oldest_event_age', DOUBLE, 'Age in seconds of the oldest unacknowledged event, NULL if none'),
        col('backpressure_wait', DOUBLE, 'Seconds producers waited for room in this shipper (block policy)'),
        col('last_error', TEXT, 'Last error of the shipper (secrets removed)'),
        col('last_error_time', BIGINT, 'UNIX time of the last error, NULL if none'),
    ],
    utility=True,
    quarry_only=True,
    platforms=('linux',),
)


def generate(ctx: Context) -> Iterator[Row]:
    rt = current(ctx.runtime)
    with rt.lock:
        shippers = dict(rt.shippers)
    for name, s in sorted(shippers.items()):
        dropped = s.get("dropped") or {}
        err_time = s.get("last_error_time")
        yield {
            "name": name, "type": s.get("type"), "format": s.get("format"), "health": s.get("health"),
            "failing": int(bool(s.get("failing"))), "queued_events": s.get("queued_events"),
            "queued_bytes": s.get("queued_bytes"), "in_flight": s.get("in_flight"), "sent": s.get("sent"),
            "requests": s.get("requests"), "acked": s.get("acked"), "retried": s.get("retried"),
            "dropped": s.get("dropped_total"), "dropped_by_reason": orjson.dumps(dropped).decode(),
            "dead_lettered": s.get("dead_lettered"), "spool_events": s.get("spool_events"),
            "spool_bytes": s.get("spool_bytes"), "oldest_event_age": s.get("oldest_event_age_s"),
            "backpressure_wait": s.get("put_wait_s"), "last_error": s.get("last_error") or None,
            "last_error_time": int(err_time) if err_time else None,
        }
