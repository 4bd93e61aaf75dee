"""process_open_sockets and listening_ports: /proc/<pid>/net/* sockets joined to owners via /proc/<pid>/fd.

Both tables share one scan (collector/tables/_sockets.py). osquery semantics kept: sockets of every
network namespace, `net_namespace` as the namespace inode, state names only for TCP, "" for columns that
do not apply (path of an IP socket, addresses of a UNIX socket). Where osquery prints pid/fd -1 for a
socket no process holds, we return NULL and say why in a warning.
"""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _sockets
from collector.tables._sockets import AF_INET, AF_INET6, AF_UNIX

PROCESS_OPEN_SOCKETS_SPEC = table(
    'process_open_sockets',
    'Processes which have open network sockets on the system.',
    columns=[
        col('pid', INTEGER, 'Process (or thread) ID', additional=True),
        col('fd', BIGINT, 'Socket file descriptor number'),
        col('socket', BIGINT, 'Socket handle or inode number'),
        col('family', INTEGER, 'Network protocol (IPv4, IPv6)'),
        col('protocol', INTEGER, 'Transport protocol (TCP/UDP)'),
        col('local_address', TEXT, 'Socket local address'),
        col('remote_address', TEXT, 'Socket remote address'),
        col('local_port', INTEGER, 'Socket local port'),
        col('remote_port', INTEGER, 'Socket remote port'),
        col('path', TEXT, 'For UNIX sockets (family=AF_UNIX), the domain path'),
        col('state', TEXT, 'TCP socket state'),
        col('net_namespace', TEXT, 'The inode number of the network namespace'),
    ],
    generator='gen_process_open_sockets',
    platforms=('darwin', 'linux', 'windows'),
    examples=('select * from process_open_sockets where pid = 1',),
    requires={"CAP_SYS_PTRACE": ["pid", "fd", "net_namespace"]},
)

LISTENING_PORTS_SPEC = table(
    'listening_ports',
    'Processes with listening (bound) network sockets/ports.',
    columns=[
        col('pid', INTEGER, 'Process (or thread) ID'),
        col('port', INTEGER, 'Transport layer port'),
        col('protocol', INTEGER, 'Transport protocol (TCP/UDP)'),
        col('family', INTEGER, 'Network protocol (IPv4, IPv6)'),
        col('address', TEXT, 'Specific address for bind'),
        col('fd', BIGINT, 'Socket file descriptor number'),
        col('socket', BIGINT, 'Socket handle or inode number'),
        col('path', TEXT, 'Path for UNIX domain sockets'),
        col('net_namespace', TEXT, 'The inode number of the network namespace'),
    ],
    generator='gen_listening_ports',
    cacheable=True,
    requires={"CAP_SYS_PTRACE": ["pid", "fd", "net_namespace"]},
    platforms=('darwin', 'linux', 'windows'),
)


SPECS = [PROCESS_OPEN_SOCKETS_SPEC, LISTENING_PORTS_SPEC]


def _inventory(ctx: Context) -> _sockets.Inventory:
    want_owners = ctx.used("pid") or ctx.used("fd")
    return _sockets.scan(ctx.path("/proc"), ctx.eq("pid"), want_owners, ctx.memo)


def _explain(ctx: Context, inv: _sockets.Inventory, unowned: int, orphans: int) -> None:
    """unowned: sockets with an inode but no owner found; orphans: inode 0 (TIME_WAIT), owned by nobody."""
    # Filtering by pid, a process whose fds are closed to us yields no row at all: say why.
    if inv.fd_denied and (unowned or inv.pid_filter):
        ctx.missing(["pid", "fd"], f"permission denied reading /proc/<pid>/fd of {inv.fd_denied} process(es)",
                    "CAP_SYS_PTRACE", rows=unowned)
        unowned = 0
    if unowned or orphans:
        ctx.note(f"{unowned + orphans} socket(s) are held by no process (TIME_WAIT, closing, or kernel-owned): "
                 "pid and fd are NULL where osquery prints -1")
    if inv.ns_unknown:
        ctx.missing(["net_namespace"], "permission denied reading /proc/<pid>/ns/net", "CAP_SYS_PTRACE")


def _ns(value: int | None) -> str | None:
    return None if value is None else str(value)


def gen_process_open_sockets(ctx: Context) -> Iterator[Row]:
    inv = _inventory(ctx)
    unowned = orphans = 0
    for s in inv.sockets:
        owner = inv.owners.get(s.inode) if s.inode else None
        if owner is None:
            if inv.pid_filter:
                continue  # filtering by pid: only sockets those processes hold
            if s.inode:
                unowned += 1
            else:
                orphans += 1
        yield {
            "pid": owner[0] if owner else None,
            "fd": owner[1] if owner else None,
            "socket": s.inode,
            "family": s.family,
            "protocol": s.protocol,
            "local_address": s.local_address,
            "remote_address": s.remote_address,
            "local_port": s.local_port,
            "remote_port": s.remote_port,
            "path": s.path,
            "state": s.state,
            "net_namespace": _ns(s.net_ns),
        }
    _explain(ctx, inv, unowned, orphans)


def gen_listening_ports(ctx: Context) -> Iterator[Row]:
    # osquery's rule, applied to process_open_sockets: named UNIX sockets, and IP sockets with no peer
    # (TCP LISTEN, unconnected UDP, raw/ICMP); packet sockets pass too.
    inv = _inventory(ctx)
    unowned = orphans = 0
    for s in inv.sockets:
        if s.family == AF_UNIX and not s.path:
            continue
        if s.family in (AF_INET, AF_INET6) and s.remote_port != 0:
            continue
        owner = inv.owners.get(s.inode) if s.inode else None
        if owner is None:
            if s.inode:
                unowned += 1
            else:
                orphans += 1
        row: Row = {
            "pid": owner[0] if owner else None,
            "fd": owner[1] if owner else None,
            "protocol": s.protocol,
            "family": s.family,
            # osquery prints socket 0 for UNIX sockets; the real inode is strictly more useful for joins.
            "socket": s.inode,
            "net_namespace": _ns(s.net_ns),
        }
        if s.family == AF_UNIX:
            row["port"], row["path"] = 0, s.path
        else:
            row["port"], row["address"] = s.local_port, s.local_address
        yield row
    _explain(ctx, inv, unowned, orphans)
