"""pci_devices, usb_devices, acpi_tables, smbios_tables, platform_info, hardware_events and the uevent parser."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from types import SimpleNamespace

from collector.tables import _uevent


# --- pci_devices ------------------------------------------------------------------------------------
def test_pci_fixture(engine_at, fixtures):
    rows = {r["pci_slot"]: r for r in engine_at(fixtures / "pci_devices").query("SELECT * FROM pci_devices").dicts()}
    host = rows["0000:00:00.0"]
    assert host["vendor_id"] == "0x8086" and host["model_id"] == "0x1237" and host["driver"] == ""
    assert host["vendor"] == "Intel Corporation" and host["model"] == "440FX - 82441FX PMC [Natoma]"
    assert (host["pci_class_id"], host["pci_subclass_id"]) == ("0x06", "0x00")
    assert host["pci_class"] == "Bridge" and host["pci_subclass"] == "Host bridge"
    assert host["subsystem_vendor"] == "Red Hat, Inc." and host["subsystem_model"] == "Qemu virtual machine"
    sata = rows["0000:00:1f.2"]
    assert sata["driver"] == "ahci" and sata["pci_class_id"] == "0x01" and sata["pci_subclass"] == "SATA controller"
    unknown = rows["0000:03:00.0"]
    assert unknown["vendor"] == "" and unknown["model"] == "" and unknown["vendor_id"] == "0xabcd"
    assert unknown["pci_subclass"] == "Non-Volatile memory controller"


def test_pci_live(engine):
    base = "/sys/bus/pci/devices"
    slots = sorted(os.listdir(base)) if os.path.isdir(base) else []
    rows = engine.query("SELECT pci_slot, vendor_id, model_id, driver FROM pci_devices").rows
    assert [r[0] for r in rows] == slots
    for slot, vid, mid, driver in rows:
        assert vid == Path(f"{base}/{slot}/vendor").read_text().strip()
        assert mid == Path(f"{base}/{slot}/device").read_text().strip()
        link = f"{base}/{slot}/driver"
        assert driver == (os.path.basename(os.readlink(link)) if os.path.islink(link) else "")


def test_pci_without_ids_db_warns(engine_at, fixtures, tmp_path):
    os.symlink(fixtures / "pci_devices/sys", tmp_path / "sys")
    res = engine_at(tmp_path).query("SELECT vendor, vendor_id FROM pci_devices")
    assert len(res.rows) == 3 and all(v is None for v, _ in res.rows)
    assert any("pci.ids" in w for w in res.warnings)


# --- usb_devices ------------------------------------------------------------------------------------
def test_usb_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "usb_devices").query("SELECT * FROM usb_devices ORDER BY usb_port").dicts()
    assert len(rows) == 2  # the interface 1-1:1.0 is not a device
    hub, disk = rows
    assert (hub["usb_address"], hub["usb_port"]) == (1, 1)
    assert hub["vendor"] == "Linux Foundation" and hub["model"] == "2.0 root hub"
    assert hub["vendor_id"] == "1d6b" and hub["model_id"] == "0002" and hub["version"] == "0606"
    assert (hub["class"], hub["subclass"], hub["protocol"]) == ("9", "0", "0") and hub["removable"] == -1
    assert disk["usb_port"] == 6 and disk["vendor"] == "Acme_Corp" and disk["model"] == "Flash_Disk"
    assert disk["serial"] == "SN_42" and disk["removable"] == 1


def test_usb_live(engine):
    base = "/sys/bus/usb/devices"
    expected = sorted(d for d in os.listdir(base) if ":" not in d) if os.path.isdir(base) else []
    assert len(engine.query("SELECT * FROM usb_devices").rows) == len(expected)


# --- acpi_tables -----------------------------------------------------------------------------------
def test_acpi_fixture(engine_at, fixtures):
    rows = {r["name"]: r for r in engine_at(fixtures / "acpi_tables").query("SELECT * FROM acpi_tables").dicts()}
    assert set(rows) == {"APIC", "DSDT", "SSDT1"}
    assert rows["DSDT"]["size"] == 7 and rows["DSDT"]["md5"] == hashlib.md5(b"DSDT\x00\x01\x02").hexdigest()
    assert rows["SSDT1"]["md5"] == hashlib.md5(b"SSDT-dynamic").hexdigest()


def test_acpi_live(engine):
    base = "/sys/firmware/acpi/tables"
    rows = {r["name"]: r for r in engine.query("SELECT * FROM acpi_tables").dicts()}
    if not os.path.isdir(base):
        assert rows == {}
        return
    for name in os.listdir(base):
        path = f"{base}/{name}"
        if os.path.isfile(path) and os.access(path, os.R_OK):
            data = Path(path).read_bytes()
            assert rows[name]["size"] == len(data) and rows[name]["md5"] == hashlib.md5(data).hexdigest()


# --- SMBIOS (a DMI blob built with struct) --------------------------------------------------------------
def _structure(stype: int, handle: int, body: bytes, strings: list[bytes]) -> bytes:
    formatted = struct.pack("<BBH", stype, 4 + len(body), handle) + body
    area = b"".join(s + b"\0" for s in strings) + b"\0" if strings else b"\0\0"
    return formatted + area


def _dmi_blob() -> bytes:
    # Type 0 BIOS: vendor=1 version=2 start segment 0xe800, date=3, ROM size byte 0x3f, chars, ext, rev 2.7
    bios = struct.pack("<BBHBB", 1, 2, 0xE800, 3, 0x3F) + b"\0" * 8 + b"\0\0" + bytes([2, 7]) + b"\xff\xff"
    system = bytes([1, 2, 3, 4]) + b"\x11" * 16 + bytes([6, 0, 0])
    board = bytes([1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0])
    cpu = bytearray(0x30 - 4)
    def put(off: int, value: bytes) -> None:
        cpu[off - 4: off - 4 + len(value)] = value
    put(0x04, b"\x01"); put(0x05, b"\x03"); put(0x07, b"\x02"); put(0x10, b"\x03")
    put(0x14, struct.pack("<H", 3800)); put(0x16, struct.pack("<H", 2400)); put(0x18, b"\x41")
    put(0x23, b"\x08"); put(0x25, b"\x10"); put(0x26, struct.pack("<H", 0x04))
    return (
        _structure(0, 0x0000, bios, [b"SeaBIOS", b"1.16.0-debian", b"04/01/2014"])
        + _structure(1, 0x0100, system, [b"QEMU", b"Standard PC (Q35)", b"pc-q35-7.2", b"SER123  "])
        + _structure(2, 0x0200, board, [b"ACME", b"Board X", b"v1", b"BSN"])
        + _structure(4, 0x0400, bytes(cpu), [b"CPU 0", b"Intel", b"Xeon Test"])
        + _structure(127, 0x7F00, b"", [])
        + b"\0" * 16
    )


def _dmi_root(tmp_path):
    (tmp_path / "sys/firmware/dmi/tables").mkdir(parents=True)
    blob = _dmi_blob()
    (tmp_path / "sys/firmware/dmi/tables/DMI").write_bytes(blob)
    return blob


def test_smbios_tables_fixture(tmp_path, engine_at):
    blob = _dmi_root(tmp_path)
    rows = engine_at(tmp_path).query("SELECT * FROM smbios_tables").dicts()
    assert [(r["number"], r["type"], r["handle"]) for r in rows] == [(0, 0, 0), (1, 1, 0x100), (2, 2, 0x200),
                                                                      (3, 4, 0x400), (4, 127, 0x7F00)]
    assert rows[0]["description"] == "BIOS Information" and rows[4]["description"] == "End-of-Table"
    first_size = rows[0]["size"]
    assert rows[0]["header_size"] == 0x18 and first_size == 0x18 + len(b"SeaBIOS\x001.16.0-debian\x0004/01/2014\x00\x00")
    assert rows[0]["md5"] == hashlib.md5(blob[:first_size]).hexdigest()
    assert rows[4]["size"] == 6  # header only plus the empty string set


def test_platform_info_fixture(tmp_path, engine_at):
    _dmi_root(tmp_path)
    rows = engine_at(tmp_path).query("SELECT * FROM platform_info").dicts()
    assert rows == [{"vendor": "SeaBIOS", "version": "1.16.0-debian", "date": "04/01/2014", "revision": "2.7",
                     "extra": "", "firmware_type": "bios", "address": "0xe800", "size": str(64 * 64 * 1024),
                     "volume_size": 0}]


def test_system_info_and_cpu_info_from_smbios(tmp_path, engine_at):
    _dmi_root(tmp_path)
    e = engine_at(tmp_path)
    r = e.query("SELECT * FROM system_info").dicts()[0]
    assert (r["hardware_vendor"], r["hardware_model"], r["hardware_version"]) == ("QEMU", "Standard PC (Q35)",
                                                                                  "pc-q35-7.2")
    assert r["hardware_serial"] == "SER123" and r["board_vendor"] == "ACME" and r["board_serial"] == "BSN"
    cpu = e.query("SELECT * FROM cpu_info").dicts()
    assert cpu == [{"device_id": "CPU0", "model": "Xeon Test", "manufacturer": "Intel", "processor_type": "3",
                    "cpu_status": 0x41, "number_of_cores": "8", "logical_processors": 16, "address_width": "64",
                    "current_clock_speed": 2400, "max_clock_speed": 3800, "socket_designation": "CPU 0"}]


def test_smbios_absent_live(engine):
    rows = engine.query("SELECT * FROM smbios_tables").rows
    if not os.path.exists("/sys/firmware/dmi/tables/DMI"):
        assert rows == []
        assert engine.query("SELECT * FROM platform_info").rows == []
    else:
        assert len(rows) > 0


# --- hardware_events and the uevent parser -------------------------------------------------------------
def test_hardware_events_disabled_in_shell(engine):
    res = engine.query("SELECT * FROM hardware_events")
    assert res.rows == [] and any("events are disabled" in w for w in res.warnings)


def test_hardware_events_reads_runtime_store():
    from collector.engine import Engine

    row = {"action": "add", "path": "/dev/sdb", "type": "disk", "driver": "", "vendor": "", "vendor_id": "abcd",
           "model": "", "model_id": "1234", "serial": "", "revision": "", "time": 1700000000}
    store = SimpleNamespace(rows=lambda table: [row] if table == "hardware_events" else [])
    e = Engine(runtime=SimpleNamespace(events=store))
    got = e.query("SELECT * FROM hardware_events WHERE path <> '' OR model <> ''").dicts()
    assert got == [row]


USB_ADD = (b"add@/devices/pci0000:00/0000:00:14.0/usb1/1-2\0ACTION=add\0"
           b"DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2\0SUBSYSTEM=usb\0MAJOR=189\0MINOR=3\0"
           b"DEVNAME=bus/usb/001/004\0DEVTYPE=usb_device\0PRODUCT=781/5567/100\0TYPE=0/0/0\0BUSNUM=001\0"
           b"DEVNUM=004\0SEQNUM=4242\0")


def test_uevent_parse_kernel_message():
    props = _uevent.parse(USB_ADD)
    assert props["ACTION"] == "add" and props["DEVTYPE"] == "usb_device" and props["SEQNUM"] == "4242"
    row = _uevent.to_row(props, 1700000000, lambda sub, v, m: ("SanDisk Corp.", "Cruzer Blade") if v == "0781" else (None, None))
    assert row == {"action": "add", "path": "/dev/bus/usb/001/004", "type": "usb_device", "driver": "",
                   "vendor": "SanDisk Corp.", "vendor_id": "0781", "model": "Cruzer Blade", "model_id": "5567",
                   "serial": "", "revision": "0100", "time": 1700000000}


def test_uevent_filters_like_osquery():
    no_devtype = b"change@/devices/virtual/net/lo\0ACTION=change\0SUBSYSTEM=net\0INTERFACE=lo\0"
    assert _uevent.to_row(_uevent.parse(no_devtype), 1) is None
    partition = b"add@/block/sdb/sdb1\0ACTION=add\0SUBSYSTEM=block\0DEVNAME=sdb1\0DEVTYPE=partition\0"
    assert _uevent.to_row(_uevent.parse(partition), 1) is None
    disk = b"add@/block/sdb\0ACTION=add\0SUBSYSTEM=block\0DEVNAME=sdb\0DEVTYPE=disk\0"
    assert _uevent.to_row(_uevent.parse(disk), 5)["path"] == "/dev/sdb"
    interface = (b"bind@/devices/x/1-2:1.0\0ACTION=bind\0SUBSYSTEM=usb\0DEVTYPE=usb_interface\0"
                 b"DRIVER=usb-storage\0PRODUCT=781/5567/100\0")
    assert _uevent.to_row(_uevent.parse(interface), 1) is None  # no node and no model name: osquery drops it
    assert _uevent.parse(b"not a uevent") is None


def test_uevent_parse_udev_message():
    props = b"ACTION=add\0DEVNAME=/dev/sdc\0DEVTYPE=disk\0ID_VENDOR_ID=0781\0ID_MODEL_ID=5567\0" \
            b"ID_MODEL_FROM_DATABASE=Cruzer\0ID_SERIAL_SHORT=4C53\0ID_REVISION=1.00\0"
    header = b"libudev\0" + struct.pack("!I", _uevent.UDEV_MAGIC) + struct.pack("=IIII", 40, 40, len(props), 0)
    msg = header + b"\0" * (40 - len(header)) + props
    row = _uevent.to_row(_uevent.parse(msg), 7)
    assert row["path"] == "/dev/sdc" and row["model"] == "Cruzer" and row["serial"] == "4C53"
    assert row["vendor_id"] == "0781" and row["revision"] == "1.00"
