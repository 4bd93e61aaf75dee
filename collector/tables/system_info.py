"""system_info: host identity, CPU, memory and hardware model (SMBIOS types 1 and 2)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _hw, _proc

SPEC = table(
    'system_info',
    'System information for identification.',
    columns=[
        col('hostname', TEXT, 'Network hostname including domain'),
        col('uuid', TEXT, 'Unique ID provided by the system', collate='nocase'),
        col('cpu_type', TEXT, 'CPU type'),
        col('cpu_subtype', TEXT, 'CPU subtype'),
        col('cpu_brand', TEXT, 'CPU brand string, contains vendor and model'),
        col('cpu_physical_cores', INTEGER, 'Number of physical CPU cores in to the system'),
        col('cpu_logical_cores', INTEGER, 'Number of logical CPU cores available to the system'),
        col('cpu_sockets', INTEGER, 'Number of processor sockets in the system'),
        col('cpu_microcode', TEXT, 'Microcode version'),
        col('physical_memory', BIGINT, 'Total physical memory in bytes'),
        col('hardware_vendor', TEXT, 'Hardware vendor'),
        col('hardware_model', TEXT, 'Hardware model'),
        col('hardware_version', TEXT, 'Hardware version'),
        col('hardware_serial', TEXT, 'Device serial number'),
        col('board_vendor', TEXT, 'Board vendor'),
        col('board_model', TEXT, 'Board model'),
        col('board_version', TEXT, 'Board version'),
        col('board_serial', TEXT, 'Board serial number'),
        col('computer_name', TEXT, 'Friendly computer name (optional)'),
        col('local_hostname', TEXT, 'Local hostname (optional)'),
        col('emulated_cpu_type', TEXT, 'Emulated CPU type', platforms=('windows',)),
    ],
    platforms=('darwin', 'linux', 'windows'),
    requires={"CAP_DAC_READ_SEARCH": ["hardware_serial", "board_serial"]},
)


_DMI_ID = "/sys/class/dmi/id"
_HW_FIELDS = ["hardware_vendor", "hardware_model", "hardware_version", "hardware_serial",
              "board_vendor", "board_model", "board_version", "board_serial"]


def generate(ctx: Context) -> Iterator[Row]:
    host = _hostname(ctx)
    fqdn = _fqdn(ctx, host) if host else None
    row: Row = {"hostname": fqdn, "computer_name": host, "local_hostname": fqdn,
                "uuid": _uuid(ctx), "cpu_type": os.uname().machine, "cpu_subtype": "0"}
    logical = _online_cpus(ctx)
    row["cpu_logical_cores"] = logical
    try:
        blocks = _hw.cpuinfo(ctx.path("/proc/cpuinfo"))
    except OSError:
        blocks = []
    if blocks:
        first = blocks[0]
        row["cpu_brand"] = first.get("model name")
        row["cpu_subtype"] = first.get("model", "0")
        row["cpu_microcode"] = first.get("microcode")
        siblings = int(first["siblings"]) if first.get("siblings", "").isdigit() else 0
        if logical and siblings:
            row["cpu_sockets"] = max(1, logical // siblings)
        # Boost's physical_concurrency: distinct (physical id, core id) pairs, else the logical count.
        cores = {(b.get("physical id"), b.get("core id")) for b in blocks if "core id" in b}
        row["cpu_physical_cores"] = len(cores) or logical
    else:
        row["cpu_physical_cores"] = logical
    try:
        for line in _proc.read_text(ctx.path("/proc/meminfo")).splitlines():
            if line.startswith("MemTotal:"):
                row["physical_memory"] = int(line.split()[1]) * 1024  # sysconf(_SC_PHYS_PAGES) * page size
                break
    except OSError as e:
        ctx.missing(["physical_memory"], f"cannot read /proc/meminfo: {e.strerror}")
    _hardware(ctx, row)
    yield row


def _hostname(ctx: Context) -> str | None:
    if ctx.root == "/":
        return socket.gethostname()
    name = _hw.attr(ctx.path("/proc/sys/kernel/hostname")) or _hw.attr(ctx.path("/etc/hostname"))
    return name or None


def _fqdn(ctx: Context, host: str) -> str:
    """osquery's getFqdn: the canonical name of the hostname, else the hostname.

    /etc/hosts answers first (no network); the resolver is only asked about the live host, as osquery does.
    """
    try:
        for line in _proc.read_text(ctx.path("/etc/hosts")).splitlines():
            names = line.split("#", 1)[0].split()[1:]
            if host in names:
                return names[0]
    except OSError:
        pass
    if ctx.root != "/":
        return host
    try:
        info = socket.getaddrinfo(host, None, flags=socket.AI_CANONNAME)
        return info[0][3] or host
    except (OSError, IndexError):
        return host


def _uuid(ctx: Context) -> str | None:
    """The DMI product UUID (root-only), else systemd's machine-id in UUID form."""
    value = _hw.attr(ctx.path(_DMI_ID + "/product_uuid"))
    if value:
        return value.upper()
    mid = _hw.attr(ctx.path("/etc/machine-id"))
    if mid and len(mid) == 32:
        return f"{mid[:8]}-{mid[8:12]}-{mid[12:16]}-{mid[16:20]}-{mid[20:]}".upper()
    ctx.missing(["uuid"], "no DMI product_uuid and no /etc/machine-id")
    return None


def _online_cpus(ctx: Context) -> int | None:
    text = _hw.attr(ctx.path("/sys/devices/system/cpu/online"))
    if text:
        try:
            return len(_hw.cpu_list(text))
        except ValueError:
            pass
    return os.cpu_count() if ctx.root == "/" else None


def _hardware(ctx: Context, row: Row) -> None:
    blob, reason = _hw.read_smbios(ctx)
    if blob is not None:
        for s in _hw.walk_smbios(blob):
            if len(s.raw) < 0x12:
                continue
            if s.type == 1:
                row["hardware_vendor"], row["hardware_model"] = s.string(0x04), s.string(0x05)
                row["hardware_version"], row["hardware_serial"] = s.string(0x06), s.string(0x07)
                if row["hardware_vendor"].lower() == "lenovo":
                    # Lenovo puts the model in Version and a SKU in Product; osquery swaps them back.
                    row["hardware_model"], row["hardware_version"] = row["hardware_version"], row["hardware_model"]
            elif s.type == 2:
                row["board_vendor"], row["board_model"] = s.string(0x04), s.string(0x05)
                row["board_version"], row["board_serial"] = s.string(0x06), s.string(0x07)
        return
    # Same strings through the kernel's per-field files; the serials there are root-only too.
    base = ctx.path(_DMI_ID)
    names = ("sys_vendor", "product_name", "product_version", "product_serial",
             "board_vendor", "board_name", "board_version", "board_serial")
    if not os.path.isdir(base):
        ctx.note("no SMBIOS/DMI data on this host (virtual machine without firmware tables): hardware and "
                 "board columns are NULL")
        return
    unreadable = []
    for column, name in zip(_HW_FIELDS, names):
        value = _hw.attr(f"{base}/{name}")
        if value is None and os.path.exists(f"{base}/{name}"):
            unreadable.append(column)
        row[column] = value
    if row.get("hardware_vendor", "") and row["hardware_vendor"].lower() == "lenovo":
        row["hardware_model"], row["hardware_version"] = row["hardware_version"], row["hardware_model"]
    if unreadable:
        ctx.missing(unreadable, "permission denied reading " + _DMI_ID, "CAP_DAC_READ_SEARCH")
