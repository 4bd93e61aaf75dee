"""python_packages: *.dist-info/METADATA and *.egg-info PKG-INFO in the system site directories and in each
user's ~/.local (uid set on those rows only), as osquery does on Linux."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _pkgns

SPEC = table(
    'python_packages',
    'Python packages installed in a system. NOTE: when querying on windows, even without a users cross join, all user installed python packages will be returned. This special behavior is to not break original functionality.',
    columns=[
        col('name', TEXT, 'Package display name'),
        col('uid', BIGINT, 'The local user that owns the python package', index=True),
        col('version', TEXT, 'Package-supplied version', collate='version'),
        col('summary', TEXT, 'Package-supplied summary'),
        col('author', TEXT, 'Optional package author'),
        col('license', TEXT, 'License under which package is launched'),
        col('path', TEXT, 'Path at which this module resides'),
        col('directory', TEXT, 'Directory where Python modules are located', index=True, optimized=True),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
    ],
    user_data=True,
    platforms=('darwin', 'linux', 'windows'),
    examples=("select * from python_packages where directory='/usr/'", 'select * from users cross join python_packages using (uid)'),
    requires={"CAP_SYS_PTRACE": ["pid_with_namespace"]},
)

SYSTEM_GLOBS = ("/usr/local/lib/python*/dist-packages", "/usr/local/lib/python*/site-packages",
                "/usr/lib/python*/dist-packages", "/usr/lib/python*/site-packages")
USER_GLOB = ".local/lib/python*/site-packages"
_FIELDS = {"Name": "name", "Version": "version", "Summary": "summary", "Author": "author", "License": "license"}


def parse_metadata(text: str) -> Row:
    """Core-metadata headers (RFC 822 style) up to the first blank line; continuation lines are joined."""
    row: Row = {}
    last = None
    expr = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line[0] in " \t":
            if last in row:
                row[last] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        last = _FIELDS.get(key)
        if last and last not in row:
            row[last] = value.strip()
        elif key == "License-Expression":
            expr = value.strip()
    if not row.get("license") and expr:
        row["license"] = expr  # PEP 639 metadata puts the license here instead
    return row


def site_packages(site: str) -> Iterator[tuple[str, str]]:
    """(entry path, metadata file) per distribution in one site directory."""
    try:
        names = sorted(os.listdir(site))
    except OSError:
        return
    for n in names:
        full = os.path.join(site, n)
        if n.endswith(".dist-info"):
            yield full, os.path.join(full, "METADATA")
        elif n.endswith(".egg-info"):
            yield full, os.path.join(full, "PKG-INFO") if os.path.isdir(full) else full


def _scan(ctx: Context, prefix: str, site_host: str, extra: Row) -> Iterator[Row]:
    real = ctx.path(prefix + site_host)
    for entry, meta in site_packages(real):
        try:
            with open(meta, encoding="utf-8", errors="replace") as f:
                row = parse_metadata(f.read(65536))
        except OSError:
            continue
        row["path"] = site_host.rstrip("/") + "/" + os.path.basename(entry)
        row["directory"] = site_host
        row.update(extra)
        yield row


def _glob(ctx: Context, prefix: str, pattern: str) -> list[str]:
    root = ctx.path(prefix or "/").rstrip("/")
    return sorted(p[len(root):] for p in glob.glob(glob.escape(root) + pattern) if os.path.isdir(p))


def generate(ctx: Context) -> Iterator[Row]:
    dirs = ctx.eq("directory")
    uids = ctx.eq("uid")
    for prefix, echo in _pkgns.roots(ctx, with_mnt_id=False):
        if dirs is not None:
            for d in sorted(str(x) for x in dirs):
                yield from _scan(ctx, prefix, d, echo)
            continue
        if uids is None:
            for site in sorted(set().union(*(_glob(ctx, prefix, g) for g in SYSTEM_GLOBS))):
                yield from _scan(ctx, prefix, site, echo)
        for user in ctx.users():
            home = user.pw_dir.rstrip("/")
            for site in _glob(ctx, prefix, home + "/" + USER_GLOB):
                yield from _scan(ctx, prefix, site, {**echo, "uid": user.pw_uid})
