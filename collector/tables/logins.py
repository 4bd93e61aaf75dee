"""logged_in_users (/run/utmp) and last (/var/log/wtmp): the binary utmp records, parsed with struct.

Reading the files directly (instead of getutxent) works under --hostfs and never mixes in the utmp of the
collector's own container.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table

LOGGED_IN_USERS_SPEC = table(
    'logged_in_users',
    'Users with an active shell on the system.',
    columns=[
        col('type', TEXT, 'Login type'),
        col('user', TEXT, 'User login name'),
        col('tty', TEXT, 'Device name'),
        col('host', TEXT, 'Remote hostname'),
        col('time', BIGINT, 'Time entry was made'),
        col('pid', INTEGER, 'Process (or thread) ID'),
        col('sid', TEXT, "The user's unique security identifier", platforms=('windows',)),
        col('registry_hive', TEXT, 'HKEY_USERS registry hive', platforms=('windows',)),
    ],
    generator='gen_logged_in_users',
    cacheable=True,
    platforms=('darwin', 'linux', 'windows'),
    requires={"CAP_DAC_READ_SEARCH": ["*"]},
)

LAST_SPEC = table(
    'last',
    'System logins and logouts.',
    columns=[
        col('username', TEXT, 'Entry username'),
        col('tty', TEXT, 'Entry terminal'),
        col('pid', INTEGER, 'Process (or thread) ID'),
        col('type', INTEGER, 'Entry type, according to ut_type types (utmp.h)'),
        col('type_name', TEXT, 'Entry type name, according to ut_type types (utmp.h)'),
        col('time', INTEGER, 'Entry timestamp'),
        col('host', TEXT, 'Entry hostname'),
    ],
    generator='gen_last',
    cacheable=True,
    platforms=('darwin', 'linux'),
    requires={"CAP_DAC_READ_SEARCH": ["*"]},
)


SPECS = [LOGGED_IN_USERS_SPEC, LAST_SPEC]

# struct utmp of glibc on 64-bit Linux (x86_64, aarch64): 384 bytes, little-endian, 32-bit time fields.
_UTMP = struct.Struct("<hxxi32s4s32s256shhiii16s20x")
UTMP_SIZE = _UTMP.size

EMPTY, RUN_LVL, BOOT_TIME, NEW_TIME, OLD_TIME = 0, 1, 2, 3, 4
INIT_PROCESS, LOGIN_PROCESS, USER_PROCESS, DEAD_PROCESS, ACCOUNTING = 5, 6, 7, 8, 9

# logged_in_users.type names (osquery logged_in_users.cpp kLoginTypes).
_LOGIN_TYPES = {
    EMPTY: "empty", RUN_LVL: "runlevel", BOOT_TIME: "boot_time", NEW_TIME: "new_time", OLD_TIME: "old_time",
    INIT_PROCESS: "init", LOGIN_PROCESS: "login", USER_PROCESS: "user", DEAD_PROCESS: "dead",
    ACCOUNTING: "accounting",
}
# last.type_name (osquery last.cpp); last only lists USER_PROCESS and DEAD_PROCESS records.
_LAST_TYPES = {USER_PROCESS: "user-process", DEAD_PROCESS: "dead-process"}

# utmp/wtmp moved from /var/run to /run; a --hostfs root's /var/run is often an absolute symlink that would
# escape the root, so the /run spelling is tried first.
_UTMP_PATHS = ("/run/utmp", "/var/run/utmp")
_WTMP_PATHS = ("/var/log/wtmp",)


@dataclass(frozen=True)
class Utmp:
    type: int
    pid: int
    line: str
    id: str
    user: str
    host: str
    session: int
    tv_sec: int


def _text(b: bytes) -> str:
    return b.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_utmp(data: bytes) -> Iterator[Utmp]:
    """Records of a utmp/wtmp image; a trailing partial record (a write in progress) is ignored."""
    for off in range(0, len(data) - UTMP_SIZE + 1, UTMP_SIZE):
        t, pid, line, id_, user, host, _term, _exit, session, sec, _usec, _addr = _UTMP.unpack_from(data, off)
        yield Utmp(t, pid, _text(line), _text(id_), _text(user), _text(host), session, sec)


def _records(ctx: Context, paths: tuple[str, ...]) -> Iterator[Utmp]:
    for p in paths:
        real = ctx.path(p)
        try:
            f = open(real, "rb")
        except FileNotFoundError:
            continue
        except OSError as e:
            ctx.missing([], f"{p}: {e.strerror}", "CAP_DAC_READ_SEARCH" if e.errno in (13, 1) else None)
            return
        with f:
            # Stream in whole records: wtmp grows for years on hosts that never rotate it.
            chunk = UTMP_SIZE * 1024
            while True:
                ctx.check()
                data = f.read(chunk)
                if not data:
                    break
                yield from parse_utmp(data)
                if len(data) < chunk:
                    break
        return


def gen_logged_in_users(ctx: Context) -> Iterator[Row]:
    for r in _records(ctx, _UTMP_PATHS):
        if r.pid == 1:  # init's own bookkeeping records; osquery skips them
            continue
        yield {
            "type": _LOGIN_TYPES.get(r.type, "unknown"),
            "user": r.user,
            "tty": r.line,
            "host": r.host,
            "time": r.tv_sec,
            "pid": r.pid,
        }


def gen_last(ctx: Context) -> Iterator[Row]:
    for r in _records(ctx, _WTMP_PATHS):
        name = _LAST_TYPES.get(r.type)
        if name is None:
            continue
        yield {
            "username": r.user,
            "tty": r.line,
            "pid": r.pid,
            "type": r.type,
            "type_name": name,
            "time": r.tv_sec,
            "host": r.host,
        }
