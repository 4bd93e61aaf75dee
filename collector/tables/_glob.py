"""osquery's filesystem globs for the `file`/`hash` path and directory constraints, as bounded streams.

osquery turns a LIKE pattern into a glob(3) pattern: `%` matches within one path level, `%%` (osquery's
"recursive" wildcard, documented for the end of a pattern) matches any number of levels. We expand the same
way but never build the whole list: entries are yielded as they are found, the walk stops at
`ctx.limits.max_depth` / `max_entries` with a `ctx.note`, calls `ctx.check()` so a cancelled or timed-out
query stops, and never follows a symlinked directory while recursing (no loops).

Deliberate differences from osquery (SQLite re-checks every LIKE, so these only widen what is found):
- `_` matches one character, as in SQL (osquery passes it to glob(3) literally);
- dot files match `%` (glob(3) hides them; a security tool should not);
- `%%` may appear anywhere and then spans one or more levels;
- directories found by a glob are reported without glob's trailing `/`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from collector.table import Context

_CHECK_EVERY = 256


@dataclass(frozen=True)
class Found:
    path: str  # as the host (or namespace) sees it
    directory: str  # the row's `directory` column


class Fs:
    """Where host paths are read: ctx.path(), optionally inside another process's mount namespace."""

    def __init__(self, ctx: Context, prefix: str = "") -> None:
        self.ctx = ctx
        self.prefix = prefix.rstrip("/")  # e.g. "/proc/1234/root" for pid_with_namespace

    def real(self, path: str) -> str:
        return self.ctx.path(self.prefix + path) if self.prefix else self.ctx.path(path)


def is_pattern(value: str) -> bool:
    return "%" in value or "_" in value


