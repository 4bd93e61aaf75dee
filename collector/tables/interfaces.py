"""interface_addresses, interface_details, interface_ipv6: the host's network interfaces.

Addresses come from one rtnetlink RTM_GETADDR dump (what glibc's getifaddrs, osquery's source, reads), so
IPv4 and IPv6 arrive together with broadcast/peer addresses; psutil.net_if_addrs would cost the same dump
but merges broadcast and point-to-point and hides IFA_LOCAL vs IFA_ADDRESS. Link details read
/sys/class/net/<if>/* (the same kernel values SIOCGIF* and rtnl_link_stats expose) so --hostfs trees and
fixtures work; interface_ipv6 reads /proc/sys/net/ipv6/conf/<if>/*.
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import os
import socket
import struct
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _netlink, _proc

INTERFACE_ADDRESSES_SPEC = table(
    'interface_addresses',
    'Network interfaces and relevant metadata.',
    columns=[
        col('interface', TEXT, 'Interface name'),
        col('address', TEXT, 'Specific address for interface'),
        col('mask', TEXT, 'Interface netmask'),
        col('broadcast', TEXT, 'Broadcast address for the interface'),
        col('point_to_point', TEXT, 'PtP address for the interface'),
        col('type', TEXT, 'Type of address. One of dhcp, manual, auto, other, unknown'),
        col('friendly_name', TEXT, 'The friendly display name of the interface.', platforms=('windows',)),
    ],
    generator='gen_interface_addresses',
    cacheable=True,
    platforms=('darwin', 'linux', 'windows'),
)

INTERFACE_DETAILS_SPEC = table(
    'interface_details',
    'Detailed information and stats of network interfaces.',
    columns=[
        col('interface', TEXT, 'Interface name'),
        col('mac', TEXT, 'MAC of interface (optional)', collate='nocase'),
        col('type', INTEGER, 'Interface type (includes virtual)'),
        col('mtu', INTEGER, 'Network MTU'),
        col('metric', INTEGER, 'Metric based on the speed of the interface'),
        col('flags', INTEGER, 'Flags (netdevice) for the device'),
        col('ipackets', BIGINT, 'Input packets'),
        col('opackets', BIGINT, 'Output packets'),
        col('ibytes', BIGINT, 'Input bytes'),
        col('obytes', BIGINT, 'Output bytes'),
        col('ierrors', BIGINT, 'Input errors'),
        col('oerrors', BIGINT, 'Output errors'),
        col('idrops', BIGINT, 'Input drops'),
        col('odrops', BIGINT, 'Output drops'),
        col('collisions', BIGINT, 'Packet Collisions detected'),
        col('last_change', BIGINT, 'Time of last device modification (optional)'),
        col('link_speed', BIGINT, 'Interface speed in Mb/s'),
        col('pci_slot', TEXT, 'PCI slot number'),
        col('friendly_name', TEXT, 'The friendly display name of the interface.', platforms=('windows',)),
        col('description', TEXT, 'Short description of the object a one-line string.', platforms=('windows',)),
        col('manufacturer', TEXT, "Name of the network adapter's manufacturer.", platforms=('windows',)),
        col('connection_id', TEXT, 'Name of the network connection as it appears in the Network Connections Control Panel program.', platforms=('windows',)),
        col('connection_status', TEXT, 'State of the network adapter connection to the network.', platforms=('windows',)),
        col('enabled', INTEGER, 'Indicates whether the adapter is enabled or not.', platforms=('windows',)),
        col('physical_adapter', INTEGER, 'Indicates whether the adapter is a physical or a logical adapter.', platforms=('windows',)),
        col('speed', INTEGER, 'Estimate of the current bandwidth in bits per second.', platforms=('windows',)),
        col('service', TEXT, 'The name of the service the network adapter uses.', platforms=('windows',)),
        col('dhcp_enabled', INTEGER, 'If TRUE, the dynamic host configuration protocol (DHCP) server automatically assigns an IP address to the computer system when establishing a network connection.', platforms=('windows',)),
        col('dhcp_lease_expires', TEXT, 'Expiration date and time for a leased IP address that was assigned to the computer by the dynamic host configuration protocol (DHCP) server.', platforms=('windows',)),
        col('dhcp_lease_obtained', TEXT, 'Date and time the lease was obtained for the IP address assigned to the computer by the dynamic host configuration protocol (DHCP) server.', platforms=('windows',)),
        col('dhcp_server', TEXT, 'IP address of the dynamic host configuration protocol (DHCP) server.', platforms=('windows',)),
        col('dns_domain', TEXT, "Organization name followed by a period and an extension that indicates the type of organization, such as 'microsoft.com'.", platforms=('windows',)),
        col('dns_domain_suffix_search_order', TEXT, 'Array of DNS domain suffixes to be appended to the end of host names during name resolution.', platforms=('windows',)),
        col('dns_host_name', TEXT, 'Host name used to identify the local computer for authentication by some utilities.', platforms=('windows',)),
        col('dns_server_search_order', TEXT, 'Array of server IP addresses to be used in querying for DNS servers.', platforms=('windows',)),
    ],
    generator='gen_interface_details',
    cacheable=True,
    platforms=('darwin', 'linux', 'windows'),
    examples=('select interface, mac, type, idrops as input_drops from interface_details;', 'select interface, mac, type, flags, (1<<8) as promisc_flag from interface_details where (flags & promisc_flag) > 0;', 'select interface, mac, type, flags, (1<<3) as loopback_flag from interface_details where (flags & loopback_flag) > 0;'),
)

INTERFACE_IPV6_SPEC = table(
    'interface_ipv6',
    'IPv6 configuration and stats of network interfaces.',
    columns=[
        col('interface', TEXT, 'Interface name'),
        col('hop_limit', INTEGER, 'Current Hop Limit'),
        col('forwarding_enabled', INTEGER, 'Enable IP forwarding'),
        col('redirect_accept', INTEGER, 'Accept ICMP redirect messages'),
        col('rtadv_accept', INTEGER, 'Accept ICMP Router Advertisement'),
    ],
    generator='gen_interface_ipv6',
    platforms=('darwin', 'linux'),
)

SPECS = [INTERFACE_ADDRESSES_SPEC, INTERFACE_DETAILS_SPEC, INTERFACE_IPV6_SPEC]


IFF_BROADCAST = 0x2
IFF_RUNNING, IFF_LOWER_UP, IFF_DORMANT = 0x40, 0x10000, 0x20000
_SIOCETHTOOL, _ETHTOOL_GDRVINFO = 0x8946, 0x3


def _read(path: str) -> str | None:
    try:
        return _proc.read(path).decode("utf-8", "replace").strip()
    except OSError:
        return None


def _int(text: str | None, base: int = 10) -> int | None:
    if text is None:
        return None
    try:
        return int(text, base)
    except ValueError:
        return None


def interfaces(ctx: Context) -> list[str]:
    """Interface names in ifindex order (the order of osquery's getifaddrs AF_PACKET entries)."""
    base = ctx.path("/sys/class/net")
    try:
        names = [n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n))]
    except OSError:
        return []
    return sorted(names, key=lambda n: (_int(_read(f"{base}/{n}/ifindex")) or 1 << 30, n))


