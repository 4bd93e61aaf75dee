"""Shared plumbing of the account and user_data tables: namespaced roots, home-directory files, users.

osquery's hidden `pid_with_namespace` column runs a table inside another process's mount namespace. For
tables that only read files, /proc/<pid>/root is that namespace's filesystem, so no fork or setns is
needed: every path is read under it and the pid is echoed into each row (osquery echoes 0 otherwise).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator

from collector.table import Context
from collector.tables._passwd import Passwd, read_passwd

_DENIED = (errno.EACCES, errno.EPERM)


def ns_pids(ctx: Context) -> list[int]:
    """The namespaces asked for through pid_with_namespace, or [0] for the host's own."""
    wanted = ctx.eq("pid_with_namespace")
    if wanted is None:
        return [0]
    out = set()
    for v in wanted:
        try:
            out.add(int(v))
        except (TypeError, ValueError):
            continue
    return sorted(out)


def ns_path(ctx: Context, pid: int, path: str) -> str:
    """Where to read the host path `path` as the mount namespace of `pid` (0: the host) sees it."""
    if pid <= 0:
        return ctx.path(path)
    return ctx.path(f"/proc/{pid}/root{path if path.startswith('/') else '/' + path}")


def ns_check(ctx: Context, pid: int, path: str) -> bool:
    """Whether `path` can be read in the namespace of `pid`; reports why not (once per query) if it cannot."""
    real = ns_path(ctx, pid, path)
    try:
        with open(real, "rb"):
            return True
    except OSError as e:
        if pid <= 0 and e.errno == errno.ENOENT:
            return False
        where = f"{path} in the mount namespace of pid {pid}" if pid > 0 else path
        cap = "CAP_SYS_PTRACE" if pid > 0 and e.errno in _DENIED else None
        ctx.missing([], f"{where}: {e.strerror}", cap, rows=0)
        return False


def users_in(ctx: Context, pid: int) -> Iterator[Passwd]:
    """ctx.users() (osquery user_data semantics), read from the namespace of `pid` when one is asked for."""
    if pid <= 0:
        yield from ctx.users()
        return
    if not ns_check(ctx, pid, "/etc/passwd"):
        return
    entries = read_passwd(ns_path(ctx, pid, "/etc/passwd"))
    uids, names = ctx.eq("uid"), ctx.eq("username")
    if uids is None and names is None:
        me = os.getuid()
        yield from [e for e in entries if e.pw_uid == me][:1]
        return
    want = {_int(u) for u in uids} if uids is not None else None
    for e in entries:
        if (want is None or e.pw_uid in want) and (names is None or e.pw_name in names):
            yield e


def home_file(home: str, rel: str) -> str:
    """The host path of a file in a home directory, as osquery reports it (directory + "/" + rel)."""
    return home.rstrip("/") + "/" + rel if home else "/" + rel


class Unreadable:
    """Counts files that exist but could not be read, for one aggregated ctx.missing per query."""

    def __init__(self) -> None:
        self.denied = 0
        self.other = 0
        self.reason = ""

    def add(self, e: OSError) -> None:
        if e.errno in _DENIED:
            self.denied += 1
        elif e.errno not in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            self.other += 1
            self.reason = e.strerror or str(e)

    def report(self, ctx: Context, what: str) -> None:
        if self.denied:
            ctx.missing([], f"permission denied reading {self.denied} {what} file(s)", "CAP_DAC_READ_SEARCH",
                        rows=self.denied)
        if self.other:
            ctx.missing([], f"{self.other} {what} file(s) unreadable: {self.reason}", None, rows=self.other)


def read_lines(real: str, bad: Unreadable, unescape: Callable[[bytes], bytes] | None = None) -> Iterator[str]:
    """Lines of a text file without their newline; nothing (and a count in `bad`) when unreadable.

    `unescape` undoes a file's own byte encoding before UTF-8 decoding (zsh's metafied history)."""
    try:
        f = open(real, "rb")
    except OSError as e:
        bad.add(e)
        return
    with f:
        try:
            for raw in f:
                line = raw.rstrip(b"\n")
                yield (unescape(line) if unescape else line).decode("utf-8", "replace")
        except OSError as e:  # EISDIR and friends surface on the first read
            bad.add(e)


def _int(v: object) -> int | None:
    try:
        return int(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
