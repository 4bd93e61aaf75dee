"""acpi_tables: ACPI tables exposed by the kernel, with size and MD5 of their content."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'acpi_tables',
    'Firmware ACPI functional table common metadata and content.',
    columns=[
        col('name', TEXT, 'ACPI table name'),
        col('size', INTEGER, 'Size of compiled table data'),
        col('md5', TEXT, 'MD5 hash of table content', collate='nocase'),
    ],
    platforms=('darwin', 'linux'),
    requires={"CAP_DAC_READ_SEARCH": ["size", "md5"]},
)


_ACPI = "/sys/firmware/acpi/tables"


def generate(ctx: Context) -> Iterator[Row]:
    """Every table the kernel exposes under /sys/firmware/acpi/tables, including the dynamic/ and data/
    category folders (SSDTs loaded at runtime). Reading content needs root; size then comes from stat."""
    root = ctx.path(_ACPI)
    if not os.path.isdir(root):
        return
    want_md5 = ctx.used("md5")
    denied = 0
    stack = [root]
    while stack:
        ctx.check()
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            continue
        for entry in reversed([e for e in entries if e.is_dir(follow_symlinks=False)]):
            stack.append(entry.path)
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                continue
            row: Row = {"name": entry.name}
            try:
                content = _proc.read(entry.path, ctx.limits.read_max)
            except OSError:
                denied += 1
                row["size"] = None
            else:
                row["size"] = len(content)
                if want_md5:
                    row["md5"] = hashlib.md5(content).hexdigest()
            yield row
    if denied:
        ctx.missing(["size", "md5"], "permission denied reading ACPI tables", "CAP_DAC_READ_SEARCH",
                   rows=denied)
