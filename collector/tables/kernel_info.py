"""kernel_info: running kernel release and boot arguments from /proc/version and /proc/cmdline."""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'kernel_info',
    'Basic active kernel information.',
    columns=[
        col('version', TEXT, 'Kernel version', collate='version'),
        col('arguments', TEXT, 'Kernel arguments'),
        col('path', TEXT, 'Kernel path'),
        col('device', TEXT, 'Kernel device identifier'),
    ],
    cacheable=True,
    platforms=('darwin', 'linux', 'windows'),
)


def generate(ctx: Context) -> Iterator[Row]:
    """One row: /proc/version's release, /proc/cmdline split into BOOT_IMAGE (path), root= (device), rest.

    path is the BOOT_IMAGE value verbatim (it may carry a GRUB "(hd0,gpt2)" prefix, as in osquery); on hosts
    booted without BOOT_IMAGE (containers, firecracker, EFI stubs) path and device are NULL.
    """
    row: Row = {}
    try:
        args = _proc.read_text(ctx.path("/proc/cmdline")).split()
    except OSError as e:
        ctx.missing(["arguments", "path", "device"], f"cannot read /proc/cmdline: {e.strerror}")
    else:
        rest = []
        for arg in args:
            if arg.startswith("BOOT_IMAGE="):
                row["path"] = arg[len("BOOT_IMAGE="):]
            elif arg.startswith("root="):
                row["device"] = arg[len("root="):]
            else:
                rest.append(arg)
        row["arguments"] = " ".join(rest)
    try:
        words = _proc.read_text(ctx.path("/proc/version")).split()
    except OSError as e:
        ctx.missing(["version"], f"cannot read /proc/version: {e.strerror}")
    else:
        if len(words) > 2 and words[1] == "version":
            row["version"] = words[2]
    yield row