def _link_flags(sysdir: str) -> int | None:
    """dev_get_flags(): sysfs holds dev->flags; RUNNING/LOWER_UP/DORMANT derive from operstate/carrier."""
    flags = _int(_read(sysdir + "/flags"), 16)
    if flags is None:
        return None
    flags &= ~(IFF_RUNNING | IFF_LOWER_UP | IFF_DORMANT)
    if flags & 0x1:  # IFF_UP: carrier is only readable on running devices
        oper = _read(sysdir + "/operstate")
        if oper in ("up", "unknown"):
            flags |= IFF_RUNNING
        if oper == "dormant":
            flags |= IFF_DORMANT
        if _read(sysdir + "/carrier") == "1":
            flags |= IFF_LOWER_UP
    return flags


# --- interface_addresses ------------------------------------------------------------------------

def gen_interface_addresses(ctx: Context) -> Iterator[Row]:
    if ctx.root != "/":
        # Addresses live in a network namespace, not in a file tree: only IPv6 has a /proc listing.
        yield from _addresses_from_if_inet6(ctx)
        return
    try:
        data = _netlink.dump(_netlink.RTM_GETADDR, struct.pack("=BBBBI", socket.AF_UNSPEC, 0, 0, 0, 0))
    except OSError as e:
        ctx.missing(["address"], f"rtnetlink RTM_GETADDR failed: {e.strerror}", None, rows=0)
        return
    names: dict[int, str] = {}
    flags_cache: dict[str, int] = {}
    for a in _netlink.addresses(data):
        link = _netlink.if_name(a["index"], names)
        yield _address_row(a, link, flags_cache, ctx)


