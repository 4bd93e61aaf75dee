"""apt_sources: one-line (sources.list, *.list) and deb822 (*.sources) APT sources, enriched from the
Release/InRelease file APT cached for each in /var/lib/apt/lists, as osquery does.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _pkgns

SPEC = table(
    'apt_sources',
    'Current list of APT repositories or software channels.',
    columns=[
        col('name', TEXT, 'Repository name'),
        col('source', TEXT, 'Source file'),
        col('base_uri', TEXT, 'Repository base URI'),
        col('release', TEXT, 'Release name'),
        col('version', TEXT, 'Repository source version', collate='version_dpkg'),
        col('maintainer', TEXT, 'Repository maintainer'),
        col('components', TEXT, 'Repository components'),
        col('architectures', TEXT, 'Repository architectures'),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
    ],
    platforms=('linux',),
    requires={"CAP_SYS_PTRACE": ["pid_with_namespace"]},
)

# Release-file field -> column (osquery's mapping: Origin is reported as the maintainer).
_RELEASE = {"Codename": "release", "Version": "version", "Origin": "maintainer", "Components": "components",
            "Architectures": "architectures"}


def parse_one_line(line: str) -> tuple[str, str] | None:
    """(uri, suite) of a `deb` line; deb-src, comments and malformed lines give None."""
    line = line.split("#", 1)[0]
    tokens = line.split()
    if not tokens or tokens[0] != "deb":
        return None
    tokens = tokens[1:]
    if tokens and tokens[0].startswith("["):
        while tokens and "]" not in tokens[0]:
            tokens.pop(0)
        tokens = tokens[1:]
    if len(tokens) < 2 or "://" not in tokens[0]:
        return None
    return tokens[0].rstrip("/"), tokens[1]


def parse_deb822(text: str) -> Iterator[tuple[str, str]]:
    """(uri, suite) pairs of enabled `Types: deb` stanzas."""
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for raw in block.splitlines():
            line = raw.split("#", 1)[0]
            key, sep, value = line.partition(":")
            if sep and value.strip() and not raw[:1].isspace():
                fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() in ("no", "false", "off"):
            continue
        uris = [u.rstrip("/") for u in fields.get("uris", "").split() if "://" in u]
        for uri in uris:
            for suite in fields.get("suites", "").split():
                yield uri, suite


def cache_name(uri: str, suite: str) -> str:
    """APT's list-file prefix: host/path of the URI, then dists/<suite> (or the flat-repo path)."""
    target = uri.split("://", 1)[1]
    parts = [target, "dists", suite] if "/" not in suite else [target, *suite.split("/")]
    return "_".join(p for p in parts if p).replace("/", "_")


def parse_release(text: str) -> Row:
    out: Row = {}
    for line in text.splitlines():
        if line.startswith("-----BEGIN PGP SIGNATURE"):
            break
        key, sep, value = line.partition(":")
        if sep and key in _RELEASE and not line[:1].isspace():
            out[_RELEASE[key]] = value.strip()
    return out


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def generate(ctx: Context) -> Iterator[Row]:
    for prefix, echo in _pkgns.roots(ctx, with_mnt_id=False):
        base = ctx.path(prefix or "/").rstrip("/")
        files = [f"{base}/etc/apt/sources.list"] if os.path.isfile(f"{base}/etc/apt/sources.list") else []
        files += sorted(glob.glob(glob.escape(base) + "/etc/apt/sources.list.d/*.list"))
        deb822 = sorted(glob.glob(glob.escape(base) + "/etc/apt/sources.list.d/*.sources"))
        uncached = 0
        for path in files + deb822:
            text = _read(path)
            if text is None:
                ctx.note(f"cannot read {path[len(base):]}")
                continue
            if path in deb822:
                entries = list(parse_deb822(text))
            else:
                entries = [e for e in map(parse_one_line, text.splitlines()) if e]
            source = path[len(base):]
            for uri, suite in entries:
                row: Row = {"source": source, "base_uri": uri, "name": f"{uri.split('://', 1)[1]} {suite}"}
                # osquery drops sources APT has not downloaded yet; we keep them, Release columns NULL.
                found = sorted(glob.glob(f"{base}/var/lib/apt/lists/{glob.escape(cache_name(uri, suite))}_*Release"))
                release = _read(found[0]) if found else None
                if release is None:
                    uncached += 1
                else:
                    row.update(parse_release(release))
                row.update(echo)
                yield row
        if uncached:
            ctx.missing(list(_RELEASE.values()), "no Release file cached in /var/lib/apt/lists (apt update "
                        "not run)", None, rows=uncached)
