"""rtnetlink dumps (RTM_GETADDR, RTM_GETROUTE) and their parsers, shared by interface_addresses and routes.

osquery reads addresses through getifaddrs() and routes through an RTM_GETROUTE dump; glibc's getifaddrs is
itself an rtnetlink dump, so one netlink round trip gives exactly osquery's view without a subprocess. The
parsers take raw bytes so the tests can feed them hand-built messages.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE, RTM_GETROUTE = 24, 26

IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_BROADCAST = 1, 2, 3, 4
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_PREFSRC, RTA_METRICS = 1, 4, 5, 6, 7, 8
RTAX_MTU, RTAX_HOPLIMIT = 2, 10

_HDR = struct.Struct("=IHHII")


def dump(msg_type: int, payload: bytes) -> bytes:
    """Send one NLM_F_DUMP request and return the concatenated answer messages (without NLMSG_DONE)."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    try:
        sock.settimeout(5)
        seq = 1
        sock.send(_HDR.pack(_HDR.size + len(payload), msg_type, NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + payload)
        chunks: list[bytes] = []
        while True:
            data = sock.recv(1 << 16)
            done = False
            for mtype, _flags, body in messages(data):
                if mtype == NLMSG_DONE:
                    done = True
                elif mtype == NLMSG_ERROR:
                    err = struct.unpack_from("=i", body)[0] if len(body) >= 4 else 0
                    if err:
                        raise OSError(-err, os.strerror(-err))
                    done = True
            chunks.append(data)
            if done or not data:
                return b"".join(chunks)
    finally:
        sock.close()


def messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    off = 0
    while off + _HDR.size <= len(data):
        length, mtype, flags, _seq, _pid = _HDR.unpack_from(data, off)
        if length < _HDR.size:
            return
        yield mtype, flags, data[off + _HDR.size : off + length]
        off += (length + 3) & ~3


def attrs(data: bytes, off: int = 0) -> Iterator[tuple[int, bytes]]:
    while off + 4 <= len(data):
        length, atype = struct.unpack_from("=HH", data, off)
        if length < 4:
            return
        yield atype & 0x3FFF, data[off + 4 : off + length]
        off += (length + 3) & ~3


def ntop(family: int, raw: bytes) -> str:
    return socket.inet_ntop(family, raw)


def addresses(data: bytes) -> Iterator[dict]:
    """RTM_NEWADDR messages as dicts: family, prefixlen, index, address, local, broadcast, label."""
    for mtype, _flags, body in messages(data):
        if mtype != RTM_NEWADDR or len(body) < 8:
            continue
        family, prefixlen, _flags8, scope, index = struct.unpack_from("=BBBBI", body)
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        out: dict = {"family": family, "prefixlen": prefixlen, "index": index, "scope": scope}
        for atype, val in attrs(body, 8):
            if atype in (IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST):
                out[{IFA_ADDRESS: "address", IFA_LOCAL: "local", IFA_BROADCAST: "broadcast"}[atype]] = ntop(
                    family, val)
            elif atype == IFA_LABEL:
                out["label"] = val.split(b"\0", 1)[0].decode("utf-8", "replace")
        yield out


def routes(data: bytes) -> Iterator[dict]:
    """RTM_NEWROUTE messages as dicts of the rtmsg header plus the attributes osquery reads."""
    for mtype, _flags, body in messages(data):
        if mtype != RTM_NEWROUTE or len(body) < 12:
            continue
        family, dst_len, _src_len, _tos, table, _proto, _scope, rtype, flags = struct.unpack_from("=8BI", body)
        out: dict = {"family": family, "dst_len": dst_len, "type": rtype, "flags": flags, "table": table}
        for atype, val in attrs(body, 12):
            if atype == RTA_OIF:
                out["oif"] = struct.unpack_from("=i", val)[0]
            elif atype in (RTA_GATEWAY, RTA_PREFSRC, RTA_DST):
                if family in (socket.AF_INET, socket.AF_INET6):
                    out[{RTA_GATEWAY: "gateway", RTA_PREFSRC: "source", RTA_DST: "dst"}[atype]] = ntop(family, val)
            elif atype == RTA_PRIORITY:
                out["metric"] = struct.unpack_from("=i", val)[0]
            elif atype == RTA_METRICS:
                for xtype, xval in attrs(val):
                    if xtype == RTAX_MTU:
                        out["mtu"] = struct.unpack_from("=i", xval)[0]
                    elif xtype == RTAX_HOPLIMIT:
                        out["hopcount"] = struct.unpack_from("=i", xval)[0]
        yield out


def if_name(index: int, cache: dict[int, str]) -> str:
    name = cache.get(index)
    if name is None:
        try:
            name = socket.if_indextoname(index)
        except OSError:
            name = ""
        cache[index] = name
    return name
