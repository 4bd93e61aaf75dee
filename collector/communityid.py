"""Community ID v1 flow hashes and CIDR membership, the network half of osquery's SQL functions.

Community ID (corelight/community-id-spec): base64(sha1(seed . saddr . daddr . proto . 0 . sport . dport))
prefixed with "1:", the endpoints ordered so both directions of a flow hash alike. ICMP/ICMPv6 use type and
code as ports, mapped to the counterpart type so a request and its reply share an ID.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import struct

ICMP, TCP, UDP, ICMP6, SCTP = 1, 6, 17, 58, 132
_PORT_PROTOCOLS = frozenset({ICMP, TCP, UDP, ICMP6, SCTP})

# type -> counterpart type; types not listed are one-way (their code stands in as the second "port").
_ICMP4_PAIRS = {0: 8, 8: 0, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
_ICMP6_PAIRS = {128: 129, 129: 128, 130: 131, 131: 130, 133: 134, 134: 133, 135: 136, 136: 135,
                139: 140, 140: 139, 144: 145, 145: 144}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class CommunityIdError(ValueError):
    """Bad input; the message is osquery's."""


def _addr_key(a: Address) -> tuple[int, bytes]:
    # osquery orders like boost::asio::ip::address: every IPv4 address before every IPv6 address.
    return (a.version, a.packed)


def community_id_v1(saddr: object, daddr: object, sport: object, dport: object, proto: object,
                    seed: object = 0) -> str:
    if not isinstance(seed, int):
        raise CommunityIdError("Community ID seed must be an integer")
    if not -(2**15) <= seed < 2**15:
        raise CommunityIdError("Community ID seed must fit in 2 bytes")
    if not isinstance(saddr, str) or not isinstance(daddr, str):
        raise CommunityIdError("Community ID IPs must be strings")
    try:
        src: Address = ipaddress.ip_address(saddr)
    except ValueError:
        raise CommunityIdError("Community ID saddr cannot be parsed as IP") from None
    try:
        dst: Address = ipaddress.ip_address(daddr)
    except ValueError:
        raise CommunityIdError("Community ID daddr cannot be parsed as IP") from None
    if not isinstance(sport, int) or not isinstance(dport, int):
        raise CommunityIdError("Community ID ports must be integers")
    if not (0 <= sport <= 0xFFFF and 0 <= dport <= 0xFFFF):
        raise CommunityIdError("Community ID ports must fit in 2 bytes")
    if not isinstance(proto, int):
        raise CommunityIdError("Community ID protocol must be an integer")
    if not 0 <= proto <= 0xFF:
        raise CommunityIdError("Community ID protocol must fit in 1 byte")

    one_way = False
    if proto in (ICMP, ICMP6):
        pairs = _ICMP6_PAIRS if proto == ICMP6 else _ICMP4_PAIRS
        if sport in pairs:
            dport = pairs[sport]
        else:
            one_way = True  # sport = type, dport = code, kept in the order given
    ordered = one_way or _addr_key(src) < _addr_key(dst) or (src == dst and sport < dport)
    if not ordered:
        src, dst, sport, dport = dst, src, dport, sport
    data = struct.pack("!h", seed) + src.packed + dst.packed + struct.pack("!BB", proto, 0)
    if proto in _PORT_PROTOCOLS:
        data += struct.pack("!HH", sport, dport)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode("ascii")


def in_cidr_block(cidr: object, ip: object) -> int:
    """1 when ip is a host address of the block, as osquery (boost::asio hosts()) defines it."""
    if not isinstance(cidr, str):
        raise ValueError("CIDR must be a string")
    if not isinstance(ip, str):
        raise ValueError("IP address must be a string")
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise ValueError("IP address cannot be parsed") from None
    family = f"v{addr.version}"
    try:
        if "/" not in cidr:
            raise ValueError(cidr)
        net = ipaddress.ip_network(cidr, strict=False)
        prefix = cidr.rsplit("/", 1)[1]
        if not prefix.isdigit() or net.version != addr.version:
            raise ValueError(cidr)
    except ValueError:
        raise ValueError(f"CIDR for IP address {family} cannot be parsed") from None
    if addr not in net:
        return 0
    # IPv4 blocks of /30 and wider exclude their network and broadcast addresses (osquery's hosts()).
    if addr.version == 4 and net.prefixlen <= 30 and addr in (net.network_address, net.broadcast_address):
        return 0
    return 1