def _address_row(a: dict, link: str, flags_cache: dict[str, int], ctx: Context) -> Row:
    family = a["family"]
    # glibc getifaddrs: IFA_LOCAL, when present, is the address and IFA_ADDRESS becomes the peer/dst.
    addr = a.get("local") or a.get("address")
    dst = a.get("address") if a.get("local") else None
    if a.get("broadcast"):
        dst = a["broadcast"]
    name = a.get("label") or link if family == socket.AF_INET else link
    if addr and family == socket.AF_INET6:
        ip = ipaddress.IPv6Address(addr)
        if ip.is_link_local or (ip.is_multicast and (ip.packed[1] & 0x0F) == 2):
            addr = f"{addr}%{link}"  # getnameinfo(NI_NUMERICHOST) appends the scope, as osquery shows
    bits = 32 if family == socket.AF_INET else 128
    plen = min(a["prefixlen"], bits)
    mask_int = ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
    mask = str(ipaddress.IPv4Address(mask_int) if bits == 32 else ipaddress.IPv6Address(mask_int))
    if link not in flags_cache:
        flags_cache[link] = _int(_read(ctx.path(f"/sys/class/net/{link}/flags")), 16) or 0
    row: Row = {"interface": name, "address": addr, "mask": mask, "type": "unknown"}
    if dst is not None:
        row["broadcast" if flags_cache[link] & IFF_BROADCAST else "point_to_point"] = dst
    return row


def _addresses_from_if_inet6(ctx: Context) -> Iterator[Row]:
    try:
        text = _proc.read_text(ctx.path("/proc/net/if_inet6"))
    except OSError:
        return
    for row in parse_if_inet6(text):
        yield row
    ctx.note("IPv4 addresses need the host's network namespace (rtnetlink); only IPv6 read from the tree")


def parse_if_inet6(text: str) -> Iterator[Row]:
    """/proc/net/if_inet6: hex address, ifindex, prefix length, scope, flags, name."""
    for line in text.splitlines():
        f = line.split()
        if len(f) < 6 or len(f[0]) != 32:
            continue
        ip = ipaddress.IPv6Address(bytes.fromhex(f[0]))
        plen = int(f[2], 16)
        addr = str(ip) + (f"%{f[5]}" if ip.is_link_local else "")
        mask = str(ipaddress.IPv6Address(((1 << 128) - 1) ^ ((1 << (128 - plen)) - 1)))
        yield {"interface": f[5], "address": addr, "mask": mask, "type": "unknown"}


# --- interface_details --------------------------------------------------------------------------

_COUNTERS = (("ipackets", "rx_packets"), ("opackets", "tx_packets"), ("ibytes", "rx_bytes"),
             ("obytes", "tx_bytes"), ("ierrors", "rx_errors"), ("oerrors", "tx_errors"),
             ("idrops", "rx_dropped"), ("odrops", "tx_dropped"), ("collisions", "collisions"))


