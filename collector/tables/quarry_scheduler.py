"""osquery_scheduler: Quarry's own osquery_* table, one row per scheduled query of the running daemon.

Not an osquery table (spec.quarry_only). osquery_schedule must keep osquery's columns, so what Quarry's
scheduler adds lives here, joined on `name`: the interval in use, the next due time, runs delayed because the
previous results were still being delivered (a shipper queue full under the `block` policy), skips and
failures. The scheduler and its counters (collector.querystats) write these into the runtime as they change;
this generator copies them under the runtime's lock. `quarry query` and the shell schedule nothing: empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from collector.runtime import current
from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'osquery_scheduler',
    "Quarry: what the running daemon's scheduler does with each scheduled query (join osquery_schedule on "
    "name): timing, runs delayed by shipper backpressure, skips and failures. Empty outside the daemon "
    "(quarry query, quarry shell).",
    columns=[
        col('name', TEXT, 'The given name for this query, as in osquery_schedule'),
        col('splayed_interval', INTEGER, 'Interval in seconds in use: the configured one with the splay applied'),
        col('next_run', BIGINT, 'UNIX time the next run is due'),
        col('phase', TEXT, 'idle, executing (in a worker) or delivering (results handed to the logs and shippers)'),
        col('waiting', INTEGER, '1 when a due run waits for the previous results to be delivered (backpressure)'),
        col('waiting_since', BIGINT, 'UNIX time that run began waiting, NULL when not waiting'),
        col('delayed_runs', BIGINT, 'Runs that started late because the previous results were not yet delivered'),
        col('backpressure_ms', BIGINT, 'Total milliseconds those runs waited'),
        col('last_backpressure_ms', BIGINT, 'Milliseconds the latest delayed run waited'),
        col('last_delay_time', BIGINT, 'UNIX time the latest delayed run started, NULL if none'),
        col('skipped', BIGINT, 'Due runs not started: the previous run still executing, or several due during one '
                               'wait (they collapse into one delayed run)'),
        col('errors', BIGINT, 'Runs that failed (query error, timeout, stopped by the watchdog)'),
        col('last_error', TEXT, 'Error of the latest failed run'),
        col('last_error_time', BIGINT, 'UNIX time of the latest failed run, NULL if none'),
    ],
    utility=True,
    quarry_only=True,
    platforms=('linux',),
)


def generate(ctx: Context) -> Iterator[Row]:
    rt = current(ctx.runtime)
    with rt.lock:
        rows = [(name, replace(t)) for name, t in rt.timing.items()]
    for name, t in sorted(rows, key=lambda r: r[0]):
        yield {
            "name": name, "splayed_interval": t.splayed_interval, "next_run": t.next_run, "phase": t.phase,
            "waiting": int(t.waiting_since is not None), "waiting_since": t.waiting_since,
            "delayed_runs": t.delayed_runs, "backpressure_ms": t.backpressure_ms,
            "last_backpressure_ms": t.last_backpressure_ms, "last_delay_time": t.last_delay_time or None,
            "skipped": t.skipped, "errors": t.errors, "last_error": t.last_error,
            "last_error_time": t.last_error_time or None,
        }
