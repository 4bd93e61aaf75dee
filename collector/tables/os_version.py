"""os_version: the distribution from /etc/os-release (or a process's mount namespace)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'os_version',
    'A single row containing the operating system name and version.',
    columns=[
        col('name', TEXT, 'Distribution or product name'),
        col('version', TEXT, 'Pretty, suitable for presentation, OS version', collate='version'),
        col('major', INTEGER, 'Major release version'),
        col('minor', INTEGER, 'Minor release version'),
        col('patch', INTEGER, 'Optional patch release'),
        col('build', TEXT, 'Optional build-specific or variant string'),
        col('platform', TEXT, 'OS Platform or ID'),
        col('platform_like', TEXT, 'Closely related platforms'),
        col('codename', TEXT, 'OS version codename'),
        col('arch', TEXT, 'OS Architecture'),
        col('extra', TEXT, 'Optional extra release specification', platforms=('darwin',)),
        col('install_date', BIGINT, 'The install date of the OS.', platforms=('windows',)),
        col('revision', INTEGER, 'Update Build Revision, refers to the specific revision number of a Windows update', platforms=('windows',)),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
        col('mount_namespace_id', TEXT, 'Mount namespace id', hidden=True),
    ],
    platforms=('darwin', 'linux', 'windows'),
)


_OS_RELEASE_KEYS = {
    "NAME": "name", "VERSION": "version", "BUILD_ID": "build", "ID": "platform", "ID_LIKE": "platform_like",
    "VERSION_CODENAME": "codename", "VERSION_ID": "_id",
}
_REDHAT_RX = re.compile(r"([\w+\s]+) .* ([0-9]+)\.([0-9]+)\.?(\w+)?")


def generate(ctx: Context) -> Iterator[Row]:
    """osquery's Linux os_version: /etc/os-release, then /etc/redhat-release or /etc/gentoo-release override.

    pid_with_namespace=<pid> reads the files through /proc/<pid>/root, i.e. that process's mount namespace
    (a container's OS), which is what osquery does by entering the namespace.
    """
    pids = ctx.eq("pid_with_namespace")
    if not pids:
        yield _os_version(ctx, "", 0)
        return
    for pid in sorted({int(p) for p in pids if str(p).lstrip("-").isdigit()}):
        if pid <= 0:
            yield _os_version(ctx, "", pid)
            continue
        root = f"/proc/{pid}/root"
        if not os.path.isdir(ctx.path(root)):
            continue  # no such process: osquery yields nothing for it
        row = _os_version(ctx, root, pid)
        ns = _proc.readlink(ctx.path(f"/proc/{pid}/ns/mnt"))
        if ns and ns.startswith("mnt:["):
            row["mount_namespace_id"] = ns[5:-1]
        yield row


def _os_version(ctx: Context, prefix: str, pid: int) -> Row:
    row: Row = {"name": "Unknown", "major": 0, "minor": 0, "patch": 0, "platform": "posix",
                "pid_with_namespace": pid, "arch": os.uname().machine}
    try:
        text = _proc.read_text(ctx.path(prefix + "/etc/os-release"))
    except OSError:
        text = ""
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        column = _OS_RELEASE_KEYS.get(key)
        if column is None:
            if "CODENAME" not in key:
                continue
            column = "codename"  # distros invent their own *_CODENAME keys; osquery takes them too
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if column == "_id":
            parts = value.split(".", 2)
            for name, part in zip(("major", "minor", "patch"), parts):
                row[name] = _int_prefix(part)
        else:
            row[column] = value
    for release, platform in (("/etc/redhat-release", "rhel"), ("/etc/gentoo-release", "gentoo")):
        try:
            content = " ".join(_proc.read_text(ctx.path(prefix + release)).split())
        except OSError:
            continue
        row["platform"] = row["platform_like"] = platform
        m = _REDHAT_RX.search(content)
        if m:
            row["name"] = m.group(1)
            row["major"], row["minor"] = int(m.group(2)), int(m.group(3))
            row["patch"] = _int_prefix(m.group(4) or "0")
        row["version"] = content
        row["build"] = ""
        break
    return row


def _int_prefix(text: str) -> int | None:
    m = re.match(r"\d+", text)
    return int(m.group()) if m else None
