"""rpm_packages and rpm_package_files: the rpm database, read from rpmdb.sqlite (rpm >= 4.16).

The database is opened read-only and immutable, so Quarry can never write or lock it (osquery#2623:
querying as root once corrupted RPM databases). Berkeley DB (Packages) and ndb (Packages.db) databases
of older rpm are not parsed: the tables say so in a note and return no rows.
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _pkgns
from collector.tables import _rpmheader as H

RPM_PACKAGES_SPEC = table(
    'rpm_packages',
    'RPM packages that are currently installed on the host system.',
    columns=[
        col('name', TEXT, 'RPM package name', index=True, optimized=True),
        col('version', TEXT, 'Package version', index=True, collate='version_rhel'),
        col('release', TEXT, 'Package release', index=True),
        col('source', TEXT, 'Source RPM package name (optional)'),
        col('size', BIGINT, 'Package size in bytes'),
        col('sha1', TEXT, 'SHA1 hash of the package contents', collate='nocase'),
        col('arch', TEXT, 'Architecture(s) supported', index=True),
        col('epoch', INTEGER, 'Package epoch value', index=True),
        col('install_time', INTEGER, 'When the package was installed'),
        col('vendor', TEXT, 'Package vendor'),
        col('package_group', TEXT, 'Package group'),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
        col('mount_namespace_id', TEXT, 'Mount namespace id', hidden=True),
    ],
    generator='gen_rpm_packages',
    cacheable=True,
    platforms=('linux',),
    requires={"CAP_SYS_PTRACE": ["mount_namespace_id"]},
)

RPM_PACKAGE_FILES_SPEC = table(
    'rpm_package_files',
    'Installed files from RPM packages that are currently installed on the system.',
    columns=[
        col('package', TEXT, 'RPM package name', index=True, optimized=True),
        col('path', TEXT, 'File path within the package', index=True),
        col('username', TEXT, 'File default username from info DB'),
        col('groupname', TEXT, 'File default groupname from info DB'),
        col('mode', TEXT, 'File permissions mode from info DB'),
        col('size', BIGINT, 'Expected file size in bytes from RPM info DB'),
        col('sha256', TEXT, 'SHA256 file digest from RPM info DB', collate='nocase'),
    ],
    generator='gen_rpm_package_files',
    platforms=('linux',),
)

SPECS = [RPM_PACKAGES_SPEC, RPM_PACKAGE_FILES_SPEC]

DB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
_PGPHASHALGO_SHA256 = 8
_PKG_TAGS = {H.NAME, H.VERSION, H.RELEASE, H.EPOCH, H.SOURCERPM, H.SIZE, H.LONGSIZE, H.SHA1HEADER, H.ARCH,
             H.INSTALLTIME, H.VENDOR, H.GROUP}
_FILE_TAGS = {H.NAME, H.BASENAMES, H.DIRNAMES, H.DIRINDEXES, H.FILEUSERNAME, H.FILEGROUPNAME, H.FILEMODES,
              H.FILESIZES, H.LONGFILESIZES, H.FILEDIGESTS, H.FILEDIGESTALGO}


def headers(ctx: Context, prefix: str, wanted: set[int]) -> Iterator[dict[int, object]]:
    for d in DB_DIRS:
        db = ctx.path(prefix + d + "/rpmdb.sqlite")
        if os.path.isfile(db):
            break
        if any(os.path.exists(ctx.path(prefix + d + "/" + n)) for n in ("Packages", "Packages.db")):
            ctx.note(f"{d}: Berkeley DB / ndb rpm databases are not supported (only rpmdb.sqlite)")
            return
    else:
        return  # no rpm on this host
    uri = "file:" + urllib.parse.quote(db) + "?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as e:
        ctx.note(f"cannot open {d}/rpmdb.sqlite: {e}")
        return
    bad = 0
    try:
        for (blob,) in conn.execute("SELECT blob FROM Packages ORDER BY hnum"):
            ctx.check()
            try:
                h = H.parse(bytes(blob), wanted)
            except (H.HeaderError, ValueError, IndexError):
                bad += 1
                continue
            yield h
    except sqlite3.Error as e:
        ctx.note(f"cannot read {d}/rpmdb.sqlite: {e}")
    finally:
        conn.close()
    if bad:
        ctx.note(f"{bad} rpm header(s) could not be parsed")


def _s(v: object) -> str | None:
    return None if v is None else str(v)


def gen_rpm_packages(ctx: Context) -> Iterator[Row]:
    names = ctx.eq("name")
    for prefix, echo in _pkgns.roots(ctx):
        for h in headers(ctx, prefix, _PKG_TAGS):
            name = h.get(H.NAME)
            if names is not None and name not in names:
                continue
            size = H.scalar(h, H.LONGSIZE)
            if size is None:
                size = H.scalar(h, H.SIZE)
            row: Row = {
                "name": _s(name),
                "version": _s(h.get(H.VERSION)),
                "release": _s(h.get(H.RELEASE)),
                "source": h.get(H.SOURCERPM, ""),
                "size": size,
                "sha1": h.get(H.SHA1HEADER, ""),
                "arch": h.get(H.ARCH, ""),
                # Most packages carry no epoch: NULL, which is what rpm's %{EPOCH} "(none)" means.
                "epoch": H.scalar(h, H.EPOCH),
                "install_time": H.scalar(h, H.INSTALLTIME),
                "vendor": h.get(H.VENDOR, ""),
                "package_group": h.get(H.GROUP, ""),
            }
            row.update(echo)
            yield row


def gen_rpm_package_files(ctx: Context) -> Iterator[Row]:
    names = ctx.eq("package")
    for h in headers(ctx, "", _FILE_TAGS):
        name = h.get(H.NAME)
        if names is not None and name not in names:
            continue
        base = h.get(H.BASENAMES) or []
        dirs = h.get(H.DIRNAMES) or []
        idx = h.get(H.DIRINDEXES) or []
        users = h.get(H.FILEUSERNAME) or []
        groups = h.get(H.FILEGROUPNAME) or []
        modes = h.get(H.FILEMODES) or []
        sizes = h.get(H.LONGFILESIZES) or h.get(H.FILESIZES) or []
        digests = h.get(H.FILEDIGESTS) or []
        # FILEDIGESTALGO absent means MD5 (rpm's historical default): no sha256 to report.
        sha256 = H.scalar(h, H.FILEDIGESTALGO) == _PGPHASHALGO_SHA256
        for i, b in enumerate(base):
            d = dirs[idx[i]] if i < len(idx) and idx[i] < len(dirs) else ""
            yield {
                "package": name,
                "path": d + b,
                "username": users[i] if i < len(users) else None,
                "groupname": groups[i] if i < len(groups) else None,
                "mode": f"{modes[i] & 0o7777:04o}" if i < len(modes) else None,
                "size": sizes[i] if i < len(sizes) else None,
                "sha256": (digests[i] if i < len(digests) else "") if sha256 else "",
            }
