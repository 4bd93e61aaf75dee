"""file: stat(2) of the paths a query names: `path =`/`IN`, `path LIKE` globs, `directory =`/`LIKE` listings.

Metadata follow osquery's genFileInfoPosix: lstat decides `symlink`, stat (falling back to lstat for a
dangling link) gives the rest, `device` is st_rdev, `mode` four octal digits, `type` the followed type.
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables import _glob

SPEC = table(
    'file',
    'Interactive filesystem attributes and metadata.',
    columns=[
        col('path', TEXT, 'Absolute file path', index=True, required=True, optimized=True),
        col('directory', TEXT, 'Directory of file(s)', required=True, optimized=True),
        col('filename', TEXT, 'Name portion of file path'),
        col('inode', BIGINT, 'Filesystem inode number'),
        col('uid', BIGINT, 'Owning user ID'),
        col('gid', BIGINT, 'Owning group ID'),
        col('mode', TEXT, 'Permission bits'),
        col('device', BIGINT, 'Device ID (optional)'),
        col('size', BIGINT, 'Size of file in bytes'),
        col('block_size', INTEGER, 'Block size of filesystem'),
        col('atime', BIGINT, 'Last access time'),
        col('mtime', BIGINT, 'Last modification time'),
        col('ctime', BIGINT, 'Last status change time'),
        col('btime', BIGINT, '(B)irth or (cr)eate time'),
        col('hard_links', INTEGER, 'Number of hard links'),
        col('symlink', INTEGER, '1 if the path is a symlink, otherwise 0'),
        col('type', TEXT, 'File status'),
        col('symlink_target_path', TEXT, 'Full path of the symlink target if any'),
        col('attributes', TEXT, 'File attrib string. See: https://ss64.com/nt/attrib.html', platforms=('windows',)),
        col('volume_serial', TEXT, 'Volume serial number', platforms=('windows',)),
        col('file_id', TEXT, 'file ID', platforms=('windows',)),
        col('file_version', TEXT, 'File version', collate='version', platforms=('windows',)),
        col('product_version', TEXT, 'File product version', collate='version', platforms=('windows',)),
        col('original_filename', TEXT, '(Executable files only) Original filename', platforms=('windows',)),
        col('shortcut_target_path', TEXT, 'Full path to the file the shortcut points to', platforms=('windows',)),
        col('shortcut_target_type', TEXT, 'Display name for the target type', platforms=('windows',)),
        col('shortcut_target_location', TEXT, 'Folder name where the shortcut target resides', platforms=('windows',)),
        col('shortcut_start_in', TEXT, 'Full path to the working directory to use when executing the shortcut target', platforms=('windows',)),
        col('shortcut_run', TEXT, 'Window mode the target of the shortcut should be run in', platforms=('windows',)),
        col('shortcut_comment', TEXT, 'Comment on the shortcut', platforms=('windows',)),
        col('bsd_flags', TEXT, 'The BSD file flags (chflags). Possible values: NODUMP, UF_IMMUTABLE, UF_APPEND, OPAQUE, HIDDEN, ARCHIVED, SF_IMMUTABLE, SF_APPEND', platforms=('darwin',)),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
        col('mount_namespace_id', TEXT, 'Mount namespace id', hidden=True),
    ],
    utility=True,
    platforms=('darwin', 'linux', 'windows'),
    examples=("select * from file where path = '/etc/passwd'", "select * from file where directory = '/etc/'", "select * from file where path LIKE '/etc/%'"),
    requires={"CAP_SYS_PTRACE": ["pid_with_namespace"]},
)


_TYPES = {
    stat.S_IFREG: "regular",
    stat.S_IFDIR: "directory",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "character",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


def mode_text(mode: int) -> str:
    """osquery's lsperms(): setuid/setgid/sticky digit then owner/group/other, e.g. "0644", "4755"."""
    return f"{(mode >> 9) & 7}{(mode >> 6) & 7}{(mode >> 3) & 7}{mode & 7}"


def generate(ctx: Context) -> Iterator[Row]:
    want_btime = ctx.used("btime")
    want_target = ctx.used("symlink_target_path")
    for pid_ns, ns_id, fs in _glob.namespaces(ctx):
        walker = _glob.Walker(ctx, fs)
        for found in _glob.resolve(ctx, walker):
            row = stat_row(fs.real(found.path), found.path, found.directory, want_btime, want_target)
            if row is None:
                continue
            row["pid_with_namespace"] = pid_ns
            if ns_id is not None:
                row["mount_namespace_id"] = ns_id
            yield row


def stat_row(real: str, path: str, directory: str, want_btime: bool = True,
             want_target: bool = True) -> Row | None:
    try:
        lst = os.lstat(real)
    except OSError:
        return None  # osquery: a path that is not there (or not reachable) yields no row
    is_link = stat.S_ISLNK(lst.st_mode)
    try:
        st = os.stat(real) if is_link else lst
        dangling = False
    except OSError:
        st, dangling = lst, True
    row: Row = {
        "path": path,
        "directory": directory,
        "filename": path[len(directory) + (0 if directory.endswith("/") else 1):]
        if path.startswith(directory) and not path.endswith("/") else _glob.parent_and_name(path)[1],
        "inode": st.st_ino,
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mode": mode_text(st.st_mode),
        "device": st.st_rdev,
        "size": st.st_size,
        "block_size": st.st_blksize,
        "atime": int(st.st_atime),
        "mtime": int(st.st_mtime),
        "ctime": int(st.st_ctime),
        "btime": _btime(real) if want_btime else 0,
        "hard_links": st.st_nlink,
        "symlink": 1 if is_link else 0,
        # boost::filesystem::status follows links; a dangling link has no type it knows.
        "type": "unknown" if dangling else _TYPES.get(stat.S_IFMT(st.st_mode), "unknown"),
    }
    if is_link and want_target:
        try:
            row["symlink_target_path"] = os.readlink(real)
        except OSError:
            pass
    return row


# --- btime via statx(2): osquery reports 0 on Linux; statx knows the birth time on ext4/xfs/btrfs ---------
_AT_FDCWD = -100
_STATX_BTIME = 0x800
_statx = None


def _load_statx():  # type: ignore[no-untyped-def]
    global _statx
    if _statx is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.statx
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_void_p]
            fn.restype = ctypes.c_int
            _statx = fn
        except (OSError, AttributeError):
            _statx = False
    return _statx


def _btime(real: str) -> int:
    fn = _load_statx()
    if not fn:
        return 0
    buf = ctypes.create_string_buffer(256)
    if fn(_AT_FDCWD, os.fsencode(real), 0, _STATX_BTIME, buf) != 0:
        return 0
    mask = int.from_bytes(buf.raw[0:4], "little")
    if not mask & _STATX_BTIME:
        return 0  # the filesystem does not record birth time: osquery's 0
    return int.from_bytes(buf.raw[0x50:0x58], "little", signed=True)
