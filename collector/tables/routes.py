"""routes: the kernel routing tables (all tables, IPv4 and IPv6) from one rtnetlink RTM_GETROUTE dump, as osquery.

Under a --hostfs root (or a fixture tree) the netlink socket would describe the collector's namespace, so
the generator reads /proc/net/route and /proc/net/ipv6_route instead (main table IPv4, all IPv6 routes).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _netlink, _proc

SPEC = table(
    'routes',
    'The active route table for the host system.',
    columns=[
        col('destination', TEXT, 'Destination IP address'),
        col('netmask', INTEGER, 'Netmask length'),
        col('gateway', TEXT, 'Route gateway'),
        col('source', TEXT, 'Route source'),
        col('flags', INTEGER, 'Flags to describe route'),
        col('interface', TEXT, 'Route local interface'),
        col('mtu', INTEGER, 'Maximum Transmission Unit for the route'),
        col('metric', INTEGER, 'Cost of route. Lowest is preferred'),
        col('type', TEXT, 'Type of route', additional=True),
        col('hopcount', INTEGER, 'Max hops expected'),
    ],
    cacheable=True,
    platforms=('darwin', 'linux', 'windows'),
)


_TYPES = {1: "gateway", 2: "local", 3: "broadcast", 4: "anycast"}


def generate(ctx: Context) -> Iterator[Row]:
    want = ctx.eq("type")
    rows = _from_proc(ctx) if ctx.root != "/" else _from_netlink(ctx)
    for row in rows:
        if want is None or row["type"] in want:
            yield row


def _from_netlink(ctx: Context) -> Iterator[Row]:
    try:
        data = _netlink.dump(_netlink.RTM_GETROUTE, bytes(12))
    except OSError as e:
        ctx.missing(["destination"], f"rtnetlink RTM_GETROUTE failed: {e.strerror}", None, rows=0)
        return
    names: dict[int, str] = {}
    for r in _netlink.routes(data):
        yield route_row(r, names)


def route_row(r: dict, names: dict[int, str]) -> Row:
    family = r["family"]
    default = "0.0.0.0" if family == socket.AF_INET else "::" if family == socket.AF_INET6 else ""
    # osquery reports a /32 or /128 destination with netmask 0; Quarry reports the real prefix length.
    return {
        "destination": r.get("dst", default),
        "netmask": r["dst_len"],
        "gateway": r.get("gateway"),
        "source": r.get("source"),
        "flags": r["flags"],
        "interface": _netlink.if_name(r["oif"], names) if "oif" in r else None,
        "mtu": r.get("mtu", 0),
        "metric": r.get("metric", 0),
        "type": _TYPES.get(r["type"], "other"),
        "hopcount": r.get("hopcount", 0),
    }


# RTF_* flags of /proc/net/route and ipv6_route, mapped onto rtm_type the way the kernel derives them.
_RTF_REJECT, _RTF_LOCAL = 0x0200, 0x80000000


def _from_proc(ctx: Context) -> Iterator[Row]:
    try:
        text = _proc.read_text(ctx.path("/proc/net/route"))
    except OSError:
        text = ""
    yield from parse_route(text)
    try:
        text6 = _proc.read_text(ctx.path("/proc/net/ipv6_route"))
    except OSError:
        text6 = ""
    yield from parse_ipv6_route(text6)
    ctx.note("read from /proc/net/route and /proc/net/ipv6_route: no preferred source, IPv4 main table only")


def parse_route(text: str) -> Iterator[Row]:
    """/proc/net/route: Iface Destination Gateway Flags RefCnt Use Metric Mask MTU Window IRTT (LE hex)."""
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 11:
            continue
        dst = socket.inet_ntoa(struct.pack("<I", int(f[1], 16)))
        gw = int(f[2], 16)
        mask = int(f[7], 16)
        yield {
            "destination": dst,
            "netmask": bin(mask).count("1"),
            "gateway": socket.inet_ntoa(struct.pack("<I", gw)) if gw else None,
            "flags": 0,
            "interface": f[0] if f[0] != "*" else None,
            "mtu": int(f[8]),
            "metric": int(f[6]),
            "type": "other" if int(f[3], 16) & _RTF_REJECT else "gateway",
            "hopcount": 0,
        }


def parse_ipv6_route(text: str) -> Iterator[Row]:
    """/proc/net/ipv6_route: dst dst_len src src_len gateway metric refcnt use flags device (hex)."""
    for line in text.splitlines():
        f = line.split()
        if len(f) < 10:
            continue
        flags = int(f[8], 16)
        gw = ipaddress.IPv6Address(bytes.fromhex(f[4]))
        rtype = "local" if flags & _RTF_LOCAL else "other" if flags & _RTF_REJECT else "gateway"
        if ipaddress.IPv6Address(bytes.fromhex(f[0])).is_multicast:
            rtype = "other"  # RTN_MULTICAST
        yield {
            "destination": str(ipaddress.IPv6Address(bytes.fromhex(f[0]))),
            "netmask": int(f[1], 16),
            "gateway": str(gw) if int(gw) else None,
            "flags": 0,
            "interface": f[9],
            "mtu": 0,
            "metric": int(f[5], 16),
            "type": rtype,
            "hopcount": 0,
        }
