"""ulimit_info: the collector's own resource limits (getrlimit), as osquery reports its own.

osquery's table is not per-process: it calls getrlimit for each resource it knows and prints
"unlimited" for RLIM_INFINITY. Resource names and their order (osquery iterates a sorted map) match.
"""

from __future__ import annotations

import resource
from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table

SPEC = table(
    'ulimit_info',
    'System resource usage limits.',
    columns=[
        col('type', TEXT, 'System resource to be limited'),
        col('soft_limit', TEXT, 'Current limit value'),
        col('hard_limit', TEXT, 'Maximum limit value'),
    ],
    platforms=('darwin', 'linux'),
    examples=('select * from ulimit_info',),
)


# Python's resource module lacks RLIMIT_LOCKS; its number is fixed in the Linux ABI.
_LINUX_EXTRA = {"locks": 10}
_RESOURCES = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
              "rss", "rtprio", "sigpending", "stack")


def _text(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def generate(ctx: Context) -> Iterator[Row]:
    for name in _RESOURCES:
        rid = getattr(resource, f"RLIMIT_{name.upper()}", _LINUX_EXTRA.get(name))
        if rid is None:
            continue  # not defined on this platform: osquery compiles it out too
        try:
            soft, hard = resource.getrlimit(rid)
        except (OSError, ValueError):
            ctx.missing(["soft_limit", "hard_limit"], f"getrlimit({name}) failed")
            continue
        yield {"type": name, "soft_limit": _text(soft), "hard_limit": _text(hard)}
