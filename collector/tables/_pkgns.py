"""Package tables' pid_with_namespace support: read a package database inside another mount namespace.

osquery's package tables accept `pid_with_namespace = N` and then read the database as process N sees it
(a container). Without forking into the namespace, /proc/N/root gives the same view of the filesystem.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from collector.table import Context, Row


def roots(ctx: Context, *, with_mnt_id: bool = True) -> Iterator[tuple[str, Row]]:
    """(prefix, echo) pairs: the prefix joins in front of host paths, echo goes into every row."""
    pids = ctx.eq("pid_with_namespace")
    if not pids:
        yield "", {"pid_with_namespace": 0}
        return
    for value in sorted(pids, key=str):
        try:
            pid = int(value)
        except (TypeError, ValueError):
            continue
        if pid == 0:
            yield "", {"pid_with_namespace": 0}
            continue
        prefix = f"/proc/{pid}/root"
        if not os.path.isdir(ctx.path(prefix)):
            ctx.note(f"pid_with_namespace={pid}: no such process or its root is not readable")
            continue
        echo: Row = {"pid_with_namespace": value}
        if with_mnt_id:
            try:
                link = os.readlink(ctx.path(f"/proc/{pid}/ns/mnt"))
                echo["mount_namespace_id"] = link[link.find("[") + 1 : link.rfind("]")]
            except OSError:
                ctx.missing("mount_namespace_id", "cannot read /proc/<pid>/ns/mnt", "CAP_SYS_PTRACE")
        yield prefix, echo
