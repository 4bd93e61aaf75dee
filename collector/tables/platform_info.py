"""platform_info: firmware (BIOS/UEFI) details from SMBIOS type 0."""

from __future__ import annotations

import os
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _hw

SPEC = table(
    'platform_info',
    'Information about EFI/UEFI/ROM and platform/boot.',
    columns=[
        col('vendor', TEXT, 'Platform code vendor'),
        col('version', TEXT, 'Platform code version', collate='version'),
        col('date', TEXT, 'Self-reported platform code update date'),
        col('revision', TEXT, 'BIOS major and minor revision'),
        col('extra', TEXT, 'Platform-specific additional information'),
        col('firmware_type', TEXT, 'The type of firmware (uefi, bios, iboot, openfirmware, unknown).'),
        col('address', TEXT, 'Relative address of firmware mapping'),
        col('size', TEXT, 'Size in bytes of firmware'),
        col('volume_size', INTEGER, '(Optional) size of firmware volume'),
    ],
    platforms=('darwin', 'linux', 'windows'),
    requires={"CAP_DAC_READ_SEARCH": ["vendor", "version", "date", "address", "size"]},
)


_DMI_ID = "/sys/class/dmi/id"


def generate(ctx: Context) -> Iterator[Row]:
    """The SMBIOS type 0 (BIOS) structure, as osquery; /sys/class/dmi/id when the raw table is unreadable.

    A host without any DMI data (firecracker and other direct-kernel-boot VMs) has no firmware to describe:
    no row, as osquery.
    """
    firmware_type = "uefi" if os.path.isdir(ctx.path("/sys/firmware/efi")) else "bios"
    blob, reason = _hw.read_smbios(ctx)
    if blob is not None:
        for s in _hw.walk_smbios(blob):
            if s.type != 0 or len(s.raw) < 0x15:
                continue
            rom_size = s.byte(0x09)
            major, minor = s.byte(0x14), s.byte(0x15)
            yield {
                "vendor": s.string(0x04),
                "version": s.string(0x05),
                "date": s.string(0x08),
                # Revision bytes exist from SMBIOS 2.4 on; older tables leave it unknown.
                "revision": f"{major}.{minor}" if major is not None and minor is not None else None,
                "extra": "",
                "firmware_type": firmware_type,
                "address": f"0x{s.word(0x06):04x}" if s.word(0x06) is not None else None,
                # ROM size byte n means (n+1) * 64 KiB.
                "size": str(((rom_size or 0) + 1) * 64 * 1024) if rom_size is not None else None,
                "volume_size": 0,
            }
        return
    base = ctx.path(_DMI_ID)
    vendor = _hw.attr(base + "/bios_vendor")
    if vendor is None:
        if reason:
            ctx.missing(["vendor", "version", "date"], reason, "CAP_DAC_READ_SEARCH")
        return
    if reason:
        ctx.missing(["address", "size"], reason + " (only the SMBIOS table has them)", "CAP_DAC_READ_SEARCH")
    yield {
        "vendor": vendor,
        "version": _hw.attr(base + "/bios_version"),
        "date": _hw.attr(base + "/bios_date"),
        "revision": _hw.attr(base + "/bios_release"),
        "extra": "",
        "firmware_type": firmware_type,
        "volume_size": 0,
    }
