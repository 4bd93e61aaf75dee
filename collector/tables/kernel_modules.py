"""kernel_modules: loaded modules from /proc/modules (the only source osquery reads on Linux)."""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import BIGINT, TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'kernel_modules',
    'Linux kernel modules both loaded and within the load search path.',
    columns=[
        col('name', TEXT, 'Module name'),
        col('size', BIGINT, 'Size of module content'),
        col('used_by', TEXT, 'Module reverse dependencies'),
        col('status', TEXT, 'Kernel module status'),
        col('address', TEXT, 'Kernel module address'),
    ],
    platforms=('linux',),
)


def parse(text: str) -> Iterator[Row]:
    # "name size refcount deps, state address [taint]"; deps is "-" or a comma-terminated list.
    for line in text.splitlines():
        f = line.split()
        if len(f) < 6:
            continue
        f = [x[:-1] if x.endswith(",") else x for x in f]
        yield {
            "name": f[0],
            "size": int(f[1]) if f[1].isdigit() else None,
            "used_by": f[3],
            "status": f[4],
            "address": f[5],
        }


def generate(ctx: Context) -> Iterator[Row]:
    try:
        text = _proc.read_text(ctx.path("/proc/modules"))
    except FileNotFoundError:
        # Kernels built without module support (and gVisor-style sandboxes) have no /proc/modules.
        ctx.note("/proc/modules is absent: this kernel exposes no loadable modules")
        return
    yield from parse(text)
