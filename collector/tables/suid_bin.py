"""suid_bin: setuid/setgid regular files under osquery's fixed search paths.

osquery walks /bin, /sbin, /usr/bin, /usr/sbin, /usr/local/bin, /usr/local/sbin and /tmp recursively
without entering symlinked directories (a search root that is itself a link, like /bin -> usr/bin on
merged-/usr systems, is followed, so such binaries appear under both names as in osquery). Modes are those
of the followed file; permissions is "S" (setuid), "G" (setgid) or "SG".
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _glob
from collector.tables._passwd import read_group, read_passwd

SPEC = table(
    'suid_bin',
    'suid binaries in common locations.',
    columns=[
        col('path', TEXT, 'Binary path'),
        col('username', TEXT, 'Binary owner username'),
        col('groupname', TEXT, 'Binary owner group'),
        col('permissions', TEXT, 'Binary permissions'),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
    ],
    cacheable=True,
    platforms=('darwin', 'linux'),
    requires={"CAP_SYS_PTRACE": ["pid_with_namespace"]},
)

SEARCH_PATHS = ("/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/tmp")


def generate(ctx: Context) -> Iterator[Row]:
    for pid_ns, _ns_id, fs in _glob.namespaces(ctx):
        users = {p.pw_uid: p.pw_name for p in reversed(read_passwd(fs.real("/etc/passwd")))}
        groups = {g.gr_gid: g.gr_name for g in reversed(read_group(fs.real("/etc/group")))}
        walker = _glob.Walker(ctx, fs)
        for base in SEARCH_PATHS:
            for path in walker.walk(base):
                try:
                    st = os.stat(fs.real(path))
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode) or not st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                    continue
                yield {
                    "path": path,
                    # osquery prints the numeric id when the account is unknown.
                    "username": users.get(st.st_uid, str(st.st_uid)),
                    "groupname": groups.get(st.st_gid, str(st.st_gid)),
                    "permissions": ("S" if st.st_mode & stat.S_ISUID else "") + ("G" if st.st_mode & stat.S_ISGID else ""),
                    "pid_with_namespace": pid_ns,
                }
