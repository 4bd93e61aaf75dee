"""Kernel uevent netlink messages (NETLINK_KOBJECT_UEVENT, group 1) into hardware_events rows.

A kernel message is b"ACTION@DEVPATH\\0KEY=VALUE\\0KEY=VALUE\\0...". udev's re-broadcast (group 2) starts
with b"libudev\\0" and a binary header instead; its properties are the same KEY=VALUE strings after the
header, plus udev's ID_* additions. The daemon (issue 4) reads the socket and feeds `to_row`.

osquery's subscriber keeps an event only when it has a DEVTYPE, a device node or a driver, a device node
or a model name, and its type is not in --hardware_disabled_types (default "partition").
Kernel messages carry no ID_* properties, so ids come from PRODUCT (usb: "vid/pid/bcdDevice" in bare hex)
or PCI_ID ("VVVV:DDDD"), and names from an optional ids database lookup.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

UDEV_MAGIC = 0xFEEDCAFE
DISABLED_TYPES = ("partition",)


def parse(message: bytes) -> dict[str, str] | None:
    """Properties of one netlink uevent message, or None when it is not a uevent."""
    if message.startswith(b"libudev\0"):
        return _parse_udev(message)
    head, sep, rest = message.partition(b"\0")
    if b"@" not in head:
        return None
    action, _, devpath = head.decode("utf-8", "replace").partition("@")
    props = {"ACTION": action, "DEVPATH": devpath}
    props.update(_pairs(rest if sep else b""))
    props.setdefault("ACTION", action)
    return props


def _parse_udev(message: bytes) -> dict[str, str] | None:
    # libudev header: "libudev\0", magic (network order), header size, properties offset and length, ...
    if len(message) < 24:
        return None
    (magic,) = struct.unpack_from("!I", message, 8)  # the only big-endian field
    if magic != UDEV_MAGIC:
        return None
    _header_size, off, length = struct.unpack_from("=III", message, 12)  # host byte order
    return _pairs(message[off:off + length]) if off + length <= len(message) else None


def _pairs(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in data.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep and key:
            out[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return out


def ids(props: dict[str, str]) -> tuple[str, str, str]:
    """(vendor_id, model_id, revision) from udev's ID_* keys, else the kernel's PRODUCT or PCI_ID."""
    vid, mid, rev = props.get("ID_VENDOR_ID", ""), props.get("ID_MODEL_ID", ""), props.get("ID_REVISION", "")
    if not vid and "PRODUCT" in props and props.get("SUBSYSTEM", "usb") == "usb":
        parts = props["PRODUCT"].split("/")
        if len(parts) == 3:
            vid, mid = parts[0].lower().zfill(4), parts[1].lower().zfill(4)
            rev = rev or parts[2].lower().zfill(4)
    if not vid and "PCI_ID" in props:
        v, _, m = props["PCI_ID"].lower().partition(":")
        vid, mid = v, m
    return vid, mid, rev


Names = Callable[[str, str, str], tuple[str | None, str | None]]


def to_row(props: dict[str, str], time: int, names: Names | None = None,
           disabled_types: tuple[str, ...] = DISABLED_TYPES) -> dict[str, Any] | None:
    """A hardware_events row, or None where osquery's subscriber drops the event.

    names(subsystem, vendor_id, model_id) -> (vendor name, model name) looks ids up (usb.ids/pci.ids).
    """
    devtype = props.get("DEVTYPE", "")
    devname = props.get("DEVNAME", "")
    path = ("/dev/" + devname if devname and not devname.startswith("/") else devname)
    driver = props.get("DRIVER", "")
    if not devtype or (not path and not driver):
        return None
    if devtype in disabled_types:
        return None
    vid, mid, rev = ids(props)
    vendor = props.get("ID_VENDOR_FROM_DATABASE", "")
    model = props.get("ID_MODEL_FROM_DATABASE", "")
    if names is not None and vid and (not vendor or not model):
        n_vendor, n_model = names(props.get("SUBSYSTEM", ""), vid, mid)
        vendor, model = vendor or n_vendor or "", model or n_model or ""
    if not path and not model:
        return None
    return {
        "action": props.get("ACTION", ""),
        "path": path,
        "type": devtype,
        "driver": driver,
        "vendor": vendor,
        "vendor_id": vid,
        "model": model,
        "model_id": mid,
        "serial": props.get("ID_SERIAL_SHORT", ""),
        "revision": rev,
        "time": time,
    }
