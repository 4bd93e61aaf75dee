"""system_info, os_version, kernel_info, uptime, load_average, memory_info, cpu_time, cpu_info, cpuid, time."""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

import pytest

from tests.tables.fsutil import text_lines

SYSTEM = "system"


def one(engine, sql):
    rows = engine.query(sql).dicts()
    assert len(rows) == 1, rows
    return rows[0]


# --- live host vs independent sources -------------------------------------------------------------------
def test_uptime_live(engine):
    before = float(Path("/proc/uptime").read_text().split()[0])
    r = one(engine, "SELECT * FROM uptime")
    after = float(Path("/proc/uptime").read_text().split()[0])
    assert int(before) <= r["total_seconds"] <= int(after) + 1
    assert r["days"] * 86400 + r["hours"] * 3600 + r["minutes"] * 60 + r["seconds"] == r["total_seconds"]


def test_load_average_live(engine):
    rows = engine.query("SELECT period, average FROM load_average").rows
    assert [p for p, _ in rows] == ["1m", "5m", "15m"]
    expected = os.getloadavg()
    for (_, avg), exp in zip(rows, expected):
        assert len(avg.split(".")[1]) == 6  # std::to_string(double)
        assert abs(float(avg) - exp) < 1.0


def test_memory_info_live(engine):
    r = one(engine, "SELECT * FROM memory_info")
    assert r["memory_total"] == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    meminfo = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in text_lines("/proc/meminfo")}
    assert r["swap_total"] == meminfo["SwapTotal"]
    assert 0 < r["memory_free"] <= r["memory_total"]


def test_cpu_time_live(engine):
    rows = engine.query("SELECT * FROM cpu_time ORDER BY core").dicts()
    assert [r["core"] for r in rows] == sorted(int(l.split()[0][3:]) for l in text_lines("/proc/stat")
                                                if l.startswith("cpu") and l[3].isdigit())
    user0 = int(next(l for l in text_lines("/proc/stat") if l.startswith("cpu0 ")).split()[1])
    assert 0 < rows[0]["user"] <= user0


def test_system_info_live(engine):
    r = one(engine, "SELECT * FROM system_info")
    assert r["computer_name"] == socket.gethostname()
    assert r["cpu_logical_cores"] == os.cpu_count()
    assert r["cpu_type"] == os.uname().machine
    assert r["physical_memory"] == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    model_name = next((l.split(":", 1)[1].strip() for l in text_lines("/proc/cpuinfo")
                       if l.startswith("model name")), None)
    assert r["cpu_brand"] == model_name
    mid = Path("/etc/machine-id").read_text().strip() if os.path.exists("/etc/machine-id") else None
    if not os.path.exists("/sys/class/dmi/id/product_uuid") and mid:
        assert r["uuid"].replace("-", "").lower() == mid


def test_kernel_info_live(engine):
    r = one(engine, "SELECT * FROM kernel_info")
    assert r["version"] == os.uname().release
    args = Path("/proc/cmdline").read_text().split()
    assert r["arguments"].split() == [a for a in args if not a.startswith(("BOOT_IMAGE=", "root="))]


def test_os_version_live(engine):
    r = one(engine, "SELECT * FROM os_version")
    release = dict(l.rstrip("\n").split("=", 1) for l in text_lines("/etc/os-release") if "=" in l)
    assert r["platform"] == release["ID"].strip('"')
    assert r["arch"] == os.uname().machine
    assert r["major"] == int(release["VERSION_ID"].strip('"').split(".")[0])


def test_os_version_pid_with_namespace(engine):
    r = one(engine, f"SELECT *, pid_with_namespace, mount_namespace_id FROM os_version "
                    f"WHERE pid_with_namespace = {os.getpid()}")
    assert r["pid_with_namespace"] == os.getpid()
    assert r["mount_namespace_id"] == os.readlink(f"/proc/{os.getpid()}/ns/mnt")[5:-1]


