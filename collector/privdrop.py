"""Dropping root after start-up: `--run_as_user=quarry[:group]`, optionally keeping some capabilities.

    target = privdrop.resolve("quarry:quarry", keep="dac_read_search,sys_ptrace")
    privdrop.hand_over(target, [state_dir, logger_path])   # chown what was created as root
    privdrop.drop(target)                                    # setgroups, setgid, setuid (+ capabilities kept)

The daemon calls this from main() after Daemon.setup(): the state database, the log files, the event sockets
(netlink) and the shipping state folder are open by then, so root is no longer needed for them. What stays
needed is reading what other users own: the tables that read other processes' /proc entries, root-only files
(/etc/shadow for `shadow`, other users' homes) and kernel state. `--run_as_capabilities` keeps a chosen set
across the setuid (prctl PR_SET_KEEPCAPS, then capset on the calling thread; threads started afterwards
inherit it; threads started before the drop, e.g. the event publishers, keep none). The main ones:

    dac_read_search  read any file and directory (shadow, homes' dotfiles, /proc/<pid>/environ of others)
    sys_ptrace       /proc/<pid>/fd, maps and environ of other users' processes (process_open_files,
                     process_open_sockets, process_memory_map, process_envs, listening_ports' pid column)
    net_admin        iptables rules and counters, together with net_raw and dac_read_search

docs/capabilities.md (generated from the tables' declarations) is the complete list, table by table.

The supported least-privilege deployments remain the systemd unit (User=, AmbientCapabilities=) and the
Kubernetes securityContext (deploy/): they set the user and the capability set before Quarry starts and need
none of this. This flag is for hosts where Quarry is started as root by something else.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import grp
import logging
import os
import pwd
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from collector.errors import ConfigError

log = logging.getLogger("quarry.privdrop")

# linux/capability.h numbers of the capabilities worth keeping for tables (see the module docstring).
CAPABILITIES = {"chown": 0, "dac_override": 1, "dac_read_search": 2, "fowner": 3, "kill": 5, "net_admin": 12,
                "net_raw": 13, "ipc_lock": 14, "sys_ptrace": 19, "sys_admin": 21, "sys_resource": 24,
                "audit_read": 37, "audit_control": 30, "syslog": 34}
_PR_SET_KEEPCAPS = 8
_CAP_VERSION_3 = 0x20080522


@dataclass(frozen=True)
class Target:
    user: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    keep: frozenset[str] = frozenset()


def resolve(spec: str, keep: str = "") -> Target:
    """`user[:group]` (names or numbers) and a comma list of capability names -> Target; ConfigError if unknown."""
    user, _, group = spec.partition(":")
    try:
        pw = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, ValueError):
        raise ConfigError(f"no such user {user!r}", field="run_as_user") from None
    if group:
        try:
            gid = (grp.getgrgid(int(group)) if group.isdigit() else grp.getgrnam(group)).gr_gid
        except (KeyError, ValueError):
            raise ConfigError(f"no such group {group!r}", field="run_as_user") from None
    else:
        gid = pw.pw_gid
    groups = tuple(sorted({gid, *os.getgrouplist(pw.pw_name, gid)}))
    names = frozenset(c.strip().lower().removeprefix("cap_") for c in keep.split(",") if c.strip())
    unknown = sorted(names - set(CAPABILITIES))
    if unknown:
        raise ConfigError(f"unknown capabilities {', '.join(unknown)} (known: {', '.join(sorted(CAPABILITIES))})",
                          field="run_as_capabilities")
    return Target(pw.pw_name, pw.pw_uid, gid, groups, names)


def hand_over(target: Target, paths: Iterable[str | Path]) -> int:
    """chown each existing path (folders recursively) to the target, so it keeps writing what root created."""
    count = 0
    for root in paths:
        p = Path(root)
        if not p.exists():
            continue
        items = [p] if not p.is_dir() else [p, *p.rglob("*")]
        for item in items:
            if not item.is_symlink():
                os.chown(item, target.uid, target.gid)
                count += 1
    return count


def drop(target: Target) -> None:
    """setgroups, setgid, setuid to the target for good; keep target.keep capabilities on this thread."""
    if os.geteuid() != 0:
        raise ConfigError("--run_as_user needs Quarry to start as root", field="run_as_user")
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if target.keep and libc.prctl(_PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_KEEPCAPS) failed")
    os.setgroups(list(target.groups))
    os.setgid(target.gid)
    os.setuid(target.uid)  # sets real, effective and saved uid: no way back to root
    if target.keep:
        _capset(libc, sum(1 << CAPABILITIES[c] for c in target.keep))
        libc.prctl(_PR_SET_KEEPCAPS, 0, 0, 0, 0)
    if os.getuid() != target.uid or os.geteuid() != target.uid or os.getegid() != target.gid:
        raise OSError("the privilege drop did not take effect")
    log.info("running as %s (uid %d, gid %d)%s", target.user, target.uid, target.gid,
             f", keeping {', '.join(sorted(target.keep))}" if target.keep else "")


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _capset(libc: ctypes.CDLL, mask: int) -> None:
    """Effective = permitted = mask, inheritable empty (capset(2), version 3: two 32-bit words)."""
    header = _Header(_CAP_VERSION_3, 0)
    data = (_Data * 2)()
    for i in range(2):
        word = (mask >> (32 * i)) & 0xFFFFFFFF
        data[i].effective = data[i].permitted = word
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


def effective_capabilities(pid: int | str = "self") -> int:
    """CapEff of a process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def run_as(spec: str, keep: str, *, database_path: str, logger_path: str) -> Target:
    """The daemon's whole drop: resolve, chown Quarry's state and log files, drop. Errors: ConfigError, OSError.

    `--database_path=/x/osquery.db` keeps state beside other files of /x: only Quarry's own are handed over
    (the database and its -wal/-shm, spool/, deadletter/, status.json, and /x itself so they can be created).
    A folder database_path is Quarry's alone and handed over whole, as is logger_path.
    """
    target = resolve(spec, keep)
    db = Path(database_path)
    if db.suffix == ".db":
        state = db.parent
        os.chown(state, target.uid, target.gid)
        owned = [db, *state.glob(db.name + "-*"), state / "spool", state / "deadletter", state / "status.json"]
    else:
        owned = [db]
    hand_over(target, [*owned, logger_path])
    drop(target)
    return target
