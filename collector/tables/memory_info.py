"""memory_info: /proc/meminfo in bytes."""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import BIGINT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'memory_info',
    'Main memory information in bytes.',
    columns=[
        col('memory_total', BIGINT, 'Total amount of physical RAM, in bytes'),
        col('memory_free', BIGINT, 'The amount of physical RAM, in bytes, left unused by the system'),
        col('memory_available', BIGINT, 'The amount of physical RAM, in bytes, available for starting new applications, without swapping'),
        col('buffers', BIGINT, 'The amount of physical RAM, in bytes, used for file buffers'),
        col('cached', BIGINT, 'The amount of physical RAM, in bytes, used as cache memory'),
        col('swap_cached', BIGINT, 'The amount of swap, in bytes, used as cache memory'),
        col('active', BIGINT, 'The total amount of buffer or page cache memory, in bytes, that is in active use'),
        col('inactive', BIGINT, 'The total amount of buffer or page cache memory, in bytes, that are free and available'),
        col('swap_total', BIGINT, 'The total amount of swap available, in bytes'),
        col('swap_free', BIGINT, 'The total amount of swap free, in bytes'),
    ],
    platforms=('linux',),
)


_KEYS = {
    "MemTotal": "memory_total", "MemFree": "memory_free", "MemAvailable": "memory_available",
    "Buffers": "buffers", "Cached": "cached", "SwapCached": "swap_cached", "Active": "active",
    "Inactive": "inactive", "SwapTotal": "swap_total", "SwapFree": "swap_free",
}


def generate(ctx: Context) -> Iterator[Row]:
    try:
        text = _proc.read_text(ctx.path("/proc/meminfo"))
    except OSError as e:
        ctx.missing(list(_KEYS.values()), f"cannot read /proc/meminfo: {e.strerror}")
        return
    row: Row = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        column = _KEYS.get(key)
        if column is None:
            continue
        parts = rest.split()
        if parts and parts[0].isdigit():
            # /proc/meminfo says "kB" but means KiB; the table is in bytes.
            row[column] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    absent = [c for c in _KEYS.values() if c not in row]
    if absent:
        ctx.missing(absent, "not reported by this kernel's /proc/meminfo")
    yield row
