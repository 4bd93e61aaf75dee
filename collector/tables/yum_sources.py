"""yum_sources: repositories of /etc/yum.conf and /etc/yum.repos.d/*.repo (INI sections; [main] is not a repo)."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _pkgns

SPEC = table(
    'yum_sources',
    'Current list of Yum repositories or software channels.',
    columns=[
        col('name', TEXT, 'Repository name'),
        col('source', TEXT, 'Source file'),
        col('baseurl', TEXT, 'Repository base URL'),
        col('mirrorlist', TEXT, 'Mirrorlist URL'),
        col('metalink', TEXT, 'Metalink URL'),
        col('enabled', TEXT, 'Whether the repository is used'),
        col('gpgcheck', TEXT, 'Whether packages are GPG checked'),
        col('gpgkey', TEXT, 'URL to GPG key'),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
    ],
    platforms=('linux',),
    requires={"CAP_SYS_PTRACE": ["pid_with_namespace"]},
)

_KEYS = ("name", "baseurl", "mirrorlist", "metalink", "enabled", "gpgcheck", "gpgkey")


def parse_repo(text: str) -> Iterator[dict[str, str]]:
    """Sections of a yum/dnf INI file; indented lines continue the previous value (multi-URL baseurl)."""
    section: dict[str, str] | None = None
    last = None
    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip()[0] in "#;":
            continue
        if raw[0] in " \t" and section is not None and last:
            section[last] += " " + raw.strip()
            continue
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            if section is not None and section["_id"] != "main":
                yield section
            section, last = {"_id": line[1:-1].strip()}, None
            continue
        key, sep, value = line.partition("=")
        if sep and section is not None:
            last = key.strip().lower()
            section[last] = value.strip()
    if section is not None and section["_id"] != "main":
        yield section


def generate(ctx: Context) -> Iterator[Row]:
    for prefix, echo in _pkgns.roots(ctx, with_mnt_id=False):
        base = ctx.path(prefix or "/").rstrip("/")
        files = [f for f in (base + "/etc/yum.conf",) if os.path.isfile(f)]
        files += sorted(glob.glob(glob.escape(base) + "/etc/yum.repos.d/*.repo"))
        for path in files:
            try:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
            except OSError as e:
                ctx.note(f"cannot read {path[len(base):]}: {e.strerror}")
                continue
            for sec in parse_repo(text):
                row: Row = {k: sec.get(k) for k in _KEYS}
                if row["name"] is None:
                    row["name"] = sec["_id"]  # dnf falls back to the repo id too
                row["source"] = path[len(base):]
                row.update(echo)
                yield row
