"""cpu_time: per-core CPU time counters from /proc/stat."""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'cpu_time',
    'Displays information from /proc/stat file about the time the cpu cores spent in different parts of the system.',
    columns=[
        col('core', INTEGER, 'Name of the cpu (core)'),
        col('user', BIGINT, 'Time spent in user mode'),
        col('nice', BIGINT, 'Time spent in user mode with low priority (nice)'),
        col('system', BIGINT, 'Time spent in system mode'),
        col('idle', BIGINT, 'Time spent in the idle task'),
        col('iowait', BIGINT, 'Time spent waiting for I/O to complete'),
        col('irq', BIGINT, 'Time spent servicing interrupts'),
        col('softirq', BIGINT, 'Time spent servicing softirqs'),
        col('steal', BIGINT, 'Time spent in other operating systems when running in a virtualized environment'),
        col('guest', BIGINT, 'Time spent running a virtual CPU for a guest OS under the control of the Linux kernel'),
        col('guest_nice', BIGINT, 'Time spent running a niced guest '),
    ],
    platforms=('darwin', 'linux'),
)


_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice")


def generate(ctx: Context) -> Iterator[Row]:
    """Per-core lines of /proc/stat, in USER_HZ ticks as the kernel reports them (osquery does not convert)."""
    try:
        text = _proc.read_text(ctx.path("/proc/stat"))
    except OSError as e:
        ctx.note(f"cannot read /proc/stat: {e.strerror}")
        return
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        words = line.split()
        core = words[0][3:]
        # osquery needs at least 7 counters; older kernels lack steal/guest/guest_nice, which read 0.
        if not core.isdigit() or len(words) < 8:
            continue
        row: Row = {"core": int(core)}
        for i, name in enumerate(_FIELDS, start=1):
            row[name] = int(words[i]) if i < len(words) else 0
        yield row
