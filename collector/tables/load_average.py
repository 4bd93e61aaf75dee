"""load_average: the 1/5/15 minute load averages from /proc/loadavg."""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'load_average',
    'Displays information about the system wide load averages.',
    columns=[
        col('period', TEXT, 'Period over which the average is calculated.'),
        col('average', TEXT, 'Load average over the specified period.'),
    ],
    platforms=('darwin', 'linux'),
    examples=('select * from load_average;',),
)


_PERIODS = ("1m", "5m", "15m")


def generate(ctx: Context) -> Iterator[Row]:
    try:
        fields = _proc.read_text(ctx.path("/proc/loadavg")).split()
        loads = [float(f) for f in fields[:3]]
    except (OSError, ValueError) as e:
        ctx.missing(["average"], f"cannot read /proc/loadavg: {e}")
        return
    for period, load in zip(_PERIODS, loads):
        # osquery formats with std::to_string(double): six decimals, e.g. "0.150000".
        yield {"period": period, "average": f"{load:.6f}"}