def test_time_live(engine):
    before = int(time.time())
    r = one(engine, "SELECT * FROM time")
    after = int(time.time())
    assert before <= r["unix_time"] <= after
    g = time.gmtime(r["unix_time"])
    assert (r["year"], r["month"], r["day"], r["hour"], r["minutes"], r["seconds"]) == g[:6]
    assert r["datetime"] == r["iso_8601"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", g)
    assert r["timestamp"] == time.asctime(g) + " UTC"
    assert r["timezone"] == "UTC"


def test_time_minutes_counter(engine):
    # osquery-monitoring's "time.minutes AS counter" shape must work.
    assert engine.query("SELECT minutes AS counter FROM time").rows[0][0] in range(60)


def test_cpu_info_live(engine):
    rows = engine.query("SELECT * FROM cpu_info").dicts()
    packages = {l.split(":")[1].strip() for l in text_lines("/proc/cpuinfo")
                if l.startswith("physical id")} or {"0"}
    assert len(rows) == len(packages)
    assert sum(r["logical_processors"] for r in rows) == os.cpu_count()


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="cpuid is x86 only")
def test_cpuid_live(engine):
    rows = {r["feature"]: r for r in engine.query("SELECT * FROM cpuid").dicts()}
    vendor = next(l.split(":")[1].strip() for l in text_lines("/proc/cpuinfo") if l.startswith("vendor_id"))
    assert rows["vendor"]["value"] == vendor
    flags = set(next(l for l in text_lines("/proc/cpuinfo") if l.startswith("flags")).split(":")[1].split())
    # Flags the kernel never masks agree with the CPUID bits.
    for feature, flag in (("sse2", "sse2"), ("lm", "lm"), ("nx", "nx")):
        assert rows[feature]["value"] == ("1" if flag in flags else "0")
    assert rows["lm"]["input_eax"] == str(0x80000001) and rows["lm"]["output_bit"] == 29


# --- fixture trees ----------------------------------------------------------------------------------
def test_procfs_fixture(engine_at, fixtures):
    e = engine_at(fixtures / SYSTEM)
    assert one(e, "SELECT * FROM uptime") == {"days": 1, "hours": 2, "minutes": 3, "seconds": 4,
                                              "total_seconds": 93784}
    assert e.query("SELECT * FROM load_average").rows == [("1m", "0.150000"), ("5m", "1.050000"),
                                                           ("15m", "12.500000")]
    m = one(e, "SELECT * FROM memory_info")
    assert m["memory_total"] == 16316412 * 1024 and m["swap_free"] == 2097148 * 1024 and m["swap_cached"] == 0
    ct = e.query("SELECT * FROM cpu_time").dicts()
    assert [c["core"] for c in ct] == [0, 1]
    assert ct[0]["guest_nice"] == 10 and ct[1]["softirq"] == 17 and ct[1]["steal"] == 0


def test_kernel_info_fixture(engine_at, fixtures):
    r = one(engine_at(fixtures / SYSTEM), "SELECT * FROM kernel_info")
    assert r == {"version": "6.1.0-13-amd64", "arguments": "ro quiet splash",
                 "path": "/boot/vmlinuz-6.1.0-13-amd64", "device": "UUID=1234-abcd"}


def test_os_version_fixture(engine_at, fixtures):
    r = one(engine_at(fixtures / SYSTEM), "SELECT * FROM os_version")
    assert r["name"] == "Ubuntu" and r["version"] == "22.04.3 LTS (Jammy Jellyfish)"
    assert (r["major"], r["minor"], r["patch"]) == (22, 4, 0)
    assert r["platform"] == "ubuntu" and r["platform_like"] == "debian" and r["codename"] == "jammy"


def test_os_version_redhat_release(tmp_path, engine_at):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text('NAME="CentOS Linux"\nVERSION_ID="7"\nID="centos"\n')
    (tmp_path / "etc/redhat-release").write_text("CentOS Linux release 7.9.2009 (Core)\n")
    r = one(engine_at(tmp_path), "SELECT * FROM os_version")
    assert (r["major"], r["minor"], r["patch"]) == (7, 9, 2009)
    assert r["platform"] == "rhel" and r["version"] == "CentOS Linux release 7.9.2009 (Core)"


