"""Hardware helpers shared by pci_devices, usb_devices, smbios_tables, platform_info, cpu_info, system_info.

- sysfs attribute and uevent readers (what udev would have told osquery, read straight from the kernel);
- the pci.ids / usb.ids name databases (osquery reads pci.ids itself; udev's hwdb is built from both);
- an SMBIOS structure walker over /sys/firmware/dmi/tables/DMI (osquery's LinuxSMBIOSParser source).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from collector.tables import _proc

PCI_IDS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids", "/usr/share/pci.ids")
USB_IDS = ("/usr/share/misc/usb.ids", "/usr/share/hwdata/usb.ids", "/usr/share/usb.ids", "/var/lib/usbutils/usb.ids")
DMI_TABLE = "/sys/firmware/dmi/tables/DMI"


# --- sysfs --------------------------------------------------------------------------------------------
def attr(path: str) -> str | None:
    """A sysfs attribute's text without the trailing newline, or None when absent/unreadable."""
    try:
        return _proc.read(path, 1 << 16).decode("utf-8", "replace").strip()
    except OSError:
        return None


def uevent(path: str) -> dict[str, str]:
    """KEY=VALUE lines of a sysfs `uevent` file (the kernel's part of what udev reports)."""
    text = attr(path) or ""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


# --- pci.ids / usb.ids ----------------------------------------------------------------------------------
@dataclass
class _Node:
    name: str
    children: dict[str, _Node] = field(default_factory=dict)


class IdsDB:
    """Vendors (vendor -> device -> subsystem or interface) and classes (class -> subclass -> prog-if).

    pci.ids is ~1.3 MB and a full parse costs ~0.6 s in Python, so only the top-level offsets are indexed
    (one C regex pass) and a vendor's or class's block is parsed the first time a row asks for it.
    """

    _TOP = re.compile(r"^(C )?([0-9a-fA-F]{2,4})  ", re.M)
    _NEXT_TOP = re.compile(r"\n(?=[^\t#\n])")

    def __init__(self, text: str) -> None:
        self.text = text
        self._vendor_at: dict[str, int] = {}
        self._class_at: dict[str, int] = {}
        for m in self._TOP.finditer(text):
            if m.group(1):
                self._class_at.setdefault(m.group(2).lower(), m.start())
            elif len(m.group(2)) == 4:
                self._vendor_at.setdefault(m.group(2).lower(), m.start())
        self._vendors: dict[str, _Node | None] = {}
        self._classes: dict[str, _Node | None] = {}

    def _block(self, at: int | None) -> _Node | None:
        if at is None:
            return None
        m = self._NEXT_TOP.search(self.text, at + 1)
        parsed = parse_ids(self.text[at: m.start() if m else len(self.text)])
        nodes = list(parsed.vendors.values()) or list(parsed.classes.values())
        return nodes[0] if nodes else None

    def _v(self, vid: str) -> _Node | None:
        vid = vid.lower()
        if vid not in self._vendors:
            self._vendors[vid] = self._block(self._vendor_at.get(vid))
        return self._vendors[vid]

    def _c(self, cid: str) -> _Node | None:
        cid = cid.lower()
        if cid not in self._classes:
            self._classes[cid] = self._block(self._class_at.get(cid))
        return self._classes[cid]

    def vendor(self, vid: str) -> str | None:
        node = self._v(vid)
        return node.name if node else None

    def device(self, vid: str, did: str) -> str | None:
        node = self._v(vid)
        dev = node.children.get(did.lower()) if node else None
        return dev.name if dev else None

    def subsystem(self, vid: str, did: str, svid: str, sdid: str) -> str | None:
        node = self._v(vid)
        dev = node.children.get(did.lower()) if node else None
        sub = dev.children.get(f"{svid.lower()} {sdid.lower()}") if dev else None
        return sub.name if sub else None

    def klass(self, cid: str) -> str | None:
        node = self._c(cid)
        return node.name if node else None

    def subclass(self, cid: str, sid: str) -> str | None:
        node = self._c(cid)
        sub = node.children.get(sid.lower()) if node else None
        return sub.name if sub else None


@dataclass
class Parsed:
    vendors: dict[str, _Node] = field(default_factory=dict)
    classes: dict[str, _Node] = field(default_factory=dict)


def parse_ids(text: str) -> Parsed:
    """Parse the tab-indented pci.ids/usb.ids format.

    Top-level `vvvv  Name` lines are vendors, `C cc  Name` lines open a class; any other top-level keyword
    (usb.ids' AT, HID, R, ...) opens a section we do not use, so its indented lines are skipped.
    """
    db = Parsed()
    top: dict[str, _Node] | None = None
    level1: _Node | None = None
    level2: _Node | None = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        depth = len(line) - len(line.lstrip("\t"))
        body = line.lstrip("\t")
        key, _, name = body.partition(" ")
        name = name.strip()
        if depth == 0:
            level2 = None
            if line.startswith("C "):
                key, _, name = body[2:].partition(" ")
                top, level1 = db.classes, _Node(name.strip())
                db.classes[key.lower()] = level1
            elif len(key) == 4 and _is_hex(key):
                top, level1 = db.vendors, _Node(name)
                db.vendors[key.lower()] = level1
            else:
                top = level1 = None
        elif top is None or level1 is None:
            continue
        elif depth == 1:
            level2 = _Node(name)
            level1.children[key.lower()] = level2
        elif depth == 2 and level2 is not None:
            if top is db.vendors and len(key) == 4 and _is_hex(key):
                # pci.ids subsystem lines are `ssss dddd  Name`: the key is both ids.
                sub_dev, _, name = name.partition(" ")
                key = f"{key} {sub_dev}"
            level2.children[key.lower()] = _Node(name.strip())
    return db