def _component_regex(part: str) -> re.Pattern[str]:
    out = []
    for ch in part:
        if ch == "%":
            out.append("[^/]*")
        elif ch == "_":
            out.append("[^/]")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _tail_regex(parts: list[str]) -> re.Pattern[str]:
    """The rest of a pattern from its first `%%` on, matched against a relative path."""
    text = "/".join(parts)
    out = []
    i = 0
    while i < len(text):
        if text.startswith("%%", i):
            out.append(".*")
            i += 2
            while i < len(text) and text[i] == "%":
                i += 1
        elif text[i] == "%":
            out.append("[^/]*")
            i += 1
        elif text[i] == "_":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(text[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


def parent_and_name(path: str) -> tuple[str, str]:
    """boost::filesystem's parent_path()/filename() of a path given verbatim (osquery echoes them)."""
    if path == "/":
        return "", "/"
    if path.endswith("/"):
        return path.rstrip("/") or "/", "."
    head, _, tail = path.rpartition("/")
    return (head or "/") if path.startswith("/") else head, tail


class Walker:
    """One query's glob budget: max_entries counts every entry looked at across all patterns."""

    def __init__(self, ctx: Context, fs: Fs) -> None:
        self.ctx = ctx
        self.fs = fs
        self.seen = 0
        self.exhausted = False

    def _tick(self) -> bool:
        self.seen += 1
        if self.seen % _CHECK_EVERY == 0:
            self.ctx.check()
        if self.seen > self.ctx.limits.max_entries:
            if not self.exhausted:
                self.exhausted = True
                self.ctx.note(f"glob stopped after {self.ctx.limits.max_entries} entries (max_entries); "
                              "results are incomplete")
            return False
        return True

    def _listdir(self, host_dir: str) -> list[str]:
        try:
            return sorted(os.listdir(self.fs.real(host_dir)))
        except OSError:
            return []

    def _is_dir(self, host_path: str, follow: bool = True) -> bool:
        try:
            st = os.stat(self.fs.real(host_path)) if follow else os.lstat(self.fs.real(host_path))
        except OSError:
            return False
        return stat.S_ISDIR(st.st_mode)

    def _exists(self, host_path: str) -> bool:
        try:
            os.lstat(self.fs.real(host_path))
        except OSError:
            return False
        return True

    # --- public ------------------------------------------------------------------------------------
    def glob(self, pattern: str, *, dirs_only: bool = False) -> Iterator[str]:
        """Host paths matching an osquery LIKE pattern (absolute patterns only)."""
        if not pattern.startswith("/"):
            self.ctx.note(f"relative path pattern {pattern!r} ignored: give an absolute path")
            return
        parts = [p for p in pattern.split("/") if p != ""]
        if not any(is_pattern(p) for p in parts):
            path = pattern if pattern == "/" else pattern.rstrip("/")
            if self._exists(path) and (not dirs_only or self._is_dir(path)):
                yield path
            return
        yield from self._descend("/", parts, 0, dirs_only)

    def _descend(self, base: str, parts: list[str], depth: int, dirs_only: bool) -> Iterator[str]:
        if self.exhausted:
            return
        # Fixed-depth levels are bounded by the pattern itself; max_depth bounds the `%%` walk below.
        part, rest = parts[0], parts[1:]
        if "%%" in part:
            yield from self._recursive(base, _tail_regex(parts), dirs_only)
            return
        join = base if base.endswith("/") else base + "/"
        if not is_pattern(part):
            path = join + part
            if not rest:
                if self._exists(path) and (not dirs_only or self._is_dir(path)):
                    yield path
            elif self._is_dir(path):
                yield from self._descend(path, rest, depth + 1, dirs_only)
            return
        rx = _component_regex(part)
        for name in self._listdir(base):
            if not rx.fullmatch(name):
                continue
            if not self._tick():
                return
            path = join + name
            if not rest:
                if not dirs_only or self._is_dir(path):
                    yield path
            # Fixed-depth patterns follow symlinked directories as glob(3) does: the depth bounds them.
            elif self._is_dir(path):
                yield from self._descend(path, rest, depth + 1, dirs_only)
            if self.exhausted:
                return

    def _recursive(self, base: str, tail: re.Pattern[str], dirs_only: bool) -> Iterator[str]:
        """Every entry below `base` whose relative path matches `tail`, depth-first, streaming."""
        join = base if base.endswith("/") else base + "/"
        stack: list[tuple[str, int]] = [(base, 0)]
        max_depth = self.ctx.limits.max_depth
        while stack:
            current, depth = stack.pop()
            cur_join = current if current.endswith("/") else current + "/"
            subdirs = []
            try:
                with os.scandir(self.fs.real(current)) as it:
                    entries = sorted(it, key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if not self._tick():
                    return
                path = cur_join + entry.name
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)  # a symlinked directory is not entered
                except OSError:
                    continue
                if tail.fullmatch(path[len(join):]):
                    if not dirs_only or is_dir or (entry.is_symlink() and self._is_dir(path)):
                        yield path
                if is_dir:
                    if depth + 1 < max_depth:
                        subdirs.append((path, depth + 1))
                    else:
                        self._depth_note()
            stack.extend(reversed(subdirs))

    def walk(self, base: str) -> Iterator[str]:
        """Every entry below `base` (itself followed if a link; symlinked subdirectories are not entered)."""
        yield from self._recursive(base, re.compile(".*", re.DOTALL), False)

    def _depth_note(self) -> None:
        self.ctx.note(f"recursive glob stopped at depth {self.ctx.limits.max_depth} (max_depth); "
                      "deeper entries are not listed")

    def listdir(self, directory: str) -> Iterator[Found]:
        """Entries of one directory, each with `directory` echoed as given (osquery's directory=)."""
        if not self._is_dir(directory):
            return
        join = directory if directory.endswith("/") else directory + "/"
        for name in self._listdir(directory):
            if not self._tick():
                return
            yield Found(join + name, directory)


def resolve(ctx: Context, walker: Walker) -> Iterator[Found]:
    """The (path, directory) pairs osquery's file/hash generators visit for this query's constraints.

    `path =` values are used verbatim; `path LIKE` is globbed; `directory =`/`LIKE` list the entries of
    the named (or globbed) directories. Duplicates are only tracked when several sources could overlap,
    so a single recursive glob holds no per-entry state.
    """
    eq_paths = sorted(str(v) for v in (ctx.eq("path") or ()))
    likes = ctx.like("path")
    seen: set[str] | None = set(eq_paths) if likes and (eq_paths or len(likes) > 1) else None
    for value in eq_paths:
        yield Found(value, parent_and_name(value)[0])
    for pattern in likes:
        for path in walker.glob(pattern):
            if seen is not None:
                if path in seen:
                    continue
                seen.add(path)
            yield Found(path, path.rpartition("/")[0] or "/")
    directories: list[str] = sorted(str(v) for v in (ctx.eq("directory") or ()))
    for d in directories:
        yield from walker.listdir(d)
    listed = set(directories)
    for pattern in ctx.like("directory"):
        for d in walker.glob(pattern, dirs_only=True):
            if d not in listed:
                listed.add(d)
                yield from walker.listdir(d)


def namespaces(ctx: Context) -> Iterator[tuple[int, str | None, Fs]]:
    """(pid_with_namespace, mount_namespace_id, Fs) to read through: the host, or each constrained pid's
    mount namespace via /proc/<pid>/root (what osquery does by joining the namespace)."""
    pids = ctx.eq("pid_with_namespace")
    if pids is None:
        yield 0, None, Fs(ctx)
        return
    for raw in sorted(pids, key=str):
        try:
            pid = int(raw)
        except (TypeError, ValueError):
            continue
        if pid <= 0:
            yield pid, None, Fs(ctx)
            continue
        try:
            link = os.readlink(ctx.path(f"/proc/{pid}/ns/mnt"))  # "mnt:[4026531840]"
        except OSError:
            ctx.missing(["pid_with_namespace"], f"process {pid} is gone or its namespace is unreadable",
                        "CAP_SYS_PTRACE")
            continue
        yield pid, link[link.find("[") + 1 : link.rfind("]")], Fs(ctx, f"/proc/{pid}/root")
