"""Filesystem/container signatures of a block device's first 68 KiB: what blkid would report.

Used when udev's database (/run/udev/data) has no ID_FS_* entries for a device (containers, minimal VMs).
Covers the types osquery users meet on Linux hosts: ext2/3/4, xfs, btrfs, swap, LUKS, LVM2 PV, vfat,
squashfs. Returns (type, uuid, label), each None when absent.
"""

from __future__ import annotations

import json
import os
import uuid as uuidlib

PROBE_BYTES = 0x10000 + 0x200  # btrfs keeps its superblock at 64 KiB


def _text(raw: bytes) -> str | None:
    s = raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    return s or None


def _uuid(raw: bytes) -> str | None:
    return None if not any(raw) else str(uuidlib.UUID(bytes=bytes(raw)))


def probe(buf: bytes) -> tuple[str | None, str | None, str | None]:
    n = len(buf)
    if buf[:6] == b"LUKS\xba\xbe":
        version = int.from_bytes(buf[6:8], "big")
        label = _text(buf[24:72]) if version == 2 else None
        return "crypto_LUKS", _text(buf[168:208]), label
    if buf[:4] == b"XFSB":
        return "xfs", _uuid(buf[32:48]), _text(buf[108:120])
    if buf[:4] in (b"hsqs", b"sqsh"):
        return "squashfs", None, None
    if n >= 1024 + 128 and buf[1024 + 56 : 1024 + 58] == b"\x53\xef":
        sb = buf[1024:]
        compat = int.from_bytes(sb[92:96], "little")
        incompat = int.from_bytes(sb[96:100], "little")
        if incompat & 0x8:
            fstype = "jbd"  # an external ext3/4 journal device
        elif incompat & (0x40 | 0x80 | 0x200):  # extents, 64bit, flex_bg
            fstype = "ext4"
        elif compat & 0x4:
            fstype = "ext3"
        else:
            fstype = "ext2"
        return fstype, _uuid(sb[104:120]), _text(sb[120:136])
    if n >= 0x10040 + 8 and buf[0x10040:0x10048] == b"_BHRfS_M":
        return "btrfs", _uuid(buf[0x10020:0x10030]), _text(buf[0x1012B:0x1022B])
    if n >= 544 + 32 and buf[512:520] == b"LABELONE" and buf[536:544] == b"LVM2 001":
        raw = buf[544:576].decode("ascii", "replace")
        parts, pos = [], 0
        for size in (6, 4, 4, 4, 4, 4, 6):
            parts.append(raw[pos : pos + size])
            pos += size
        return "LVM2_member", "-".join(parts), None
    for page in (4096, 8192, 16384, 65536):
        if n >= page and buf[page - 10 : page] in (b"SWAPSPACE2", b"SWAP-SPACE"):
            return "swap", _uuid(buf[1024 + 12 : 1024 + 28]), _text(buf[1024 + 28 : 1024 + 44])
    if n >= 512 and buf[510:512] == b"\x55\xaa":
        if buf[0x52:0x5A] == b"FAT32   ":
            serial, label = buf[0x43:0x47], buf[0x47:0x52]
        elif buf[0x36:0x3B] in (b"FAT12", b"FAT16"):
            serial, label = buf[0x27:0x2B], buf[0x2B:0x36]
        else:
            return None, None, None
        v = int.from_bytes(serial, "little")
        lab = _text(label)
        return "vfat", f"{v >> 16:04X}-{v & 0xFFFF:04X}", None if lab == "NO NAME" else lab
    return None, None, None


def probe_device(path: str) -> tuple[str | None, str | None, str | None]:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        buf = os.pread(fd, PROBE_BYTES, 0)
    finally:
        os.close(fd)
    return probe(buf)


def luks_cipher(path: str) -> tuple[str | None, str | None]:
    """(cipher, mode) from a LUKS header: "aes", "xts-plain64" (what libcryptsetup reports)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        head = os.pread(fd, 4096, 0)
        if head[:6] != b"LUKS\xba\xbe":
            return None, None
        if int.from_bytes(head[6:8], "big") == 1:
            return _text(head[8:40]), _text(head[40:72])
        hdr_size = int.from_bytes(head[8:16], "big")
        meta = os.pread(fd, max(0, min(hdr_size, 4 << 20) - 4096), 4096)
    finally:
        os.close(fd)
    try:
        doc = json.loads(meta.split(b"\0", 1)[0])
        enc = next(iter(doc.get("segments", {}).values()))["encryption"]
    except (ValueError, StopIteration, KeyError, TypeError, AttributeError):
        return None, None
    cipher, _, mode = str(enc).partition("-")
    return cipher or None, mode or None
