"""process_envs: one row per environment variable of each process, from /proc/<pid>/environ."""

from __future__ import annotations

import errno
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'process_envs',
    'A key/value table of environment variables for each process.',
    columns=[
        col('pid', INTEGER, 'Process (or thread) ID', index=True, optimized=True),
        col('key', TEXT, 'Environment variable name'),
        col('value', TEXT, 'Environment variable value'),
    ],
    platforms=('darwin', 'linux'),
    examples=('select * from process_envs where pid = 1', 'select pe.*\n     from process_envs pe, (select * from processes limit 10) p\n     where p.pid = pe.pid;'),
    requires={"CAP_SYS_PTRACE": ["*"]},
)



def generate(ctx: Context) -> Iterator[Row]:
    proc = ctx.path("/proc")
    denied = 0
    for pid in _proc.wanted_pids(proc, ctx.eq("pid")):
        try:
            raw = _proc.read(f"{proc}/{pid}/environ", limit=ctx.limits.read_max)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EPERM):
                denied += 1
            continue  # gone mid-scan: skipped silently, as osquery does
        # NUL-separated KEY=VALUE strings; like osquery, stop at the first empty string.
        for entry in raw.split(b"\0"):
            if not entry:
                break
            key, _, value = entry.decode("utf-8", "replace").partition("=")
            yield {"pid": pid, "key": key, "value": value}
    if denied:
        ctx.missing(["key", "value"], f"permission denied reading /proc/<pid>/environ of {denied} process(es); "
                    "their variables are absent", "CAP_SYS_PTRACE", rows=denied)
