"""cpu_info: processor packages from SMBIOS type 4, or /proc/cpuinfo and sysfs without it."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _hw

SPEC = table(
    'cpu_info',
    'Retrieve cpu hardware info of the machine.',
    columns=[
        col('device_id', TEXT, 'The DeviceID of the CPU.'),
        col('model', TEXT, 'The model of the CPU.'),
        col('manufacturer', TEXT, 'The manufacturer of the CPU.'),
        col('processor_type', TEXT, 'The processor type, such as Central, Math, or Video.'),
        col('cpu_status', INTEGER, 'The current operating status of the CPU.'),
        col('number_of_cores', TEXT, 'The number of cores of the CPU.'),
        col('logical_processors', INTEGER, 'The number of logical processors of the CPU.'),
        col('address_width', TEXT, 'The width of the CPU address bus.'),
        col('current_clock_speed', INTEGER, 'The current frequency of the CPU.'),
        col('max_clock_speed', INTEGER, 'The maximum possible frequency of the CPU.'),
        col('socket_designation', TEXT, 'The assigned socket on the board for the given CPU.'),
        col('availability', TEXT, 'The availability and status of the CPU.', platforms=('windows',)),
        col('load_percentage', INTEGER, 'The current percentage of utilization of the CPU.', platforms=('windows',)),
        col('number_of_efficiency_cores', INTEGER, 'The number of efficiency cores of the CPU. Only available on Apple Silicon', platforms=('darwin',)),
        col('number_of_performance_cores', INTEGER, 'The number of performance cores of the CPU. Only available on Apple Silicon', platforms=('darwin',)),
    ],
    platforms=('darwin', 'linux', 'windows'),
)


_TYPE_NAMES = {3: "CPU", 4: "MATH", 5: "DSP", 6: "GPU"}
_SMBIOS_ONLY = ["cpu_status", "socket_designation"]


def generate(ctx: Context) -> Iterator[Row]:
    """One row per processor package.

    osquery reads SMBIOS type 4 structures; we do the same when the DMI table is readable. Without it
    (non-root, or a VM with no DMI) the package rows come from /proc/cpuinfo and cpufreq in sysfs, and the
    two columns only firmware knows (cpu_status, socket_designation) are NULL with a warning.
    """
    blob, reason = _hw.read_smbios(ctx)
    if blob is not None:
        rows = list(_from_smbios(blob))
        if rows:
            yield from rows
            return
    yield from _from_proc(ctx, reason or "no SMBIOS processor structures on this host")


def _from_smbios(blob: bytes) -> Iterator[Row]:
    device = 0
    for s in _hw.walk_smbios(blob):
        if s.type != 4 or len(s.raw) < 0x2E + 2:
            continue
        ptype = s.byte(0x05)
        chars = s.word(0x26) or 0
        row: Row = {
            "socket_designation": s.string(0x04),
            "model": s.string(0x10),
            "manufacturer": s.string(0x07),
            "processor_type": str(ptype),
            "cpu_status": s.byte(0x18),
            "number_of_cores": str(s.byte(0x23)),
            "logical_processors": s.byte(0x25),
            "address_width": "64" if chars & (1 << 2) else "32",
            "current_clock_speed": s.word(0x16),
            "max_clock_speed": s.word(0x14),
        }
        if ptype in _TYPE_NAMES:
            row["device_id"] = f"{_TYPE_NAMES[ptype]}{device}"
            device += 1
        yield row


def _from_proc(ctx: Context, reason: str) -> Iterator[Row]:
    try:
        blocks = _hw.cpuinfo(ctx.path("/proc/cpuinfo"))
    except OSError as e:
        ctx.note(f"cannot read /proc/cpuinfo: {e.strerror}")
        return
    packages: dict[str, list[dict[str, str]]] = {}
    for b in blocks:
        packages.setdefault(b.get("physical id", "0"), []).append(b)
    no_max = 0
    for n, (_pkg, procs) in enumerate(sorted(packages.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0)):
        first = procs[0]
        mhz = first.get("cpu MHz")
        max_khz = _hw.attr(ctx.path(f"/sys/devices/system/cpu/cpu{first.get('processor', '0')}/cpufreq/cpuinfo_max_freq"))
        if max_khz is None:
            no_max += 1
        flags = first.get("flags", "").split()
        row: Row = {
            "device_id": f"CPU{n}",
            "model": first.get("model name"),
            "manufacturer": first.get("vendor_id"),
            "processor_type": "3",  # every /proc/cpuinfo entry is a central processor (SMBIOS type 3)
            "number_of_cores": first.get("cpu cores", str(len({p.get("core id") for p in procs}))),
            "logical_processors": int(first["siblings"]) if first.get("siblings", "").isdigit() else len(procs),
            # The lm flag is the "64-bit capable" bit SMBIOS reports; other architectures: the kernel's word size.
            "address_width": ("64" if "lm" in flags else "32") if flags else ("64" if sys.maxsize > 2**32 else "32"),
            "current_clock_speed": int(float(mhz)) if mhz else None,
            "max_clock_speed": int(max_khz) // 1000 if max_khz and max_khz.isdigit() else None,
        }
        yield row
    ctx.missing(_SMBIOS_ONLY, reason, None, rows=len(packages))
    if no_max:
        ctx.missing(["max_clock_speed"], "no cpufreq in sysfs (virtual machine or no frequency driver)", None,
                    rows=no_max)
