"""cpuid: CPU identification and feature bits (CPUID via the kernel's cpuid device)."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _hw

SPEC = table(
    'cpuid',
    'Useful CPU features from the cpuid ASM call.',
    columns=[
        col('feature', TEXT, 'Present feature flags'),
        col('value', TEXT, 'Bit value or string'),
        col('output_register', TEXT, 'Register used to for feature value'),
        col('output_bit', INTEGER, 'Bit in register value for feature value'),
        col('input_eax', TEXT, 'Value of EAX used'),
    ],
    platforms=('darwin', 'linux', 'windows'),
    requires={"CAP_DAC_READ_SEARCH": ["*"]},
)


# osquery's feature list: leaf -> (name, register, bit), in osquery's order.
_FEATURES: dict[int, tuple[tuple[str, str, int], ...]] = {
    1: (
        ("pae", "edx", 6), ("msr", "edx", 5), ("sep", "edx", 11), ("mtrr", "edx", 12), ("pge", "edx", 13),
        ("mca", "edx", 14), ("pat", "edx", 16), ("clfsh", "edx", 19), ("acpi", "edx", 22), ("mmz", "edx", 23),
        ("sse", "edx", 25), ("sse2", "edx", 26), ("ss", "edx", 27), ("htt", "edx", 28), ("ia64", "edx", 30),
        ("sse3", "ecx", 0), ("vmx", "ecx", 5), ("smx", "ecx", 6), ("ssse3", "ecx", 9), ("sdbg", "ecx", 11),
        ("pdcm", "ecx", 15), ("pcid", "ecx", 17), ("dca", "ecx", 18), ("sse4.1", "ecx", 19),
        ("sse4.2", "ecx", 20), ("aes", "ecx", 25), ("avx", "ecx", 28), ("hypervisor", "ecx", 31),
    ),
    7: (
        ("sgx", "ebx", 2), ("hle", "ebx", 4), ("avx2", "ebx", 5), ("smep", "ebx", 7), ("bmi2", "ebx", 8),
        ("erms", "ebx", 9), ("invpcid", "ebx", 10), ("rtm", "ebx", 11), ("pqm", "ebx", 12), ("mpx", "ebx", 14),
        ("pqe", "ebx", 15), ("avx512f", "ebx", 16), ("avx512dq", "ebx", 17), ("rdseed", "ebx", 18),
        ("adx", "ebx", 19), ("smap", "ebx", 20), ("intel_pt", "ebx", 25), ("sha", "ebx", 29),
        ("umip", "ecx", 2), ("pku", "ecx", 3), ("ospke", "ecx", 4), ("gfni", "ecx", 8), ("vaes", "ecx", 9),
        ("sgx_lc", "ecx", 30), ("spec_ctrl", "edx", 26),
    ),
    0x80000001: (
        ("lahfsahf", "ecx", 0), ("svm", "ecx", 2), ("3dnowprefetch", "ecx", 8), ("ibs", "ecx", 10),
        ("skinit", "ecx", 12), ("lwp", "ecx", 15), ("nx", "edx", 20), ("page1gb", "edx", 26), ("lm", "edx", 29),
    ),
}
_REG = {"eax": 0, "ebx": 1, "ecx": 2, "edx": 3}
# Linux /proc/cpuinfo names of osquery's features, for the fallback (None: the kernel has no such flag).
_LINUX_FLAG = {
    "clfsh": "clflush", "mmz": "mmx", "htt": "ht", "sse3": "pni", "sse4.1": "sse4_1", "sse4.2": "sse4_2",
    "pqm": "cqm", "pqe": "rdt_a", "sha": "sha_ni", "lahfsahf": "lahf_lm", "page1gb": "pdpe1gb",
    "ia64": None, "sdbg": "sdbg", "spec_ctrl": "spec_ctrl",
}
CPUID_DEV = "/dev/cpu/0/cpuid"


def generate(ctx: Context) -> Iterator[Row]:
    """CPUID leaves as osquery reports them.

    osquery executes the CPUID instruction. Python cannot, so the exact source is the kernel's cpuid driver,
    /dev/cpu/0/cpuid (root, CONFIG_X86_CPUID): a 16-byte pread at offset leaf | subleaf << 32 runs CPUID on
    CPU 0 and returns eax, ebx, ecx, edx. Where that device is missing or not readable, feature rows come
    from the /proc/cpuinfo flags (which the kernel may mask), and the raw-register rows (serial, sgx0/1,
    hypervisor_id) are left out with a warning.
    """
    if os.uname().machine not in ("x86_64", "i686", "i386"):
        return  # osquery: cpuid is x86 only
    try:
        fd = os.open(ctx.path(CPUID_DEV), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        yield from _from_cpuinfo(ctx, f"{CPUID_DEV}: {e.strerror}")
        return
    try:
        yield from from_registers(lambda leaf, sub=0: struct.unpack("<4I", os.pread(fd, 16, leaf | sub << 32)))
    finally:
        os.close(fd)


def from_registers(cpuid: Callable[..., tuple[int, int, int, int]]) -> Iterator[Row]:
    """osquery's rows from a CPUID executor: cpuid(leaf, subleaf=0) -> (eax, ebx, ecx, edx)."""

    def text(*regs: int) -> str:
        return struct.pack(f"<{len(regs)}I", *regs).decode("latin-1")

    eax, ebx, ecx, edx = cpuid(0)
    if eax < 1:
        return
    yield {"feature": "vendor", "value": text(ebx, edx, ecx), "output_register": "ebx,edx,ecx",
           "output_bit": 0, "input_eax": "0"}
    brand = "".join(text(*cpuid(0x80000002 + i)) for i in range(3))
    # osquery keeps the NUL padding of the 48-byte brand; we drop it (SQLite text with NULs misprints).
    yield {"feature": "product_name", "value": brand.split("\0", 1)[0].strip(),
           "output_register": "eax,ebx,ecx,edx", "output_bit": 0, "input_eax": "0x80000002"}
    h = cpuid(0x40000000)
    if h[0]:
        # Exactly osquery's rendering: eax, ebx, ecx as 8 hex digits each.
        yield {"feature": "hypervisor_id", "value": f"{h[0]:08x}{h[1]:08x}{h[2]:08x}",
               "output_register": "ebx,ecx,edx", "output_bit": 0, "input_eax": "0x40000000"}
    l1 = cpuid(1)
    l3 = cpuid(3)
    yield {"feature": "serial", "value": f"{l1[0]:08x}{l3[0]:08x}{l3[3]:08x}", "output_register": "eax,eax,ecx",
           "output_bit": 0, "input_eax": "1,3"}
    yield {"feature": "family", "value": f"{l1[0] & 0xF00:04x}", "output_register": "eax", "output_bit": 0,
           "input_eax": "1"}
    for leaf, features in _FEATURES.items():
        regs = cpuid(leaf)
        for name, reg, bit in features:
            yield {"feature": name, "value": "1" if regs[_REG[reg]] >> bit & 1 else "0", "output_register": reg,
                   "output_bit": bit, "input_eax": str(leaf)}
    for sub, input_eax in ((0, "18"), (1, "18,1")):
        r = cpuid(0x12, sub)
        yield {"feature": f"sgx{sub}", "value": "".join(f"{v:08x}" for v in r),
               "output_register": "eax,ebx,ecx,edx", "output_bit": 0, "input_eax": input_eax}


