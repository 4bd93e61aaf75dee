"""uptime: time since boot from /proc/uptime."""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'uptime',
    'Track time passed since last boot. Some systems track this as calendar time, some as runtime.',
    columns=[
        col('days', INTEGER, 'Days of uptime'),
        col('hours', INTEGER, 'Hours of uptime'),
        col('minutes', INTEGER, 'Minutes of uptime'),
        col('seconds', INTEGER, 'Seconds of uptime'),
        col('total_seconds', BIGINT, 'Total uptime seconds'),
    ],
    platforms=('darwin', 'linux', 'windows'),
)


def generate(ctx: Context) -> Iterator[Row]:
    try:
        # osquery truncates the float seconds of /proc/uptime (sysinfo().uptime does the same).
        total = int(float(_proc.read_text(ctx.path("/proc/uptime")).split()[0]))
    except (OSError, ValueError, IndexError) as e:
        ctx.missing(["days", "hours", "minutes", "seconds", "total_seconds"], f"cannot read /proc/uptime: {e}")
        return
    yield {
        "days": total // 86400,
        "hours": total % 86400 // 3600,
        "minutes": total % 3600 // 60,
        "seconds": total % 60,
        "total_seconds": total,
    }
