"""users, groups, user_groups: local accounts from /etc/passwd and /etc/group (never NSS unless asked).

Reading the files instead of getpwent(3) keeps SSSD/LDAP hosts from enumerating whole directories on
every run (osquery#8337); `include_remote = 1` opts into NSS on the live host.
"""

from __future__ import annotations

import pwd
from collections.abc import Iterable, Iterator
from typing import Any

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table
from collector.tables._accounts import ns_check, ns_path, ns_pids
from collector.tables._passwd import Passwd, read_group, read_passwd

USERS_SPEC = table(
    'users',
    'Local user accounts (including domain accounts that have logged on locally (Windows)).',
    columns=[
        col('uid', BIGINT, 'User ID', index=True),
        col('gid', BIGINT, 'Group ID (unsigned)'),
        col('uid_signed', BIGINT, 'User ID as int64 signed (Apple)'),
        col('gid_signed', BIGINT, 'Default group ID as int64 signed (Apple)'),
        col('username', TEXT, 'Username', additional=True),
        col('description', TEXT, 'Optional user description'),
        col('directory', TEXT, "User's home directory"),
        col('shell', TEXT, "User's configured default shell"),
        col('uuid', TEXT, "User's UUID (Apple) or SID (Windows)", index=True, collate='nocase'),
        col('type', TEXT, 'Whether the account is roaming (domain), local, or a system profile', platforms=('windows',)),
        col('is_hidden', INTEGER, 'IsHidden attribute set in OpenDirectory', platforms=('darwin',)),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
        col('include_remote', INTEGER, '1 to include remote (LDAP/AD) accounts (default 0). Warning: without any uid/username filtering it may list whole LDAP directories', hidden=True, additional=True),
    ],
    generator='gen_users',
    platforms=('darwin', 'linux', 'windows'),
    examples=('select * from users where uid = 1000', "select * from users where username = 'root'", 'select count(*) from users u, user_groups ug where u.uid = ug.uid'),
    requires={"CAP_SYS_PTRACE": ["*"]},
)

GROUPS_SPEC = table(
    'groups',
    'Local system groups.',
    columns=[
        col('gid', BIGINT, 'Unsigned int64 group ID', index=True),
        col('gid_signed', BIGINT, 'A signed int64 version of gid'),
        col('groupname', TEXT, 'Canonical local group name'),
        col('group_sid', TEXT, 'Unique group ID', index=True, platforms=('windows',)),
        col('comment', TEXT, 'Remarks or comments associated with the group', platforms=('windows',)),
        col('is_hidden', INTEGER, 'IsHidden attribute set in OpenDirectory', platforms=('darwin',)),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
    ],
    generator='gen_groups',
    platforms=('darwin', 'linux', 'windows'),
    examples=('select * from groups where gid = 0',),
    requires={"CAP_SYS_PTRACE": ["*"]},
)

USER_GROUPS_SPEC = table(
    'user_groups',
    'Local system user group relationships.',
    columns=[
        col('uid', BIGINT, 'User ID', index=True, optimized=True),
        col('gid', BIGINT, 'Group ID', index=True),
    ],
    generator='gen_user_groups',
    platforms=('darwin', 'linux', 'windows'),
)


SPECS = [USERS_SPEC, GROUPS_SPEC, USER_GROUPS_SPEC]


def _ints(values: set[Any] | None) -> set[int] | None:
    if values is None:
        return None
    out = set()
    for v in values:
        try:
            out.add(int(v))
        except (TypeError, ValueError):
            continue
    return out


def _echo(ctx: Context, column: str) -> Any:
    """The value a hidden input column was constrained to (single `=`), echoed so SQLite keeps the row."""
    values = ctx.eq(column)
    if values and len(values) == 1:
        return next(iter(values))
    return None


