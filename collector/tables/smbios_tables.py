"""smbios_tables: SMBIOS structures of the raw DMI table."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _hw

SPEC = table(
    'smbios_tables',
    'BIOS (DMI) structure common details and content.',
    columns=[
        col('number', INTEGER, 'Table entry number'),
        col('type', INTEGER, 'Table entry type'),
        col('description', TEXT, 'Table entry description'),
        col('handle', INTEGER, 'Table entry handle'),
        col('header_size', INTEGER, 'Header size in bytes'),
        col('size', INTEGER, 'Table entry size in bytes'),
        col('md5', TEXT, 'MD5 hash of table entry', collate='nocase'),
    ],
    platforms=('darwin', 'linux'),
    requires={"CAP_DAC_READ_SEARCH": ["*"]},
)


def generate(ctx: Context) -> Iterator[Row]:
    """One row per SMBIOS structure of /sys/firmware/dmi/tables/DMI (root-only; absent on VMs without DMI).

    size and md5 cover the whole entry, formatted area plus its string set, as osquery does.
    """
    blob, reason = _hw.read_smbios(ctx)
    if blob is None:
        if reason:
            ctx.missing(["number", "type", "description", "handle", "header_size", "size", "md5"], reason,
                        "CAP_DAC_READ_SEARCH")
        return
    want_md5 = ctx.used("md5")
    for s in _hw.walk_smbios(blob):
        yield {
            "number": s.index,
            "type": s.type,
            "description": _hw.TYPE_DESCRIPTIONS.get(s.type, "Unknown"),
            "handle": s.handle,
            "header_size": s.length,
            "size": len(s.raw),
            "md5": hashlib.md5(s.raw).hexdigest() if want_md5 else None,
        }
