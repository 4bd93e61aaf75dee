"""apparmor_profiles: loaded AppArmor profiles from securityfs."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'apparmor_profiles',
    'Track active AppArmor profiles.',
    columns=[
        col('path', TEXT, 'Unique, aa-status compatible, policy identifier.', index=True),
        col('name', TEXT, 'Policy name.'),
        col('attach', TEXT, 'Which executable(s) a profile will attach to.'),
        col('mode', TEXT, 'How the policy is applied.'),
        col('sha1', TEXT, 'A unique hash that identifies this policy.', collate='nocase'),
        col('sha256', TEXT, 'A unique hash that identifies this policy.', collate='nocase'),
    ],
    platforms=('linux',),
    examples=("SELECT * FROM apparmor_profiles WHERE mode = 'complain'",),
    requires={"CAP_DAC_READ_SEARCH": ["name", "attach", "mode"]},
)


_PROFILES = "/sys/kernel/security/apparmor/policy/profiles"


def generate(ctx: Context) -> Iterator[Row]:
    """Loaded AppArmor profiles from securityfs, child profiles as parent//child (aa-status naming).

    sha1 and sha256 are the kernel's policy hash files when it exports them; kernels build one or the other
    (CONFIG_SECURITY_APPARMOR_HASH), and the column for the other stays NULL. With only a `raw_data`
    file readable the hashes are computed from it.
    """
    base = ctx.path(_PROFILES)
    if not os.path.isdir(base):
        return
    wanted = ctx.eq("path")
    failed = 0
    stack: list[tuple[str, str]] = [("", f"{base}/{d}") for d in _dirs(base)]
    while stack:
        ctx.check()
        parent, directory = stack.pop(0)
        try:
            name = _read(directory + "/name")
            row: Row = {"name": name, "attach": _read(directory + "/attach"), "mode": _read(directory + "/mode")}
        except OSError:
            failed += 1
            continue
        row["path"] = f"{parent}//{name}" if parent else name
        row["sha1"] = _hash(directory, "sha1", hashlib.sha1)
        row["sha256"] = _hash(directory, "sha256", hashlib.sha256)
        children = directory + "/profiles"
        if os.path.isdir(children):
            stack.extend((row["path"], f"{children}/{d}") for d in _dirs(children))
        if wanted is None or row["path"] in wanted:
            yield row
    if failed:
        ctx.missing(["name", "attach", "mode"], "cannot read AppArmor profile entries", "CAP_DAC_READ_SEARCH",
                    rows=failed)


def _dirs(path: str) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(path) if e.is_dir())
    except OSError:
        return []


def _read(path: str) -> str:
    return _proc.read_text(path).strip()


def _hash(directory: str, kind: str, algo) -> str | None:
    try:
        return _read(f"{directory}/{kind}") or None
    except OSError:
        pass
    try:
        return algo(_proc.read(f"{directory}/raw_data", 64 << 20)).hexdigest()
    except OSError:
        return None
