"""deb_packages and deb_package_files: dpkg's database (<admindir>/status and <admindir>/info/*.list).

osquery reads the same files through libdpkg: every package whose status is not `not-installed`
(so `deinstall ok config-files` rows appear; the `status` column tells them apart, osquery#4740).
"""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _pkgns

DEB_PACKAGES_SPEC = table(
    'deb_packages',
    'The installed DEB package database.',
    columns=[
        col('name', TEXT, 'Package name'),
        col('version', TEXT, 'Package version', collate='version_dpkg'),
        col('source', TEXT, 'Package source'),
        col('size', BIGINT, 'Package size in bytes'),
        col('arch', TEXT, 'Package architecture'),
        col('revision', TEXT, 'Package revision'),
        col('status', TEXT, 'Package status'),
        col('maintainer', TEXT, 'Package maintainer'),
        col('section', TEXT, 'Package section'),
        col('priority', TEXT, 'Package priority'),
        col('admindir', TEXT, 'libdpkg admindir. Defaults to /var/lib/dpkg', additional=True, optimized=True),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
        col('mount_namespace_id', TEXT, 'Mount namespace id', hidden=True),
    ],
    generator='gen_deb_packages',
    cacheable=True,
    platforms=('linux',),
    requires={"CAP_SYS_PTRACE": ["mount_namespace_id"]},
)

DEB_PACKAGE_FILES_SPEC = table(
    'deb_package_files',
    'Installed files from DEB packages that are currently installed on the system.',
    columns=[
        col('package', TEXT, 'DEB package name', index=True, optimized=True),
        col('path', TEXT, 'File path within the package', index=True),
        col('admindir', TEXT, 'libdpkg admindir. Defaults to /var/lib/dpkg', additional=True, optimized=True),
    ],
    generator='gen_deb_package_files',
    platforms=('linux',),
)

SPECS = [DEB_PACKAGES_SPEC, DEB_PACKAGE_FILES_SPEC]

DEFAULT_ADMINDIR = "/var/lib/dpkg"
_WANTED = {"Package", "Version", "Source", "Installed-Size", "Architecture", "Status", "Maintainer",
           "Section", "Priority"}


def parse_status(text: str) -> Iterator[dict[str, str]]:
    """Paragraphs of a dpkg status file; continuation lines (leading space) belong to the field above."""
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, None
            continue
        if line[0] in " \t":
            if key in _WANTED:
                fields[key] += "\n" + line.strip()
            continue
        key, _, value = line.partition(":")
        if key in _WANTED:
            fields[key] = value.strip()
    if fields:
        yield fields


def _installed(fields: dict[str, str]) -> bool:
    words = fields.get("Status", "").split()
    return len(words) == 3 and words[2] != "not-installed"


def _admindirs(ctx: Context) -> list[str]:
    wanted = ctx.eq("admindir")
    return sorted(str(d) for d in wanted) if wanted else [DEFAULT_ADMINDIR]


def _read_status(ctx: Context, prefix: str, admindir: str) -> str | None:
    path = ctx.path(prefix + admindir.rstrip("/") + "/status")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return None  # no dpkg on this host (or namespace): no rows, not an error
    except OSError as e:
        ctx.note(f"cannot read {admindir}/status: {e.strerror}")
        return None


def gen_deb_packages(ctx: Context) -> Iterator[Row]:
    for prefix, echo in _pkgns.roots(ctx):
        for admindir in _admindirs(ctx):
            text = _read_status(ctx, prefix, admindir)
            if text is None:
                continue
            for f in parse_status(text):
                if "Package" not in f or not _installed(f):
                    continue
                version = f.get("Version", "")
                # dpkg splits [epoch:]upstream[-revision] at the last hyphen; no hyphen = no revision.
                upstream, dash, revision = version.rpartition("-")
                size = f.get("Installed-Size")
                row: Row = {
                    "name": f["Package"],
                    "version": version,
                    "source": f.get("Source"),
                    # osquery passes dpkg's Installed-Size through unchanged: it is in KiB despite the
                    # column description, and we keep osquery's number so packs compare equal.
                    "size": int(size) if size and size.isdigit() else None,
                    "arch": f.get("Architecture"),
                    "revision": revision if dash and upstream else "",
                    "status": f.get("Status"),
                    "maintainer": f.get("Maintainer"),
                    "section": f.get("Section"),
                    "priority": f.get("Priority"),
                    "admindir": admindir,
                }
                row.update(echo)
                yield row


def gen_deb_package_files(ctx: Context) -> Iterator[Row]:
    wanted = ctx.eq("package")
    for admindir in _admindirs(ctx):
        text = _read_status(ctx, "", admindir)
        if text is None:
            continue
        info = ctx.path(admindir.rstrip("/") + "/info")
        for f in parse_status(text):
            name = f.get("Package")
            if not name or not _installed(f) or (wanted is not None and name not in wanted):
                continue
            ctx.check()
            # Multi-Arch: same packages keep their list as <name>:<arch>.list.
            candidates = [f"{info}/{name}:{f.get('Architecture', '')}.list", f"{info}/{name}.list"]
            for path in candidates:
                try:
                    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                        for line in fh:
                            line = line.rstrip("\n")
                            if line:
                                yield {"package": name, "path": line, "admindir": admindir}
                    break
                except FileNotFoundError:
                    continue
                except OSError as e:
                    ctx.note(f"cannot read {ctx.host_path(path)}: {e.strerror}")
                    break
