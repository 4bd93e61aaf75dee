"""Socket inventory from /proc: the parser behind process_open_sockets and listening_ports.

The kernel lists sockets per network namespace in /proc/<pid>/net/{tcp,tcp6,udp,...,unix,packet}; the
owning process is only visible from the other side, as `socket:[<inode>]` links in /proc/<pid>/fd. Like
osquery, we walk every process once: its fds give inode -> (pid, fd), and the first process seen in each
network namespace lends its /proc/<pid>/net view of that namespace (so container sockets are included).
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

from collector.tables import _proc

AF_UNIX, AF_INET, AF_INET6, AF_PACKET = 1, 2, 10, 17

# /proc/net file stem -> IP protocol number osquery reports for it (raw sockets all report IPPROTO_RAW).
INET_FILES = (("icmp", 1), ("tcp", 6), ("udp", 17), ("udplite", 136), ("raw", 255))

# Index = the kernel's TCP state number as printed (hex) in the `st` column; names as osquery prints them.
TCP_STATES = ("UNKNOWN", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
              "CLOSED", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING")

_DENIED = (errno.EACCES, errno.EPERM)


@dataclass(slots=True)
class Sock:
    inode: int
    family: int
    protocol: int
    local_address: str = ""
    local_port: int = 0
    remote_address: str = ""
    remote_port: int = 0
    path: str = ""
    state: str = ""
    net_ns: int | None = None


def decode_address(hexaddr: str, family: int) -> str:
    """/proc/net address -> text. The kernel prints each 32-bit word of the address in host byte order."""
    try:
        raw = bytes.fromhex(hexaddr)
    except ValueError:
        return ""
    if family == AF_INET and len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    if family == AF_INET6 and len(raw) == 16:
        words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
        return socket.inet_ntop(socket.AF_INET6, words)
    return ""


def _port(hexport: str) -> int:
    try:
        return int(hexport, 16) if len(hexport) == 4 else 0
    except ValueError:
        return 0


def parse_inet(text: str, family: int, protocol: int, ns: int | None) -> Iterator[Sock]:
    lines = text.splitlines()
    if not lines or not lines[0].lstrip().startswith(("sl", "sk")):
        return
    for line in lines[1:]:
        f = line.split()
        if len(f) < 10:
            continue
        local, _, lport = f[1].partition(":")
        remote, _, rport = f[2].partition(":")
        if not lport or not rport:
            continue
        try:
            inode = int(f[9])
        except ValueError:
            continue
        state = ""
        if protocol == 6:
            try:
                n = int(f[3], 16)
            except ValueError:
                n = 0
            state = TCP_STATES[n] if 0 < n < len(TCP_STATES) else "UNKNOWN"
        yield Sock(inode, family, protocol, decode_address(local, family), _port(lport),
                   decode_address(remote, family), _port(rport), "", state, ns)


def parse_unix(text: str, ns: int | None) -> Iterator[Sock]:
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Num"):
        return
    for line in lines[1:]:
        # Num RefCount Protocol Flags Type St Inode [Path]; the path may itself hold spaces.
        f = line.split(None, 7)
        if len(f) < 7:
            continue
        try:
            inode = int(f[6])
            proto = int(f[2], 16)
        except ValueError:
            continue
        yield Sock(inode, AF_UNIX, proto, path=f[7] if len(f) > 7 else "", net_ns=ns)


def parse_packet(text: str, ns: int | None) -> Iterator[Sock]:
    lines = text.splitlines()
    if not lines or not lines[0].startswith(("sk", "sl")):
        return
    for line in lines[1:]:
        # sk RefCnt Type Proto Iface R Rmem User Inode; Proto is the ethertype in hex.
        f = line.split()
        if len(f) < 9:
            continue
        try:
            inode = int(f[8])
        except ValueError:
            continue
        yield Sock(inode, AF_PACKET, _port(f[3]), state="NONE", net_ns=ns)


def read_namespace(netdir: str, ns: int | None) -> Iterator[Sock]:
    """Every socket of one network namespace, from a /proc/<pid>/net directory."""
    for stem, proto in INET_FILES:
        for family, suffix in ((AF_INET, ""), (AF_INET6, "6")):
            text = _read(f"{netdir}/{stem}{suffix}")
            if text:
                yield from parse_inet(text, family, proto, ns)
    text = _read(f"{netdir}/unix")
    if text:
        yield from parse_unix(text, ns)
    text = _read(f"{netdir}/packet")
    if text:
        yield from parse_packet(text, ns)


def _read(path: str) -> str:
    try:
        return _proc.read(path, limit=1 << 30).decode("utf-8", "replace")
    except OSError:
        return ""  # the kernel lacks that protocol (no IPv6, no udplite): nothing to list


@dataclass
class Inventory:
    """The result of one scan: sockets plus who owns them, and what could not be seen."""

    sockets: list[Sock] = field(default_factory=list)
    owners: dict[int, tuple[int, int]] = field(default_factory=dict)
    pid_filter: bool = False
    fd_denied: int = 0  # processes whose fd table we could not read
    ns_unknown: bool = False  # some namespace inode unreadable (non-root)


def scan(proc: str, wanted: set | None, want_owners: bool, memo: dict | None = None) -> Inventory:
    """Walk processes once: socket owners from their fds, sockets from one process per net namespace.

    memo: the query's scratch space (Context.memo). A join feeds this table one pid at a time, each call
    needing its namespace's socket list: that list is read once per query and shared.
    """
    inv = Inventory(pid_filter=wanted is not None)
    pids = _proc.wanted_pids(proc, wanted)
    # Namespace identity without ptrace: every process of a namespace shows the same procfs entry under
    # /proc/<pid>/net, so its (dev, inode) groups processes even when the ns/net link is unreadable.
    groups: dict[tuple[int, int], list] = {}  # netdir identity -> [pid to read through, ns inode, owns]
    for pid in pids:
        owns = False
        if want_owners or inv.pid_filter:
            try:
                for fd, link in _proc.fd_links(proc, pid):
                    if link.startswith("socket:["):
                        try:
                            inv.owners[int(link[8:-1])] = (pid, fd)
                            owns = True
                        except ValueError:
                            pass
            except OSError as e:
                if e.errno not in _DENIED:
                    continue  # exited mid-scan: osquery skips it silently too
                inv.fd_denied += 1
        key = _netdir_identity(f"{proc}/{pid}/net")
        if key is None:
            continue
        group = groups.setdefault(key, [pid, None, False])
        group[2] = group[2] or owns
        if group[1] is None:
            try:
                group[1] = _proc.ns_inode(proc, pid, "net")
            except OSError:
                pass
    if not groups and not inv.pid_filter:
        # No process readable (a bare fixture tree, or a locked-down /proc): the reader's own namespace.
        ns = None
        try:
            ns = _proc.ns_inode(proc, "self", "net")
        except OSError:
            pass
        groups[(0, 0)] = ["", ns, True]
    for key, (pid, ns, owns) in groups.items():
        if inv.pid_filter and not owns:
            continue  # filtering by pid: these processes hold no socket, nothing of the namespace is theirs
        if ns is None:
            inv.ns_unknown = True
        netdir = f"{proc}/{pid}/net" if pid != "" else f"{proc}/net"
        if memo is None:
            inv.sockets.extend(read_namespace(netdir, ns))
            continue
        cached = memo.get(("sockets", proc, key))
        if cached is None:
            cached = memo[("sockets", proc, key)] = list(read_namespace(netdir, ns))
        inv.sockets.extend(cached)
    return inv


def _netdir_identity(netdir: str) -> tuple[int, int] | None:
    for name in ("unix", "tcp", "dev"):
        try:
            st = os.stat(f"{netdir}/{name}")
        except OSError:
            continue
        return st.st_dev, st.st_ino
    return None
