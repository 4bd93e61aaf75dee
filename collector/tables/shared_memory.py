"""shared_memory: System V shared memory segments, from /proc/sysvipc/shm (this IPC namespace).

osquery walks shmctl(SHM_STAT); /proc/sysvipc/shm is the same kernel table as text and works under
--hostfs. Columns are found by header name, so kernels that add columns do not shift them.
"""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'shared_memory',
    'OS shared memory regions.',
    columns=[
        col('shmid', INTEGER, 'Shared memory segment ID'),
        col('owner_uid', BIGINT, 'User ID of owning process'),
        col('creator_uid', BIGINT, 'User ID of creator process'),
        col('pid', BIGINT, 'Process ID to last use the segment'),
        col('creator_pid', BIGINT, 'Process ID that created the segment'),
        col('atime', BIGINT, 'Attached time'),
        col('dtime', BIGINT, 'Detached time'),
        col('ctime', BIGINT, 'Changed time'),
        col('permissions', TEXT, 'Memory segment permissions'),
        col('size', BIGINT, 'Size in bytes'),
        col('attached', INTEGER, 'Number of attached processes'),
        col('status', TEXT, 'Destination/attach status'),
        col('locked', INTEGER, '1 if segment is locked else 0'),
    ],
    platforms=('linux',),
)


_SHM_DEST = 0o1000  # segment marked for removal once the last process detaches
_SHM_LOCKED = 0o2000  # segment locked in memory (SHM_LOCK)


def _lsperms(mode: int) -> str:
    # osquery's lsperms: four octal digits of the low 12 bits, so SHM_DEST/SHM_LOCKED show in the first.
    return "".join(str((mode >> s) & 7) for s in (9, 6, 3, 0))


def parse(text: str) -> Iterator[Row]:
    lines = text.splitlines()
    if not lines:
        return
    header = lines[0].split()
    for line in lines[1:]:
        f = dict(zip(header, line.split()))
        try:
            mode = int(f["perms"], 8)
            yield {
                "shmid": int(f["shmid"]),
                "owner_uid": int(f["uid"]),
                "creator_uid": int(f["cuid"]),
                "pid": int(f["lpid"]),
                "creator_pid": int(f["cpid"]),
                "atime": int(f["atime"]),
                "dtime": int(f["dtime"]),
                "ctime": int(f["ctime"]),
                "permissions": _lsperms(mode),
                "size": int(f["size"]),
                "attached": int(f["nattch"]),
                "status": "dest" if mode & _SHM_DEST else "",
                "locked": 1 if mode & _SHM_LOCKED else 0,
            }
        except (KeyError, ValueError):
            continue


def generate(ctx: Context) -> Iterator[Row]:
    try:
        text = _proc.read_text(ctx.path("/proc/sysvipc/shm"))
    except OSError:
        return  # kernel without System V IPC: no segments
    yield from parse(text)
