"""process_memory_map: one row per mapping of each process, from /proc/<pid>/maps."""

from __future__ import annotations

import errno
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'process_memory_map',
    'Process memory mapped files and pseudo device/regions.',
    columns=[
        col('pid', INTEGER, 'Process (or thread) ID', index=True, optimized=True),
        col('start', TEXT, 'Virtual start address (hex)'),
        col('end', TEXT, 'Virtual end address (hex)'),
        col('permissions', TEXT, 'r=read, w=write, x=execute, p=private (cow)'),
        col('offset', BIGINT, 'Offset into mapped path'),
        col('device', TEXT, 'MA:MI Major/minor device ID'),
        col('inode', INTEGER, 'Mapped path inode, 0 means uninitialized (BSS)'),
        col('path', TEXT, 'Path to mapped file or mapped type'),
        col('pseudo', INTEGER, '1 If path is a pseudo path, else 0'),
    ],
    platforms=('darwin', 'linux', 'windows'),
    examples=('select * from process_memory_map where pid = 1',),
    requires={"CAP_SYS_PTRACE": ["*"]},
)



def generate(ctx: Context) -> Iterator[Row]:
    proc = ctx.path("/proc")
    denied = 0
    for pid in _proc.wanted_pids(proc, ctx.eq("pid")):
        try:
            text = _proc.read(f"{proc}/{pid}/maps", limit=1 << 30).decode("utf-8", "replace")
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EPERM):
                denied += 1
            continue
        for line in text.splitlines():
            row = parse_line(line)
            if row is not None:
                row["pid"] = pid
                yield row
        ctx.check()
    if denied:
        ctx.missing(["start", "end", "path"], f"permission denied reading /proc/<pid>/maps of {denied} "
                    "process(es); their mappings are absent", "CAP_SYS_PTRACE", rows=denied)


def parse_line(line: str) -> Row | None:
    """`start-end perms offset dev inode [path]`; the path keeps its spaces (osquery cuts at the first)."""
    f = line.split(None, 5)
    if len(f) < 5:
        return None
    start, sep, end = f[0].partition("-")
    if not sep:
        return None
    try:
        offset = int(f[2], 16)
        inode = int(f[4])
    except ValueError:
        return None
    path = f[5].strip() if len(f) > 5 else ""
    return {
        "start": "0x" + start,
        "end": "0x" + end,
        "permissions": f[1],
        "offset": offset,
        "device": f[3],
        "inode": inode,
        "path": path,
        # osquery: a named region without a backing inode ([heap], [stack], [vdso], ...).
        "pseudo": 1 if inode == 0 and path else 0,
    }
