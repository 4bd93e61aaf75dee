"""block_devices and disk_encryption: the kernel's block devices from sysfs, one parser for both tables.

block_devices, as osquery's udev enumeration of the "block" subsystem: every entry of /sys/class/block
(disks, partitions, loop, dm, zram), `name` the /dev node, `parent` the disk of a partition (and, where
osquery asks LVM, the device under a device-mapper target: its first /sys/.../slaves entry), `size` in
512-byte sectors, `block_size` the queue's logical block size (a partition's disk's), vendor/model from
the SCSI device above it. type/uuid/label come from udev's database (ID_FS_*) when present, else from the
device's own superblock (_blkprobe, what libblkid reads; needs read access to /dev, i.e. root).

disk_encryption, as osquery's libcryptsetup check per block device: a device-mapper target whose dm/uuid
starts with "CRYPT-" is encrypted, type "<LUKS1|LUKS2|PLAIN>-<cipher>-<mode>" (cipher from the LUKS
header of the device under it); a device whose parent is encrypted inherits it; otherwise
"not encrypted". Like osquery it returns nothing when not running as root.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _blkprobe

BLOCK_DEVICES_SPEC = table(
    'block_devices',
    'Block (buffered access) device file nodes: disks, ramdisks, and DMG containers.',
    columns=[
        col('name', TEXT, 'Block device name', index=True),
        col('parent', TEXT, 'Block device parent name'),
        col('vendor', TEXT, 'Block device vendor string'),
        col('model', TEXT, 'Block device model string identifier'),
        col('serial', TEXT, 'Disk serial number'),
        col('size', BIGINT, 'Block device size in blocks'),
        col('block_size', INTEGER, 'Block size in bytes'),
        col('uuid', TEXT, 'Block device Universally Unique Identifier', collate='nocase'),
        col('type', TEXT, 'Block device type string'),
        col('label', TEXT, 'Block device label string'),
    ],
    generator='gen_block_devices',
    platforms=('darwin', 'linux'),
    requires={"CAP_DAC_READ_SEARCH": ["type", "uuid", "label"]},
)

DISK_ENCRYPTION_SPEC = table(
    'disk_encryption',
    'Disk encryption status and information.',
    columns=[
        col('name', TEXT, 'Disk name', index=True),
        col('uuid', TEXT, 'Disk Universally Unique Identifier', collate='nocase'),
        col('encrypted', INTEGER, '1 If encrypted: true (disk is encrypted), else 0'),
        col('type', TEXT, 'Description of cipher type and mode if available'),
        col('encryption_status', TEXT, 'Disk encryption status with one of following values: encrypted | not encrypted | undefined'),
        col('uid', TEXT, 'Currently authenticated user if available', platforms=('darwin',)),
        col('user_uuid', TEXT, 'UUID of authenticated user if available', collate='nocase', platforms=('darwin',)),
        col('filevault_status', TEXT, 'FileVault status with one of following values: on | off | unknown', platforms=('darwin',)),
    ],
    generator='gen_disk_encryption',
    platforms=('darwin', 'linux'),
)

SPECS = [BLOCK_DEVICES_SPEC, DISK_ENCRYPTION_SPEC]


@dataclass
class BlockDev:
    kname: str  # sysfs name: sda1, dm-0
    node: str  # /dev path
    sysdir: str  # resolved /sys/devices/... path (under ctx.path)
    parent: str | None  # /dev path of the parent
    parent_kname: str | None
    devno: str | None  # "major:minor"


def _attr(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(65536).decode("utf-8", "replace").strip()
    except OSError:
        return None


def _uevent(sysdir: str) -> dict[str, str]:
    out = {}
    for line in (_attr(f"{sysdir}/uevent") or "").splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


def devices(ctx: Context) -> Iterator[BlockDev]:
    base = ctx.path("/sys/class/block")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return
    for kname in names:
        sysdir = os.path.realpath(f"{base}/{kname}")
        ev = _uevent(sysdir)
        node = "/dev/" + ev.get("DEVNAME", kname)
        parent_k = None
        if os.path.exists(f"{sysdir}/partition"):
            parent_k = os.path.basename(os.path.dirname(sysdir))
        else:
            try:
                slaves = sorted(os.listdir(f"{sysdir}/slaves"))
            except OSError:
                slaves = []
            if slaves and os.path.isdir(f"{sysdir}/dm"):
                parent_k = slaves[0]
        parent = None
        if parent_k:
            pev = _uevent(os.path.realpath(f"{base}/{parent_k}"))
            parent = "/dev/" + pev.get("DEVNAME", parent_k)
        devno = f"{ev['MAJOR']}:{ev['MINOR']}" if "MAJOR" in ev and "MINOR" in ev else _attr(f"{sysdir}/dev")
        yield BlockDev(kname, node, sysdir, parent, parent_k, devno)


def _udev(ctx: Context, devno: str | None) -> dict[str, str]:
    if not devno:
        return {}
    out = {}
    for line in (_attr(ctx.path(f"/run/udev/data/b{devno}")) or "").splitlines():
        if line.startswith("E:"):
            k, _, v = line[2:].partition("=")
            out[k] = v
    return out


def _scsi_attrs(sysdir: str) -> tuple[str | None, str | None]:
    d = sysdir
    while d.startswith("/") and d.count("/") > 3:
        d = os.path.dirname(d)
        if os.path.basename(os.path.realpath(f"{d}/subsystem")) == "scsi" and os.path.exists(f"{d}/model"):
            return _attr(f"{d}/vendor"), _attr(f"{d}/model")
    return None, None


def gen_block_devices(ctx: Context) -> Iterator[Row]:
    wanted = ctx.eq("name")
    want_fs = any(ctx.used(c) for c in ("type", "uuid", "label"))
    denied = 0
    try:
        for dev in devices(ctx):
            if wanted is not None and dev.node not in wanted:
                continue
            row, was_denied = block_row(ctx, dev, want_fs)
            denied += was_denied
            yield row
    finally:
        if denied:
            if os.geteuid() == 0:
                ctx.missing(["type", "uuid", "label"], "opening the device to probe its superblock was refused "
                            "(device cgroup or LSM) and udev has no record of it", None, rows=denied)
            else:
                ctx.missing(["type", "uuid", "label"], "cannot read the device to probe its superblock",
                            "CAP_DAC_READ_SEARCH",
                            rows=denied)


def block_row(ctx: Context, dev: BlockDev, want_fs: bool = True) -> tuple[Row, int]:
    size = _attr(f"{dev.sysdir}/size")
    lbs = _attr(f"{dev.sysdir}/queue/logical_block_size")
    if lbs is None and dev.parent_kname:
        lbs = _attr(ctx.path(f"/sys/class/block/{dev.parent_kname}/queue/logical_block_size"))
    vendor, model = _scsi_attrs(dev.sysdir)
    udev = _udev(ctx, dev.devno)
    row: Row = {
        "name": dev.node,
        "parent": dev.parent,
        "vendor": vendor,
        "model": model,
        "serial": udev.get("ID_SERIAL_SHORT") or _attr(f"{dev.sysdir}/device/serial") or None,
        "size": int(size) if size and size.isdigit() else None,
        "block_size": int(lbs) if lbs and lbs.isdigit() else None,
    }
    denied = 0
    if want_fs:
        if "ID_FS_TYPE" in udev:
            row["type"] = udev.get("ID_FS_TYPE") or None
            row["uuid"] = udev.get("ID_FS_UUID") or None
            row["label"] = udev.get("ID_FS_LABEL") or None
        elif row["size"]:
            try:
                row["type"], row["uuid"], row["label"] = _blkprobe.probe_device(ctx.path(dev.node))
            except OSError as e:
                denied = 1 if e.errno in (errno.EACCES, errno.EPERM) else 0
    return row, denied


def gen_disk_encryption(ctx: Context) -> Iterator[Row]:
    if os.geteuid() != 0:
        ctx.note("disk encryption status needs root (osquery returns no rows either)")
        return
    wanted = ctx.eq("name")
    devs = list(devices(ctx))
    by_node = {d.node: d for d in devs}
    crypt: dict[str, str] = {}  # node -> type of dm-crypt targets
    for d in devs:
        dm_uuid = _attr(f"{d.sysdir}/dm/uuid") or ""
        if dm_uuid.startswith("CRYPT-"):
            crypt[d.node] = _crypt_type(ctx, d, dm_uuid)

    def inherited(node: str | None, depth: int = 0) -> str | None:
        if node is None or depth > 16:
            return None
        if node in crypt:
            return crypt[node]
        d = by_node.get(node)
        return inherited(d.parent if d else None, depth + 1)

    for d in devs:
        if wanted is not None and d.node not in wanted:
            continue
        row, _ = block_row(ctx, d, ctx.used("uuid"))
        ctype = inherited(d.node)
        yield {
            "name": d.node,
            "uuid": row.get("uuid"),
            "encrypted": 1 if ctype is not None else 0,
            "type": ctype if ctype is not None else None,
            "encryption_status": "encrypted" if ctype is not None else "not encrypted",
        }


def _crypt_type(ctx: Context, dev: BlockDev, dm_uuid: str) -> str:
    kind = dm_uuid.split("-")[1] if dm_uuid.count("-") >= 1 else ""
    items = [kind] if kind else []
    if kind.startswith("LUKS") and dev.parent:
        try:
            cipher, mode = _blkprobe.luks_cipher(ctx.path(dev.parent))
        except OSError:
            cipher = mode = None
        items += [x for x in (cipher, mode) if x]
    return "-".join(items)
