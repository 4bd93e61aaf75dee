"""mounts: the mount table (/proc/mounts, osquery's source) with statfs(2) block and inode counts.

osquery reads /proc/mounts with getmntent (octal escapes such as \\040 decoded), sets device_alias to the
canonical path of the device, and leaves autofs mounts unstatted (statting would trigger the automount).
Where a mount cannot be statted the counts are NULL and one aggregated warning says why (osquery: 0).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from collector.table import BIGINT, TEXT, Context, Row, col, table

SPEC = table(
    'mounts',
    'System mounted devices and filesystems (not process specific).',
    columns=[
        col('device', TEXT, 'Mounted device'),
        col('device_alias', TEXT, 'Mounted device alias'),
        col('path', TEXT, 'Mounted device path'),
        col('type', TEXT, 'Mounted device type'),
        col('blocks_size', BIGINT, 'Block size in bytes'),
        col('blocks', BIGINT, 'Mounted device used blocks'),
        col('blocks_free', BIGINT, 'Mounted device blocks available to root users, a superset of blocks_available'),
        col('blocks_available', BIGINT, 'Mounted device blocks available to non-root users'),
        col('inodes', BIGINT, 'Mounted device used inodes'),
        col('inodes_free', BIGINT, 'Mounted device free inodes'),
        col('flags', TEXT, 'Mounted device flags'),
    ],
    platforms=('darwin', 'linux'),
)

_OCTAL = re.compile(r"\\([0-7]{3})")
_STAT_COLS = ("blocks_size", "blocks", "blocks_free", "blocks_available", "inodes", "inodes_free")


def unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def read_mounts(path: str) -> Iterator[tuple[str, str, str, str]]:
    """(device, mount point, type, options) per line of a /proc/mounts-format file."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "surrogateescape")
    except OSError:
        return
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4:
            yield unescape(parts[0]), unescape(parts[1]), unescape(parts[2]), unescape(parts[3])


def generate(ctx: Context) -> Iterator[Row]:
    want_stat = any(ctx.used(c) for c in _STAT_COLS)
    want_alias = ctx.used("device_alias")
    failed: dict[str, int] = {}
    try:
        for device, path, fstype, flags in read_mounts(ctx.path("/proc/mounts")):
            row: Row = {"device": device, "path": path, "type": fstype, "flags": flags}
            if want_alias:
                row["device_alias"] = _alias(ctx, device)
            if want_stat:
                if fstype == "autofs":
                    failed["autofs mount not statted (that would trigger the automount)"] = (
                        failed.get("autofs mount not statted (that would trigger the automount)", 0) + 1)
                else:
                    try:
                        vfs = os.statvfs(ctx.path(path))
                    except OSError as e:
                        reason = f"statfs failed: {os.strerror(e.errno) if e.errno else e}"
                        failed[reason] = failed.get(reason, 0) + 1
                    else:
                        row.update({
                            "blocks_size": vfs.f_bsize,
                            "blocks": vfs.f_blocks,
                            "blocks_free": vfs.f_bfree,
                            "blocks_available": vfs.f_bavail,
                            "inodes": vfs.f_files,
                            "inodes_free": vfs.f_ffree,
                        })
            yield row
    finally:
        for reason, n in failed.items():
            ctx.missing(_STAT_COLS, reason, None, rows=n)


def _alias(ctx: Context, device: str) -> str:
    """osquery's canonicalize_file_name(device); a device that is not a path (tmpfs, proc) stays as is."""
    if not device.startswith("/"):
        return device
    real = ctx.path(device)
    if not os.path.exists(real):
        return device
    return ctx.host_path(os.path.realpath(real))