def gen_users(ctx: Context) -> Iterator[Row]:
    uids = _ints(ctx.eq("uid"))
    names = ctx.eq("username")
    remote = ctx.eq("include_remote")
    include_remote = bool(remote) and any(str(v) == "1" for v in remote)
    if include_remote and ctx.root == "/":
        # Asked for explicitly: NSS (LDAP/SSSD/AD) lookups, the only path that can see remote accounts.
        entries: Iterable[Passwd] = _nss_users(uids, names)
    else:
        if include_remote:
            ctx.note("include_remote=1 ignored: directory services are only queried on the live host root")
        # Local accounts only, straight from the file: never an NSS enumeration (osquery#8337).
        entries = read_passwd(ctx.path("/etc/passwd"))
    echo_remote = _echo(ctx, "include_remote")
    for pid in ns_pids(ctx):
        if pid > 0:
            if not ns_check(ctx, pid, "/etc/passwd"):
                continue
            entries = read_passwd(ns_path(ctx, pid, "/etc/passwd"))
        for e in entries:
            if uids is not None and e.pw_uid not in uids:
                continue
            if names is not None and e.pw_name not in names:
                continue
            yield {
                "uid": e.pw_uid,
                "gid": e.pw_gid,
                "uid_signed": _signed32(e.pw_uid),
                "gid_signed": _signed32(e.pw_gid),
                "username": e.pw_name,
                "description": e.pw_gecos,
                "directory": e.pw_dir,
                "shell": e.pw_shell,
                "pid_with_namespace": pid,
                "include_remote": echo_remote if echo_remote is not None else 0,
            }


def _nss_users(uids: set[int] | None, names: set[Any] | None) -> list[Passwd]:
    found: list[Any] = []
    if uids is not None:
        for u in sorted(uids):
            try:
                found.append(pwd.getpwuid(u))
            except (KeyError, OverflowError):
                continue
    elif names is not None:
        for n in sorted(str(x) for x in names):
            try:
                found.append(pwd.getpwnam(n))
            except KeyError:
                continue
    else:
        found = pwd.getpwall()
    return [Passwd(p.pw_name, "x", p.pw_uid, p.pw_gid, p.pw_gecos, p.pw_dir, p.pw_shell) for p in found]


def _signed32(v: int) -> int:
    # osquery casts the 32-bit uid_t/gid_t to int32: 4294967294 (nobody on some systems) reads -2.
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def gen_groups(ctx: Context) -> Iterator[Row]:
    gids = _ints(ctx.eq("gid"))
    for pid in ns_pids(ctx):
        if pid > 0 and not ns_check(ctx, pid, "/etc/group"):
            continue
        seen: set[int] = set()
        for g in read_group(ns_path(ctx, pid, "/etc/group")):
            # osquery lists a gid once, the first entry wins (duplicate gids are legal in /etc/group).
            if g.gr_gid in seen or (gids is not None and g.gr_gid not in gids):
                continue
            seen.add(g.gr_gid)
            yield {"gid": g.gr_gid, "gid_signed": _signed32(g.gr_gid), "groupname": g.gr_name,
                   "pid_with_namespace": pid}


def gen_user_groups(ctx: Context) -> Iterator[Row]:
    uids = _ints(ctx.eq("uid"))
    users = read_passwd(ctx.path("/etc/passwd"))
    groups = read_group(ctx.path("/etc/group"))
    member_of: dict[str, list[int]] = {}
    for g in groups:
        for m in g.gr_mem:
            member_of.setdefault(m, []).append(g.gr_gid)
    seen_uids: set[int] = set()
    for u in users:
        # getgrouplist(3) semantics as osquery uses it: primary group first, then every group listing the
        # user as a member, each gid once; one set per uid (the first passwd entry of a uid wins).
        if u.pw_uid in seen_uids or (uids is not None and u.pw_uid not in uids):
            continue
        seen_uids.add(u.pw_uid)
        seen: set[int] = set()
        for gid in [u.pw_gid, *member_of.get(u.pw_name, ())]:
            if gid not in seen:
                seen.add(gid)
                yield {"uid": u.pw_uid, "gid": gid}
