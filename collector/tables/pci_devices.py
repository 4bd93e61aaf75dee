"""pci_devices: PCI devices from sysfs with pci.ids names."""

from __future__ import annotations

import os
from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table
from collector.tables import _hw

SPEC = table(
    'pci_devices',
    'PCI devices active on the host system.',
    columns=[
        col('pci_slot', TEXT, 'PCI Device used slot'),
        col('pci_class', TEXT, 'PCI Device class'),
        col('driver', TEXT, 'PCI Device used driver'),
        col('vendor', TEXT, 'PCI Device vendor'),
        col('vendor_id', TEXT, 'Hex encoded PCI Device vendor identifier', collate='nocase'),
        col('model', TEXT, 'PCI Device model'),
        col('model_id', TEXT, 'Hex encoded PCI Device model identifier', collate='nocase'),
        col('pci_class_id', TEXT, 'PCI Device class ID in hex format', collate='nocase'),
        col('pci_subclass_id', TEXT, 'PCI Device  subclass in hex format', collate='nocase'),
        col('pci_subclass', TEXT, 'PCI Device subclass'),
        col('subsystem_vendor_id', TEXT, 'Vendor ID of PCI device subsystem', collate='nocase'),
        col('subsystem_vendor', TEXT, 'Vendor of PCI device subsystem'),
        col('subsystem_model_id', TEXT, 'Model ID of PCI device subsystem', collate='nocase'),
        col('subsystem_model', TEXT, 'Device description of PCI device subsystem'),
    ],
    platforms=('darwin', 'linux'),
)


_PCI = "/sys/bus/pci/devices"
_NAMES = ["vendor", "model", "pci_class", "pci_subclass", "subsystem_vendor", "subsystem_model"]


def generate(ctx: Context) -> Iterator[Row]:
    """One row per device of /sys/bus/pci/devices, from its uevent (what udev hands osquery).

    Names come from pci.ids as osquery reads it; a device the database does not know gets "" (osquery's
    value). Without any pci.ids the name columns are NULL with a warning (osquery would return no rows).
    """
    base = ctx.path(_PCI)
    try:
        slots = sorted(os.listdir(base))
    except OSError:
        return
    want_names = any(ctx.used(c) for c in _NAMES)
    db, _src = _hw.load_ids(ctx.path, _hw.PCI_IDS) if want_names else (None, None)
    if want_names and db is None:
        ctx.missing(_NAMES, "no pci.ids database (install the pci.ids or hwdata package)", None, rows=len(slots))
    for slot in slots:
        ev = _hw.uevent(f"{base}/{slot}/uevent")
        if not ev:
            continue
        row: Row = {"pci_slot": ev.get("PCI_SLOT_NAME", slot), "driver": ev.get("DRIVER", "")}
        vid, did = _split_ids(ev.get("PCI_ID"))
        if vid is None:
            row["vendor_id"] = row["model_id"] = "0"  # osquery's legacy value for an unparsable PCI_ID
        else:
            row["vendor_id"], row["model_id"] = "0x" + vid, "0x" + did
        svid, sdid = _split_ids(ev.get("PCI_SUBSYS_ID"))
        if svid is not None:
            row["subsystem_vendor_id"], row["subsystem_model_id"] = "0x" + svid, "0x" + sdid
        cls = ev.get("PCI_CLASS", "").lower()
        cid = sid = None
        if len(cls) in (5, 6):
            cls = cls.zfill(6)
            cid, sid = cls[:2], cls[2:4]
            row["pci_class_id"], row["pci_subclass_id"] = "0x" + cid, "0x" + sid
        if db is not None:
            row["vendor"] = (db.vendor(vid) or "") if vid else ""
            row["model"] = (db.device(vid, did) or "") if vid else ""
            row["pci_class"] = (db.klass(cid) or "") if cid else ""
            row["pci_subclass"] = (db.subclass(cid, sid) or "") if cid else ""
            if svid is not None:
                row["subsystem_vendor"] = db.vendor(svid) or ""
                row["subsystem_model"] = db.subsystem(vid, did, svid, sdid) or "" if vid else ""
        yield row


def _split_ids(text: str | None) -> tuple[str, str] | tuple[None, None]:
    """"8086:0D57" -> ("8086", "0d57"): lower case, as pci.ids and osquery."""
    if not text:
        return None, None
    parts = text.lower().split(":")
    if len(parts) != 2 or not parts[1]:
        return None, None
    return parts[0], parts[1]
