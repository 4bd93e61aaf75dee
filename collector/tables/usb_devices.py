"""usb_devices: USB devices from sysfs with usb.ids names."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _hw

SPEC = table(
    'usb_devices',
    'USB devices that are actively plugged into the host system.',
    columns=[
        col('usb_address', INTEGER, 'USB Device used address'),
        col('usb_port', INTEGER, 'USB Device used port'),
        col('vendor', TEXT, 'USB Device vendor string'),
        col('vendor_id', TEXT, 'Hex encoded USB Device vendor identifier', collate='nocase'),
        col('version', TEXT, 'USB Device version number', collate='version'),
        col('model', TEXT, 'USB Device model string'),
        col('model_id', TEXT, 'Hex encoded USB Device model identifier', collate='nocase'),
        col('serial', TEXT, 'USB Device serial connection'),
        col('class', TEXT, 'USB Device class'),
        col('subclass', TEXT, 'USB Device subclass'),
        col('protocol', TEXT, 'USB Device protocol'),
        col('removable', INTEGER, '1 If USB device is removable else 0'),
    ],
    platforms=('darwin', 'linux'),
)


_USB = "/sys/bus/usb/devices"


def generate(ctx: Context) -> Iterator[Row]:
    """One row per USB device (not interface) of /sys/bus/usb/devices.

    osquery reads udev properties; the kernel gives the same facts: BUSNUM/DEVNUM/TYPE from uevent, ids
    and strings from the idVendor/idProduct/bcdDevice/serial/manufacturer/product attributes, names
    from usb.ids (udev's hwdb source). vendor/model fall back to the device's own strings with udev's
    whitespace-to-underscore rule when usb.ids does not know the ids.
    """
    base = ctx.path(_USB)
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return
    db, _src = _hw.load_ids(ctx.path, _hw.USB_IDS) if ctx.used("vendor") or ctx.used("model") else (None, None)
    for name in names:
        if ":" in name:
            continue  # interfaces (1-1:1.0) carry no BUSNUM/DEVNUM; osquery skips them too
        dev = f"{base}/{name}"
        ev = _hw.uevent(dev + "/uevent")
        bus, num = ev.get("BUSNUM"), ev.get("DEVNUM")
        if not bus or not num:
            continue
        vid = (_hw.attr(dev + "/idVendor") or "").lower()
        pid = (_hw.attr(dev + "/idProduct") or "").lower()
        row: Row = {
            "usb_address": int(bus),
            "usb_port": int(num),
            "vendor_id": vid,
            "model_id": pid,
            "version": _hw.attr(dev + "/bcdDevice") or "",
            "serial": _udev_string(_hw.attr(dev + "/serial")),
        }
        parts = ev.get("TYPE", "").split("/")
        row["class"], row["subclass"], row["protocol"] = parts if len(parts) == 3 else ("", "", "")
        if ctx.used("vendor") or ctx.used("model"):
            vendor = db.vendor(vid) if db and vid else None
            model = db.device(vid, pid) if db and vid and pid else None
            row["vendor"] = vendor or _udev_string(_hw.attr(dev + "/manufacturer"))
            row["model"] = model or _udev_string(_hw.attr(dev + "/product"))
        removable = _hw.attr(dev + "/removable")
        # The column says 1 removable, 0 not; the kernel may not know (-1, osquery's value for "unknown").
        row["removable"] = {"removable": 1, "fixed": 0}.get(removable or "", -1)
        yield row


def _udev_string(value: str | None) -> str:
    """udev's ID_* rendering of a device string: trimmed, whitespace runs become one underscore."""
    return re.sub(r"\s+", "_", value.strip()) if value else ""