def test_system_info_fixture(engine_at, fixtures):
    r = one(engine_at(fixtures / SYSTEM), "SELECT * FROM system_info")
    assert r["computer_name"] == "fixturehost" and r["hostname"] == "fixturehost.example.org"
    assert r["uuid"] == "01234567-89AB-CDEF-0123-456789ABCDEF"
    assert (r["cpu_logical_cores"], r["cpu_physical_cores"], r["cpu_sockets"]) == (4, 4, 2)
    assert r["cpu_subtype"] == "85" and r["cpu_microcode"] == "0x2006e05"
    assert r["physical_memory"] == 16316412 * 1024
    # Lenovo's product/version swap, from /sys/class/dmi/id (no raw DMI table in this tree).
    assert r["hardware_vendor"] == "LENOVO" and r["hardware_model"] == "ThinkPad X1 Carbon 5th"
    assert r["hardware_version"] == "20HRCTO1WW" and r["board_model"] == "20HRCTO1WW"


def test_cpu_info_fixture_from_cpuinfo(engine_at, fixtures):
    res = engine_at(fixtures / SYSTEM).query("SELECT * FROM cpu_info")
    rows = res.dicts()
    assert [r["device_id"] for r in rows] == ["CPU0", "CPU1"]
    assert rows[0]["model"] == "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz"
    assert rows[0]["number_of_cores"] == "2" and rows[0]["logical_processors"] == 2
    assert rows[0]["address_width"] == "64" and rows[0]["current_clock_speed"] == 2394
    assert rows[0]["cpu_status"] is None and any("cpu_status" in w for w in res.warnings)


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="cpuid is x86 only")
def test_cpuid_fallback_from_cpuinfo(engine_at, fixtures):
    res = engine_at(fixtures / SYSTEM).query("SELECT * FROM cpuid")
    rows = {r["feature"]: r["value"] for r in res.dicts()}
    assert rows["vendor"] == "GenuineIntel" and rows["family"] == "0600"
    assert rows["sse3"] == "1" and rows["sse4.1"] == "1" and rows["sse4.2"] == "0"
    assert rows["page1gb"] == "1" and rows["lahfsahf"] == "1" and "serial" not in rows
    assert any("cpuid" in w for w in res.warnings)


def test_cpuid_register_decoding():
    """The row builder over canned CPUID registers (what /dev/cpu/0/cpuid returns for leaf/subleaf)."""
    from collector.tables.cpuid import from_registers

    regs = {
        (0, 0): (0xD, *struct.unpack("<3I", b"GenuntelineI")),
        (1, 0): (0x000306A9, 0, (1 << 0) | (1 << 20), (1 << 26) | (1 << 25)),
        (7, 0): (0, 1 << 5, 0, 0),
        (0x80000001, 0): (0, 0, 1, 1 << 29),
        (0x80000002, 0): struct.unpack("<4I", b"Intel(R) Core(TM"),
        (0x80000003, 0): struct.unpack("<4I", b") i7 CPU" + b"\0" * 8),
        (0x12, 1): (1, 2, 3, 4),
    }
    rows = {r["feature"]: r for r in from_registers(lambda leaf, sub=0: regs.get((leaf, sub), (0, 0, 0, 0)))}
    assert rows["vendor"]["value"] == "GenuineIntel"
    assert rows["product_name"]["value"] == "Intel(R) Core(TM) i7 CPU"
    assert rows["family"]["value"] == "0600"
    assert rows["sse2"]["value"] == "1" and rows["sse"]["value"] == "1" and rows["htt"]["value"] == "0"
    assert rows["sse3"]["value"] == "1" and rows["sse4.2"]["value"] == "1" and rows["avx"]["value"] == "0"
    assert rows["avx2"]["value"] == "1" and rows["lm"]["value"] == "1" and rows["lahfsahf"]["value"] == "1"
    assert rows["sgx1"]["value"] == "00000001000000020000000300000004" and rows["sgx1"]["input_eax"] == "18,1"
    assert rows["serial"]["value"] == "000306a90000000000000000"
    assert "hypervisor_id" not in rows  # leaf 0x40000000 reads zero