def _is_hex(s: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in s) and bool(s)


_IDS_CACHE: dict[str, tuple[tuple[int, int], IdsDB]] = {}


def load_ids(ctx_path, candidates: tuple[str, ...]) -> tuple[IdsDB | None, str | None]:
    """The first readable ids database (parsed once per file version) and the host path it came from."""
    for host_path in candidates:
        real = ctx_path(host_path)
        try:
            st = os.stat(real)
        except OSError:
            continue
        stamp = (st.st_mtime_ns, st.st_size)
        hit = _IDS_CACHE.get(real)
        if hit is not None and hit[0] == stamp:
            return hit[1], host_path
        try:
            text = _proc.read(real, 64 << 20).decode("utf-8", "replace")
        except OSError:
            continue
        db = IdsDB(text)
        _IDS_CACHE[real] = (stamp, db)
        return db, host_path
    return None, None


# --- SMBIOS ---------------------------------------------------------------------------------------------
TYPE_DESCRIPTIONS = {
    0: "BIOS Information", 1: "System Information", 2: "Base Board or Module Information",
    3: "System Enclosure or Chassis", 4: "Processor Information", 5: "Memory Controller Information",
    6: "Memory Module Information", 7: "Cache Information", 8: "Port Connector Information",
    9: "System Slots", 10: "On Board Devices Information", 11: "OEM Strings",
    12: "System Configuration Options", 13: "BIOS Language Information", 14: "Group Associations",
    15: "System Event Log", 16: "Physical Memory Array", 17: "Memory Device",
    18: "32-bit Memory Error Information", 19: "Memory Array Mapped Address",
    20: "Memory Device Mapped Address", 21: "Built-in Pointing Device", 22: "Portable Battery",
    23: "System Reset", 24: "Hardware Security", 25: "System Power Controls", 26: "Voltage Probe",
    27: "Cooling Device", 28: "Temperature Probe", 29: "Electrical Current Probe",
    30: "Out-of-Band Remote Access", 31: "Boot Integrity Services", 32: "System Boot Information",
    33: "64-bit Memory Error Information", 34: "Management Device", 35: "Management Device Component",
    36: "Management Device Threshold Data", 37: "Memory Channel", 38: "IPMI Device Information",
    39: "System Power Supply", 40: "Additional Information", 41: "Onboard Devices Extended Info",
    126: "Inactive", 127: "End-of-Table", 130: "Memory SPD Data", 131: "OEM Processor Type",
    132: "OEM Processor Bus Speed",
}


@dataclass(frozen=True)
class Structure:
    """One SMBIOS structure: formatted area `data` (header included) and the whole entry `raw`."""

    index: int
    type: int
    length: int
    handle: int
    data: bytes
    raw: bytes

    @property
    def strings(self) -> bytes:
        return self.raw[self.length:]

    def string(self, offset: int) -> str:
        """The string a formatted-area byte points at; "" for index 0 or a corrupt string area (as osquery)."""
        if offset >= len(self.data):
            return ""
        index = self.data[offset]
        area = self.strings
        if index == 0 or not area or area[-1] != 0:
            return ""
        parts = area.split(b"\0")
        if index > len(parts) or (index == len(parts)):
            return ""
        return parts[index - 1].decode("utf-8", "replace").rstrip()

    def byte(self, offset: int) -> int | None:
        return self.data[offset] if offset < len(self.data) else None

    def word(self, offset: int) -> int | None:
        return struct.unpack_from("<H", self.data, offset)[0] if offset + 2 <= len(self.data) else None


def walk_smbios(blob: bytes) -> Iterator[Structure]:
    """Structures of a raw SMBIOS table, in order; stops at null padding or a length past the end."""
    pos, index, end = 0, 0, len(blob)
    while pos + 4 <= end:
        stype, length, handle = struct.unpack_from("<BBH", blob, pos)
        if pos + length > end or (length == 0 and handle == 0):
            break
        if length < 4:
            break  # corrupt: a header cannot be shorter than itself
        nxt = pos + length
        # Unformatted area: strings ending in a double NUL (just "\0\0" when there are none).
        while nxt + 4 <= end:
            if blob[nxt] == 0 and blob[nxt + 1] == 0:
                nxt += 2
                break
            nxt += 1
        else:
            nxt = end
        yield Structure(index, stype, length, handle, blob[pos:pos + length], blob[pos:nxt])
        index += 1
        pos = nxt


def read_smbios(ctx) -> tuple[bytes | None, str | None]:
    """(table, None), or (None, reason) with reason None when the host simply has no DMI table."""
    path = ctx.path(DMI_TABLE)
    try:
        return _proc.read(path, 16 << 20), None
    except FileNotFoundError:
        return None, None
    except PermissionError:
        return None, "permission denied reading " + DMI_TABLE
    except OSError as e:
        return None, f"cannot read {DMI_TABLE}: {e.strerror}"


# --- /proc/cpuinfo ----------------------------------------------------------------------------------------
def cpuinfo(path: str) -> list[dict[str, str]]:
    """One dict per processor block of /proc/cpuinfo ("key\\t: value" lines, blank-line separated)."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in _proc.read_text(path).splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def cpu_list(text: str) -> list[int]:
    """CPUs of a sysfs cpu list such as "0-3,8,10-11"."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out
