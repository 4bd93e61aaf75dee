"""portage_packages: Gentoo's installed-package database (/var/db/pkg/<category>/<name>-<version>/)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'portage_packages',
    'List of currently installed packages.',
    columns=[
        col('package', TEXT, 'Package name'),
        col('version', TEXT, 'The version which are affected by the use flags, empty means all', collate='version'),
        col('slot', TEXT, 'The slot used by package'),
        col('build_time', BIGINT, 'Unix time when package was built'),
        col('repository', TEXT, 'From which repository the ebuild was used'),
        col('eapi', BIGINT, 'The eapi for the ebuild'),
        col('size', BIGINT, 'The size of the package'),
        col('world', INTEGER, 'If package is in the world file'),
    ],
    platforms=('linux',),
)

VDB = "/var/db/pkg"
WORLD = "/var/lib/portage/world"
# PMS: the version starts at the last hyphen followed by a digit; an -rN revision belongs to it.
_PF = re.compile(r"^(?P<name>.+?)-(?P<version>\d[^-]*(?:-r\d+)?)$")


def split_pf(pf: str) -> tuple[str, str] | None:
    m = _PF.match(pf)
    return (m["name"], m["version"]) if m else None


def read_world(text: str) -> set[str]:
    """Atoms of the world file, reduced to category/name (a :slot suffix is dropped)."""
    out = set()
    for line in text.splitlines():
        atom = line.split("#", 1)[0].strip()
        if atom:
            out.add(atom.split(":", 1)[0])
    return out


def _field(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _int(v: str | None) -> int | None:
    return int(v) if v and v.isdigit() else None


def generate(ctx: Context) -> Iterator[Row]:
    vdb = ctx.path(VDB)
    if not os.path.isdir(vdb):
        return  # not a Gentoo host
    world = read_world(_field(ctx.path(WORLD)) or "")
    for category in sorted(os.listdir(vdb)):
        cdir = os.path.join(vdb, category)
        if not os.path.isdir(cdir) or category.startswith("."):
            continue
        for pf in sorted(os.listdir(cdir)):
            split = split_pf(pf)
            pdir = os.path.join(cdir, pf)
            if split is None or not os.path.isdir(pdir) or pf.startswith("-MERGING-"):
                continue
            ctx.check()
            package = f"{category}/{split[0]}"
            slot = _field(os.path.join(pdir, "SLOT"))
            eapi = _field(os.path.join(pdir, "EAPI"))
            yield {
                "package": package,
                "version": split[1],
                "slot": slot,
                "build_time": _int(_field(os.path.join(pdir, "BUILD_TIME"))),
                "repository": _field(os.path.join(pdir, "repository")),
                # EAPI is absent for ancient ebuilds, which PMS defines as EAPI 0.
                "eapi": _int(eapi) if eapi is not None else 0,
                "size": _int(_field(os.path.join(pdir, "SIZE"))),
                "world": 1 if package in world else 0,
            }
