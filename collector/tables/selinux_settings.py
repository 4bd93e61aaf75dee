"""selinux_settings: active SELinux settings from the mounted selinuxfs."""

from __future__ import annotations

import os
from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'selinux_settings',
    'Track active SELinux settings.',
    columns=[
        col('scope', TEXT, 'Where the key is located inside the SELinuxFS mount point.'),
        col('key', TEXT, 'Key or class name.'),
        col('value', TEXT, 'Active value.'),
    ],
    platforms=('linux',),
    examples=("SELECT * FROM selinux_settings WHERE key = 'enforce'",),
    requires={"CAP_DAC_READ_SEARCH": ["value"]},
)


_ROOT_KEYS = ("checkreqprot", "deny_unknown", "enforce", "mls", "policyvers", "reject_unknown")
_SCOPES = ("booleans", "policy_capabilities", "initial_contexts")


def generate(ctx: Context) -> Iterator[Row]:
    """osquery's walk of the mounted selinuxfs: root keys, booleans (on/off), policy capabilities, initial
    contexts, and one row per permission of each class. No selinuxfs mount (SELinux off): no rows."""
    mount = _selinuxfs(ctx)
    if mount is None:
        return
    base = ctx.path(mount)
    unreadable = 0
    for key in _ROOT_KEYS:
        row: Row = {"scope": "", "key": key}
        try:
            row["value"] = _value(base + "/" + key)
        except OSError:
            unreadable += 1
        yield row
    for scope in _SCOPES:
        for dirpath, _dirs, files in os.walk(f"{base}/{scope}"):
            for name in sorted(files):
                try:
                    raw = _value(f"{dirpath}/{name}")
                except OSError:
                    unreadable += 1
                    continue
                if scope == "booleans":
                    # "<current> <pending>": osquery maps "1 1"/"0 0" and skips a boolean with a pending change.
                    value = {"1 1": "on", "0 0": "off"}.get(raw)
                    if value is None:
                        continue
                    raw = value
                yield {"scope": scope, "key": name, "value": raw}
    class_root = f"{base}/class"
    for dirpath, _dirs, files in os.walk(class_root):
        for name in sorted(files):
            if name == "index":
                continue
            yield {"scope": "class", "key": os.path.relpath(dirpath, class_root), "value": name}
    if unreadable:
        ctx.missing(["value"], "cannot read selinuxfs entries", "CAP_DAC_READ_SEARCH", rows=unreadable)


def _value(path: str) -> str:
    return _proc.read_text(path).rstrip("\n\0")


def _selinuxfs(ctx: Context) -> str | None:
    try:
        for line in _proc.read_text(ctx.path("/proc/mounts")).splitlines():
            fields = line.split()
            if len(fields) > 2 and fields[2] == "selinuxfs":
                return fields[1]
    except OSError:
        pass
    return None
