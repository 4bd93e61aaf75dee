"""process_open_files and process_open_pipes: the descriptor tables in /proc/<pid>/fd.

Both read the fd links; process_open_files keeps what osquery calls vnodes (not sockets, pipes or
anon inodes), process_open_pipes pairs the ends of each pipe across processes by pipe inode.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator

from collector.table import BIGINT, TEXT, Context, Row, col, table
from collector.tables import _proc

PROCESS_OPEN_FILES_SPEC = table(
    'process_open_files',
    'File descriptors for each process.',
    columns=[
        col('pid', BIGINT, 'Process (or thread) ID', index=True),
        col('fd', BIGINT, 'Process-specific file descriptor number'),
        col('path', TEXT, 'Filesystem path of descriptor'),
    ],
    generator='gen_process_open_files',
    platforms=('darwin', 'linux'),
    examples=('select * from process_open_files where pid = 1',),
    requires={"CAP_SYS_PTRACE": ["*"]},
)

PROCESS_OPEN_PIPES_SPEC = table(
    'process_open_pipes',
    'Pipes and partner processes for each process.',
    columns=[
        col('pid', BIGINT, 'Process ID'),
        col('fd', BIGINT, 'File descriptor'),
        col('mode', TEXT, 'Pipe open mode (r/w)'),
        col('inode', BIGINT, 'Pipe inode number'),
        col('type', TEXT, 'Pipe Type: named vs unnamed/anonymous'),
        col('partner_pid', BIGINT, 'Process ID of partner process sharing a particular pipe'),
        col('partner_fd', BIGINT, "File descriptor of shared pipe at partner's end"),
        col('partner_mode', TEXT, "Mode of shared pipe at partner's end"),
    ],
    generator='gen_process_open_pipes',
    platforms=('linux',),
    examples=('select * from process_open_pipes',),
    requires={"CAP_SYS_PTRACE": ["*"]},
)

SPECS = [PROCESS_OPEN_FILES_SPEC, PROCESS_OPEN_PIPES_SPEC]

_DENIED = (errno.EACCES, errno.EPERM)
_NOT_FILES = ("socket:", "pipe:", "anon_inode:")


def gen_process_open_files(ctx: Context) -> Iterator[Row]:
    proc = ctx.path("/proc")
    denied = 0
    for pid in _proc.wanted_pids(proc, ctx.eq("pid")):
        try:
            links = _proc.fd_links(proc, pid)
        except OSError as e:
            denied += e.errno in _DENIED
            continue  # gone mid-scan: skipped silently, as osquery does
        for fd, target in sorted(links):
            if target.startswith(_NOT_FILES):
                continue
            yield {"pid": pid, "fd": fd, "path": target}
    if denied:
        ctx.missing(["fd", "path"], f"permission denied reading /proc/<pid>/fd of {denied} process(es); "
                    "their files are absent", "CAP_SYS_PTRACE", rows=denied)


def _mode(fdpath: str) -> str:
    """r/w/rw from the fd link's own permission bits, which the kernel sets from the open mode."""
    try:
        m = os.lstat(fdpath).st_mode
    except OSError:
        return "-"
    return ("r" if m & 0o444 else "") + ("w" if m & 0o222 else "")


def collect_pipes(proc: str) -> tuple[list[tuple[int, int, str, int, str]], int]:
    """Every pipe end: (pid, fd, mode, inode, type) plus the count of processes we could not read."""
    ends = []
    denied = 0
    for pid in _proc.pids(proc):
        try:
            links = _proc.fd_links(proc, pid)
        except OSError as e:
            denied += e.errno in _DENIED
            continue
        for fd, target in sorted(links):
            fdpath = f"{proc}/{pid}/fd/{fd}"
            if target.startswith("pipe:["):
                try:
                    ends.append((pid, fd, _mode(fdpath), int(target[6:-1]), "anonymous"))
                except ValueError:
                    continue
            elif not target.startswith(("socket:", "anon_inode:")):
                # A FIFO shows its path: only a stat through the fd tells it from a regular file.
                try:
                    st = os.stat(fdpath)
                except OSError:
                    continue
                if stat.S_ISFIFO(st.st_mode):
                    ends.append((pid, fd, _mode(fdpath), st.st_ino, "named"))
    return ends, denied


def gen_process_open_pipes(ctx: Context) -> Iterator[Row]:
    ends, denied = collect_pipes(ctx.path("/proc"))
    by_inode: dict[int, list[tuple[int, int, str, int, str]]] = {}
    for end in ends:
        by_inode.setdefault(end[3], []).append(end)
    for end in ends:
        pid, fd, mode, inode, kind = end
        base: Row = {"pid": pid, "fd": fd, "mode": mode, "inode": inode, "type": kind}
        peers = by_inode[inode]
        if len(peers) == 1:
            yield base  # no other end open anywhere we can see: partner columns stay NULL
            continue
        for peer in peers:
            # osquery's pairing: every other end whose mode complements ours (or any end if we are rw).
            if peer is end or (peer[2] == mode and mode != "rw"):
                continue
            yield {**base, "partner_pid": peer[0], "partner_fd": peer[1], "partner_mode": peer[2]}
    if denied:
        ctx.missing(["partner_pid", "partner_fd", "partner_mode"],
                    f"permission denied reading /proc/<pid>/fd of {denied} process(es); their pipe ends are "
                    "absent and may hide partners", "CAP_SYS_PTRACE", rows=denied)
