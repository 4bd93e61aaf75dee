"""system_controls: kernel parameters from /proc/sys, with the values the sysctl config files set.

As osquery on Linux: `name` is the /proc/sys path with dots, `subsystem` its first part, `type` always
"string", `current_value` the trimmed file content; `oid` stays NULL (Linux has no numeric MIBs since the
sysctl(2) syscall went away, so `oid =` finds nothing, as in osquery). `name =` reads only that control,
`subsystem =` walks only that subtree. config_value comes from the sysctl.d directories and
/etc/sysctl.conf in procps `sysctl --system` order (a later file wins), keys normalised to dots.
Controls that cannot be read (write-only ones such as vm.compact_memory, or EIO like an unset
net.ipv6.conf.*.stable_secret) get a NULL current_value and one aggregated warning per reason.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table

SPEC = table(
    'system_controls',
    'sysctl names, values, and settings information.',
    columns=[
        col('name', TEXT, 'Full sysctl MIB name', index=True),
        col('oid', TEXT, 'Control MIB', additional=True),
        col('subsystem', TEXT, 'Subsystem ID, control type', additional=True),
        col('current_value', TEXT, 'Value of setting'),
        col('config_value', TEXT, 'The MIB value set in /etc/sysctl.conf'),
        col('type', TEXT, 'Data type'),
        col('field_name', TEXT, 'Specific attribute of opaque type', platforms=('darwin',)),
    ],
    platforms=('darwin', 'linux'),
)

SYSCTL_DIRS = ("/etc/sysctl.d", "/run/sysctl.d", "/usr/local/lib/sysctl.d", "/usr/lib/sysctl.d", "/lib/sysctl.d")
_CHECK_EVERY = 256


def read_config(ctx: Context) -> dict[str, str]:
    """The configured values: sysctl.d files by name (a name in an earlier directory shadows the same
    name in later ones), in lexical order, then /etc/sysctl.conf last."""
    chosen: dict[str, str] = {}
    for d in SYSCTL_DIRS:
        try:
            names = os.listdir(ctx.path(d))
        except OSError:
            continue
        for n in names:
            if n.endswith(".conf") and n not in chosen:
                chosen[n] = f"{d}/{n}"
    config: dict[str, str] = {}
    for n in sorted(chosen):
        _parse_into(ctx.path(chosen[n]), config)
    _parse_into(ctx.path("/etc/sysctl.conf"), config)
    return config


def _parse_into(path: str, config: dict[str, str]) -> None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read(1 << 20).splitlines()
    except OSError:
        return
    for line in lines:
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = key.strip().lstrip("-").replace("/", ".")  # "-key" = ignore errors; "a/b/c" = "a.b.c"
        config[key] = value.strip()


def generate(ctx: Context) -> Iterator[Row]:
    if ctx.eq("oid") is not None:
        return
    base = ctx.path("/proc/sys")
    config = read_config(ctx) if ctx.used("config_value") else {}
    failures: dict[str, int] = {}
    seen = 0
    try:
        names = ctx.eq("name")
        if names is not None:
            roots = []
            for name in sorted(str(n) for n in names):
                rel = name.replace(".", "/")
                if rel and ".." not in rel.split("/") and not rel.startswith("/"):
                    roots.append(rel)
        else:
            subsystems = ctx.eq("subsystem")
            try:
                tops = sorted(os.listdir(base))
            except OSError:
                return
            roots = [t for t in tops if subsystems is None or t in subsystems]
        stack = list(reversed(roots))
        while stack:
            rel = stack.pop()
            real = f"{base}/{rel}"
            if os.path.isdir(real) and not os.path.islink(real):
                try:
                    children = sorted(os.listdir(real))
                except OSError:
                    continue
                stack.extend(f"{rel}/{c}" for c in reversed(children))
                continue
            if not os.path.lexists(real):
                continue
            seen += 1
            if seen % _CHECK_EVERY == 0:
                ctx.check()
            name = rel.replace("/", ".")
            row: Row = {"name": name, "subsystem": name.split(".", 1)[0], "type": "string",
                        "config_value": config.get(name)}
            if ctx.used("current_value"):
                row["current_value"] = _read(real, failures)
            yield row
    finally:
        for reason, n in failures.items():
            ctx.missing(["current_value"], reason, None, rows=n)


def _read(real: str, failures: dict[str, int]) -> str | None:
    try:
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        reason = "write-only control" if e.errno in (errno.EACCES, errno.EPERM) else os.strerror(e.errno or 0)
        failures[reason] = failures.get(reason, 0) + 1
        return None
    try:
        return os.read(fd, 1 << 16).decode("utf-8", "replace").strip()
    except OSError as e:
        reason = os.strerror(e.errno or 0)
        failures[reason] = failures.get(reason, 0) + 1
        return None
    finally:
        os.close(fd)
