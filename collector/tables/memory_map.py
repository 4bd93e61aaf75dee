"""memory_map: the physical memory regions the kernel lists in /proc/iomem.

Unprivileged readers see every address as zero (kernel.kptr_restrict-style hiding); then start/end are
NULL with a warning rather than a wall of 0x00000000.
"""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'memory_map',
    'OS memory region map.',
    columns=[
        col('name', TEXT, 'Region name'),
        col('start', TEXT, 'Start address of memory region'),
        col('end', TEXT, 'End address of memory region'),
    ],
    platforms=('linux',),
    requires={"CAP_SYS_ADMIN": ["start", "end"]},
)



def parse(text: str) -> Iterator[tuple[str, str, str]]:
    """(start hex, end hex, name) per line; nested regions are indented, the indent is dropped."""
    for line in text.splitlines():
        span, sep, name = line.strip().partition(" : ")
        start, dash, end = span.partition("-")
        if not sep or not dash or not start or not end:
            continue
        yield start, end, name


def generate(ctx: Context) -> Iterator[Row]:
    try:
        text = _proc.read_text(ctx.path("/proc/iomem"))
    except OSError:
        return  # no /proc/iomem (non-Linux root, or a locked-down container): nothing to list
    regions = list(parse(text))
    hidden = bool(regions) and all(int(s, 16) == 0 and int(e, 16) == 0 for s, e, _ in regions)
    for start, end, name in regions:
        if hidden:
            yield {"name": name, "start": None, "end": None}
        else:
            yield {"name": name, "start": "0x" + start, "end": "0x" + end}
    if hidden:
        ctx.missing(["start", "end"], "the kernel shows /proc/iomem addresses as zero to this reader",
                    "CAP_SYS_ADMIN", rows=len(regions))
