"""iptables: legacy (x_tables) IPv4 rules of every table in /proc/net/ip_tables_names, as osquery's libiptc reads.

Read with the IPT_SO_GET_INFO / IPT_SO_GET_ENTRIES getsockopts on a raw socket (what libiptc does), no
subprocess. Rules of the nf_tables backend (iptables-nft) are invisible to this interface, as to osquery.
Row shape follows osquery: one row per rule (chain, policy of its chain, target, match, ports of a tcp/udp
match) then one row per chain carrying only the policy and its counters. Unlike osquery, whose rule rows
repeat the chain policy counters, a rule row carries the rule's own packets/bytes.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'iptables',
    'Linux IP packet filtering and NAT tool.',
    columns=[
        col('filter_name', TEXT, 'Packet matching filter table name.'),
        col('chain', TEXT, 'Size of module content.'),
        col('policy', TEXT, 'Policy that applies for this rule.'),
        col('target', TEXT, 'Target that applies for this rule.'),
        col('protocol', INTEGER, 'Protocol number identification.'),
        col('src_port', TEXT, 'Protocol source port(s).'),
        col('dst_port', TEXT, 'Protocol destination port(s).'),
        col('src_ip', TEXT, 'Source IP address.'),
        col('src_mask', TEXT, 'Source IP address mask.'),
        col('iniface', TEXT, 'Input interface for the rule.'),
        col('iniface_mask', TEXT, 'Input interface mask for the rule.'),
        col('dst_ip', TEXT, 'Destination IP address.'),
        col('dst_mask', TEXT, 'Destination IP address mask.'),
        col('outiface', TEXT, 'Output interface for the rule.'),
        col('outiface_mask', TEXT, 'Output interface mask for the rule.'),
        col('match', TEXT, 'Matching rule that applies.'),
        col('packets', INTEGER, 'Number of matching packets for this rule.'),
        col('bytes', INTEGER, 'Number of matching bytes for this rule.'),
    ],
    platforms=('linux',),
    requires={"CAP_DAC_READ_SEARCH": ["*"], "CAP_NET_ADMIN+CAP_NET_RAW": ["*"]},
)


SOL_IP, IPT_SO_GET_INFO, IPT_SO_GET_ENTRIES = 0, 64, 65
_INFO = struct.Struct("=32sI5I5III")  # ipt_getinfo
_GET_HDR = 40  # ipt_get_entries: name[32], size, pad to the 8-byte aligned entrytable
_ENTRY = struct.Struct("=4s4s4s4s16s16s16s16sHBBIHHIQQ")  # ipt_entry, 112 bytes
_HOOKS = ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING")
_VERDICTS = {-1: "DROP", -2: "ACCEPT", -3: "STOLEN", -4: "QUEUE", -5: "RETURN"}
INV_VIA_IN, INV_VIA_OUT, INV_SRCIP, INV_DSTIP, INV_PROTO = 0x01, 0x02, 0x08, 0x10, 0x40


def generate(ctx: Context) -> Iterator[Row]:
    try:
        with open(ctx.path("/proc/net/ip_tables_names")) as f:
            names = [n.strip() for n in f.read().split("\n") if n.strip()]
    except PermissionError:  # mode 0440: without this check an unprivileged run looked like "no rules"
        ctx.missing(["chain"], "cannot read /proc/net/ip_tables_names", "CAP_DAC_READ_SEARCH", rows=0)
        return
    except OSError:
        return  # ip_tables not loaded (or nft-only host): osquery returns nothing either
    for name in names:
        if ctx.root != "/":
            blob = _fixture_blob(ctx, name)
        else:
            try:
                blob = read_table(name)
            except OSError as e:
                if e.errno in (errno.EPERM, errno.EACCES):
                    ctx.missing(["chain"], f"cannot read iptables table {name}", "CAP_NET_ADMIN+CAP_NET_RAW",
                                rows=0)
                continue
        if blob is not None:
            info, entries = blob
            yield from parse_table(name, info, entries)


def _fixture_blob(ctx: Context, name: str) -> tuple[bytes, bytes] | None:
    """Fixture trees hold the two getsockopt answers as files next to ip_tables_names."""
    try:
        with open(ctx.path(f"/proc/net/ip_tables/{name}.info"), "rb") as f:
            info = f.read()
        with open(ctx.path(f"/proc/net/ip_tables/{name}.entries"), "rb") as f:
            entries = f.read()
    except OSError:
        return None
    return info, entries


def read_table(name: str) -> tuple[bytes, bytes]:
    """(ipt_getinfo, entry table) of one x_tables table; needs CAP_NET_ADMIN."""
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as s:
        query = _INFO.pack(name.encode(), 0, *([0] * 10), 0, 0)
        info = _getsockopt(s, IPT_SO_GET_INFO, query)
        size = _INFO.unpack(info)[-1]
        req = struct.pack("=32sI4x", name.encode(), size) + bytes(size)
        out = _getsockopt(s, IPT_SO_GET_ENTRIES, req)
        return info, out[_GET_HDR : _GET_HDR + size]


def _getsockopt(s: socket.socket, opt: int, payload: bytes) -> bytes:
    # Python's getsockopt cannot pass an input buffer; the kernel reads the request from optval, so use
    # ctypes on the raw fd.
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(payload, len(payload))
    length = ctypes.c_uint32(len(payload))
    if libc.getsockopt(s.fileno(), SOL_IP, opt, buf, ctypes.byref(length)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"getsockopt({opt}): {errno.errorcode.get(err, err)}")
    return buf.raw[: length.value]


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def _mask_hex(raw: bytes) -> str:
    out = []
    for b in raw:
        if b == 0:
            break
        out.append(f"{b:02X}")
    return "".join(out)


def parse_table(name: str, info: bytes, blob: bytes) -> Iterator[Row]:
    _n, valid_hooks, *rest = _INFO.unpack(info)
    hook_entry, underflow = rest[0:5], rest[5:10]
    entries: list[tuple[int, tuple, bytes]] = []  # (offset, header fields, target+matches area)
    off = 0
    while off + _ENTRY.size <= len(blob):
        e = _ENTRY.unpack_from(blob, off)
        next_off = e[13]
        if next_off < _ENTRY.size:
            break
        entries.append((off, e, blob[off : off + next_off]))
        off += next_off
    index = {o: i for i, (o, _e, _r) in enumerate(entries)}
    # Chains: builtin ones start at their hook entry and end with the policy at the underflow; a user
    # chain starts with an ERROR entry naming it and ends with its RETURN tail. The last ERROR ends the table.
    builtin = [(_HOOKS[h], hook_entry[h], underflow[h]) for h in range(5) if valid_hooks & (1 << h)]
    user: list[tuple[str, int, int]] = []
    heads = [(i, _error_name(raw)) for i, (_o, _e, raw) in enumerate(entries) if _target_name(raw) == "ERROR"]
    for k, (i, cname) in enumerate(heads[:-1]):
        end = heads[k + 1][0] - 1  # the RETURN tail
        user.append((cname, entries[i + 1][0] if i + 1 < len(entries) else 0, entries[end][0]))
    jump = {start: cname for cname, start, _end in user}
    for cname, start, end in builtin + sorted(user):
        if start not in index or end not in index:
            continue
        policy_entry = entries[index[end]]
        is_builtin = cname in _HOOKS and (cname, start, end) in builtin
        policy = _target(policy_entry, jump) if is_builtin else ""
        pcnt, bcnt = (policy_entry[1][15], policy_entry[1][16]) if is_builtin else (0, 0)
        base: Row = {"filter_name": name, "chain": cname, "policy": policy, "packets": pcnt, "bytes": bcnt}
        for i in range(index[start], index[end]):
            yield {**base, **_rule(entries[i], jump)}
        yield base


def _target_name(raw: bytes) -> str:
    toff = struct.unpack_from("=H", raw, 88)[0]
    return _cstr(raw[toff + 2 : toff + 31]) if toff + 32 <= len(raw) else ""


def _error_name(raw: bytes) -> str:
    toff = struct.unpack_from("=H", raw, 88)[0]
    return _cstr(raw[toff + 32 : toff + 64])


def _target(entry: tuple[int, tuple, bytes], jump: dict[int, str]) -> str:
    off, e, raw = entry
    name = _target_name(raw)
    if name:
        return name
    toff = e[12]
    verdict = struct.unpack_from("=i", raw, toff + 32)[0]
    if verdict < 0:
        return _VERDICTS.get(verdict, str(verdict))
    if verdict == off + e[13]:
        return ""  # fall through to the next rule
    return jump.get(verdict, str(verdict))


def _rule(entry: tuple[int, tuple, bytes], jump: dict[int, str]) -> Row:
    _off, e, raw = entry
    src, dst, smsk, dmsk, iniface, outiface, inmask, outmask, proto, _flags, inv = e[:11]
    row: Row = {
        "target": _target(entry, jump),
        "match": "yes",  # osquery: any entry with a target offset, i.e. every rule
        "protocol": f"!{proto}" if inv & INV_PROTO else proto,
        "src_ip": ("!" if inv & INV_SRCIP else "") + socket.inet_ntoa(src),
        "dst_ip": ("!" if inv & INV_DSTIP else "") + socket.inet_ntoa(dst),
        "src_mask": socket.inet_ntoa(smsk),
        "dst_mask": socket.inet_ntoa(dmsk),
        "iniface": ("!" if inv & INV_VIA_IN else "") + _cstr(iniface) if _cstr(iniface) else "all",
        "outiface": ("!" if inv & INV_VIA_OUT else "") + _cstr(outiface) if _cstr(outiface) else "all",
        "iniface_mask": _mask_hex(inmask),
        "outiface_mask": _mask_hex(outmask),
        "packets": e[15],
        "bytes": e[16],
        "src_port": "",
        "dst_port": "",
    }
    if proto in (socket.IPPROTO_TCP, socket.IPPROTO_UDP):
        ports = _ports(raw, e[12])
        row["src_port"], row["dst_port"] = ports if ports else ("0:65535", "0:65535")
    return row


def _ports(raw: bytes, toff: int) -> tuple[str, str] | None:
    """Port ranges of the rule's tcp/udp match (ipt_tcp / ipt_udp both start with spts[2], dpts[2])."""
    off = _ENTRY.size
    while off + 32 <= toff:
        size = struct.unpack_from("=H", raw, off)[0]
        if size < 32:
            return None
        if _cstr(raw[off + 2 : off + 31]) in ("tcp", "udp") and off + 40 <= len(raw):
            s0, s1, d0, d1 = struct.unpack_from("=4H", raw, off + 32)
            return f"{s0}:{s1}", f"{d0}:{d1}"
        off += size
    return None