def gen_interface_details(ctx: Context) -> Iterator[Row]:
    base = ctx.path("/sys/class/net")
    want_counters = any(ctx.used(c) for c, _ in _COUNTERS)
    want_pci = ctx.used("pci_slot")
    unreadable = 0
    for name in interfaces(ctx):
        d = f"{base}/{name}"
        mac = _read(d + "/address") or ""
        octets = [o for o in mac.split(":") if o][:6]
        octets += ["00"] * (6 - len(octets))
        row: Row = {
            "interface": name,
            "mac": ":".join(octets).lower(),
            "type": _int(_read(d + "/type")),
            "mtu": _int(_read(d + "/mtu")),
            "metric": 0,  # SIOCGIFMETRIC is always 0 on Linux
            "flags": _link_flags(d),
            "last_change": -1,  # osquery: not implemented on Linux
        }
        if want_counters:
            for col_name, stat in _COUNTERS:
                row[col_name] = _int(_read(f"{d}/statistics/{stat}"))
            if row["ibytes"] is None:
                unreadable += 1
        if ctx.used("link_speed"):
            speed = _int(_read(d + "/speed"))  # EINVAL while down/unsupported; -1 = SPEED_UNKNOWN
            row["link_speed"] = speed if speed is not None and speed >= 0 else 0
        if want_pci:
            row["pci_slot"] = _bus_info(ctx, name, d)
        yield row
    if unreadable:
        ctx.missing([c for c, _ in _COUNTERS], "statistics not readable in /sys/class/net", None, rows=unreadable)


def _bus_info(ctx: Context, name: str, sysdir: str) -> str:
    """ETHTOOL_GDRVINFO bus_info as osquery reports it ("-1" when the driver answers nothing)."""
    if ctx.root == "/":
        buf = ctypes.create_string_buffer(struct.pack("=I", _ETHTOOL_GDRVINFO), 196)
        ifr = struct.pack("16sP", name.encode()[:15], ctypes.addressof(buf)) + b"\0" * 16
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                fcntl.ioctl(s.fileno(), _SIOCETHTOOL, ifr)
            return buf.raw[100:132].split(b"\0", 1)[0].decode("ascii", "replace")
        except OSError:
            return "-1"
    dev = os.path.join(sysdir, "device")
    target = _proc.readlink(dev)
    return os.path.basename(target) if target else "-1"


# --- interface_ipv6 -----------------------------------------------------------------------------

def gen_interface_ipv6(ctx: Context) -> Iterator[Row]:
    conf = ctx.path("/proc/sys/net/ipv6/conf")
    all_redirect = _int(_read(conf + "/all/accept_redirects"))
    missing = 0
    for name in interfaces(ctx):
        d = f"{conf}/{name}"
        hop = _int(_read(d + "/hop_limit"))
        fwd = _int(_read(d + "/forwarding"))
        redirect = _int(_read(d + "/accept_redirects"))
        ra = _int(_read(d + "/accept_ra"))
        row: Row = {"interface": name, "hop_limit": hop, "forwarding_enabled": fwd}
        # Effective values per ip-sysctl.txt, as osquery computes them.
        if fwd is not None and redirect is not None and all_redirect is not None:
            row["redirect_accept"] = int(bool(all_redirect and redirect) if fwd else bool(all_redirect or redirect))
        if ra is not None and fwd is not None:
            row["rtadv_accept"] = 1 if ra == 2 else int(bool(ra and not fwd))
        if hop is None:
            missing += 1
        yield row
    if missing:
        ctx.missing(["hop_limit", "forwarding_enabled", "redirect_accept", "rtadv_accept"],
                    "no /proc/sys/net/ipv6/conf entry (IPv6 disabled on the interface?)", None, rows=missing)
