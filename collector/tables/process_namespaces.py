"""process_namespaces: the namespace inodes of each process, from the /proc/<pid>/ns/* links."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'process_namespaces',
    'Linux namespaces for processes running on the host system.',
    columns=[
        col('pid', INTEGER, 'Process (or thread) ID', index=True, optimized=True),
        col('cgroup_namespace', TEXT, 'cgroup namespace inode'),
        col('ipc_namespace', TEXT, 'ipc namespace inode'),
        col('mnt_namespace', TEXT, 'mnt namespace inode'),
        col('net_namespace', TEXT, 'net namespace inode'),
        col('pid_namespace', TEXT, 'pid namespace inode'),
        col('user_namespace', TEXT, 'user namespace inode'),
        col('uts_namespace', TEXT, 'uts namespace inode'),
    ],
    platforms=('linux',),
    examples=('select * from process_namespaces where pid = 1',),
    requires={"CAP_SYS_PTRACE": [n + "_namespace" for n in "cgroup ipc mnt net pid user uts".split()]},
)



def generate(ctx: Context) -> Iterator[Row]:
    proc = ctx.path("/proc")
    wanted = [n for n in _proc.NAMESPACES if ctx.used(f"{n}_namespace")]
    denied: dict[str, int] = {}
    for pid in _proc.wanted_pids(proc, ctx.eq("pid")):
        row: Row = {"pid": pid}
        gone = False
        for name in wanted:
            try:
                ino = _proc.ns_inode(proc, pid, name)
            except OSError as e:
                if e.errno in (errno.EACCES, errno.EPERM):
                    denied[name] = denied.get(name, 0) + 1
                elif e.errno == errno.ENOENT and not _exists(f"{proc}/{pid}"):
                    gone = True
                    break
                continue  # ENOENT with the process alive: the kernel lacks this namespace type
            row[f"{name}_namespace"] = str(ino) if ino is not None else None
        if gone:
            continue
        yield row
    if denied:
        ctx.missing([f"{n}_namespace" for n in denied], "permission denied reading /proc/<pid>/ns/*",
                    "CAP_SYS_PTRACE", rows=max(denied.values()))


def _exists(path: str) -> bool:
    try:
        os.stat(path)
    except OSError:
        return False
    return True