def _from_cpuinfo(ctx: Context, reason: str) -> Iterator[Row]:
    try:
        blocks = _hw.cpuinfo(ctx.path("/proc/cpuinfo"))
    except OSError as e:
        ctx.note(f"cannot read /proc/cpuinfo: {e.strerror}")
        return
    if not blocks:
        return
    first = blocks[0]
    flags = set(first.get("flags", "").split())
    ctx.missing(["serial", "sgx0", "sgx1", "hypervisor_id"],
                f"{reason}; feature bits read from /proc/cpuinfo flags instead of CPUID", "CAP_DAC_READ_SEARCH")
    if "vendor_id" in first:
        yield {"feature": "vendor", "value": first["vendor_id"], "output_register": "ebx,edx,ecx",
               "output_bit": 0, "input_eax": "0"}
    if "model name" in first:
        yield {"feature": "product_name", "value": first["model name"], "output_register": "eax,ebx,ecx,edx",
               "output_bit": 0, "input_eax": "0x80000002"}
    family = first.get("cpu family", "")
    if family.isdigit():
        # CPUID's base family field: extended families (>= 15) all show 0xf there.
        yield {"feature": "family", "value": f"{min(int(family), 15) << 8:04x}", "output_register": "eax",
               "output_bit": 0, "input_eax": "1"}
    for leaf, features in _FEATURES.items():
        for name, reg, bit in features:
            flag = _LINUX_FLAG.get(name, name)
            if flag is None:
                continue
            yield {"feature": name, "value": "1" if flag in flags else "0", "output_register": reg,
                   "output_bit": bit, "input_eax": str(leaf)}
