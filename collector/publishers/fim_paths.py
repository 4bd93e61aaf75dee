"""FIM path patterns: osquery's `file_paths` / `exclude_paths` globs, and the directories to watch for them.

Pattern rules (osquery's, `osquery/events/linux/inotify.cpp` and docs deployment/file-integrity-monitoring):
- `%` (or `*`) matches within one path level, `%%` (or `**`) matches any depth; `?` one character, `[...]`
  a character class. `_` is a literal underscore here (osquery passes file_paths to glob(3), not to LIKE),
  unlike the `file` table's LIKE patterns.
- `/etc/%%`: everything below /etc, recursively. `/tmp/%`: the entries directly in /tmp.
- A directory without wildcards (`/etc/ssh`): the directory and its direct entries.
- A file (`/etc/passwd`): that path only. Its parent directory is what we watch, so an editor's or
  `passwd`'s atomic replace (write a temp file, rename it over) is seen, which a watch on the file's own
  inode misses.
- Wildcards in the directory part (`/home/%/.ssh/%%`) are expanded when the watch set is (re)built, with
  collector.tables._glob (bounded, cancellable); a home created later is covered at the next rebuild.

Watching is non-recursive per directory (the publisher asks watchfiles for exactly these directories), so
we decide what is watched: recursive patterns are enumerated here with os.scandir without following
symlinked directories (no loops, no escaping the tree), to a bounded depth and a bounded number of
directories; when a bound is hit the plan carries a note saying what is not watched.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from collector.table import Context, Limits
from collector.tables import _glob
from collector.tables.file_events import SPEC

MAX_DIRS = 4096  # default bound on watched directories (inotify's max_user_watches is often 8192)
MAX_DEPTH = 32
_PROBE = "/\0probe/\0probe"  # a two-level child that no real path equals, to test recursive excludes


@dataclass(frozen=True)
class Pattern:
    category: str
    text: str  # as configured
    regex: re.Pattern[str]  # host paths this pattern covers
    stem: str  # glob (`*` syntax) of the directories holding the covered paths; "" when none
    recursive: bool  # the stem's directories are watched with all their subdirectories


def normalize(text: str) -> str:
    """osquery's replaceGlobWildcards: SQL wildcards to glob ones (`%%` -> `**`, `%` -> `*`)."""
    return text.replace("%%", "**").replace("%", "*")


def _has_wild(part: str) -> bool:
    return any(c in part for c in "*?[")


def _component(part: str) -> str:
    """One path level of a glob as a regex: `*` and `?` never cross a `/`."""
    out, i = [], 0
    while i < len(part):
        c = part[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := _class_end(part, i)) > 0:
            body = part[i + 1:end]
            negate = body[:1] in ("!", "^")
            body = body[1:] if negate else body
            # Keep ranges (`a-z`); escape what Python's re would read as nesting or set operations.
            body = "".join("\\" + ch if ch in "\\[&~|^" else ch for ch in body)
            out.append("[" + ("^" if negate else "") + body + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _class_end(part: str, start: int) -> int:
    j = start + 1
    if j < len(part) and part[j] in "!^":
        j += 1
    if j < len(part) and part[j] == "]":
        j += 1  # a leading `]` is a member, as in glob(3)
    return part.find("]", j)


def translate(glob: str) -> str:
    """A regex (for fullmatch) of a normalized absolute glob; `**` spans any number of levels."""
    out = []
    for part in glob.strip("/").split("/"):
        out.append("/" + ".*".join(_component(p) for p in part.split("**")))
    return "".join(out)


def compile_pattern(category: str, text: str, is_dir: Callable[[str], bool]) -> Pattern:
    """One file_paths entry; ValueError says why an entry cannot be used."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("empty path")
    glob = normalize(text.strip())
    if not glob.startswith("/"):
        raise ValueError("not an absolute path")
    glob = "/" + glob.strip("/") if glob.strip("/") else "/"
    parts = [p for p in glob.split("/") if p]
    rec_at = next((i for i, p in enumerate(parts) if "**" in p), -1)
    if rec_at >= 0:
        stem = "/" + "/".join(parts[:rec_at])
        return Pattern(category, text, re.compile(translate(glob), re.DOTALL), stem, True)
    if not any(_has_wild(p) for p in parts) and is_dir(glob):
        # A plain directory: itself and its direct entries.
        rx = re.compile(re.escape(glob.rstrip("/")) + r"(/[^/]+)?", re.DOTALL)
        return Pattern(category, text, rx, glob, False)
    stem = "/" + "/".join(parts[:-1])
    return Pattern(category, text, re.compile(translate(glob), re.DOTALL), stem, False)


def compile_excludes(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    out = []
    for text in patterns:
        glob = normalize(str(text).strip())
        if glob.startswith("/"):
            out.append(re.compile(translate(glob), re.DOTALL))
    return out


@dataclass
class Plan:
    """What to watch: directory (host path) -> whether it lies in a recursive pattern's tree."""

    dirs: dict[str, bool] = field(default_factory=dict)
    recursive_roots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    truncated: bool = False
    # Stems whose expansion can change without an event we see (wildcards, or nothing there yet) -> result.
    volatile: dict[str, frozenset[str]] = field(default_factory=dict)


class Planner:
    def __init__(self, root: str = "/", *, max_dirs: int = MAX_DIRS, max_depth: int = MAX_DEPTH) -> None:
        self.root = root.rstrip("/") or "/"
        self.max_dirs = max_dirs
        self.max_depth = max_depth

    def real(self, host: str) -> str:
        return host if self.root == "/" else self.root + host

    def host(self, real: str) -> str:
        if self.root == "/" or not real.startswith(self.root):
            return real
        return real[len(self.root):] or "/"

    def is_dir(self, host: str) -> bool:
        return os.path.isdir(self.real(host))

    def tree(self, top: str, budget: int = 10_000) -> list[str]:
        """Entries below a directory (host paths), depth-first, bounded, not entering symlinked dirs."""
        out: list[str] = []
        stack = [top]
        while stack and len(out) < budget:
            current = stack.pop()
            try:
                with os.scandir(self.real(current)) as it:
                    entries = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
            except OSError:
                continue
            for name, is_dir in entries:
                child = current.rstrip("/") + "/" + name
                out.append(child)
                if is_dir:
                    stack.append(child)
        return out[:budget]

    def plan(self, patterns: Iterable[Pattern], excludes: Mapping[str, list[re.Pattern[str]]]) -> Plan:
        plan = Plan()
        ctx = Context(SPEC, {}, None, root=self.root,
                      limits=Limits(max_depth=self.max_depth, max_entries=self.max_dirs * 64))
        walker = _glob.Walker(ctx, _glob.Fs(ctx))
        for pat in patterns:
            stems = self._expand(walker, pat.stem)
            if not stems or any(_has_wild(p) for p in pat.stem.split("/")):
                plan.volatile[pat.stem] = frozenset(stems)
            if not stems:
                plan.notes.append(f"FIM: nothing to watch yet for {pat.text!r} ({pat.category}): no directory "
                                  f"matches {pat.stem}")
            for stem in stems:
                if pat.recursive:
                    plan.recursive_roots.append(stem)
                    self._enumerate(plan, stem, pat.category, excludes)
                else:
                    self._add(plan, stem, False, pat.category, excludes)
        plan.notes.extend(f"FIM: {n}" for n in ctx.report.messages())
        return plan

    def stale(self, plan: Plan) -> tuple[bool, set[str]]:
        """Whether a volatile stem now expands differently (a new home, a created directory), and the
        directories that appeared: the plan must be rebuilt."""
        ctx = Context(SPEC, {}, None, root=self.root, limits=Limits(max_depth=self.max_depth,
                                                                    max_entries=self.max_dirs * 64))
        walker = _glob.Walker(ctx, _glob.Fs(ctx))
        changed, appeared = False, set()
        for stem, found in plan.volatile.items():
            now = frozenset(self._expand(walker, stem))
            if now != found:
                changed = True
                appeared |= now - found
        return changed, appeared

    def _expand(self, walker: _glob.Walker, stem: str) -> list[str]:
        if not stem:
            return []
        if not any(_has_wild(p) for p in stem.split("/")):
            return [stem] if self.is_dir(stem) else []
        # _glob speaks LIKE (`%`, `_`); it may widen (`_`, classes), so its answers are re-checked here.
        like = re.sub(r"\[[^\]]*\]", "%", stem).replace("*", "%").replace("?", "_")
        exact = re.compile(translate(stem), re.DOTALL)
        # Fixed-depth levels may pass through symlinked directories (as glob(3)): the depth bounds them.
        return sorted(d for d in walker.glob(like, dirs_only=True) if exact.fullmatch(d))

    def _add(self, plan: Plan, host: str, recursive: bool, category: str,
             excludes: Mapping[str, list[re.Pattern[str]]]) -> bool:
        if host in plan.dirs:
            plan.dirs[host] = plan.dirs[host] or recursive
            return True
        if any(rx.fullmatch(host.rstrip("/") + _PROBE) for rx in excludes.get(category, ())):
            return False  # everything below is excluded: no watch needed
        if len(plan.dirs) >= self.max_dirs:
            if not plan.truncated:
                plan.truncated = True
                plan.notes.append(f"FIM: watch limit of {self.max_dirs} directories reached at {host}; "
                                  "changes in further directories are not seen")
            return False
        plan.dirs[host] = recursive
        return True

    def _enumerate(self, plan: Plan, base: str, category: str,
                   excludes: Mapping[str, list[re.Pattern[str]]]) -> None:
        """`base` and its subdirectories, depth-first, never entering a symlinked directory."""
        stack = [(base, 0)]
        deep = False
        while stack:
            host, depth = stack.pop()
            if not self._add(plan, host, True, category, excludes):
                if plan.truncated:
                    return
                continue
            if depth >= self.max_depth:
                deep = True
                continue
            try:
                with os.scandir(self.real(host)) as it:
                    subdirs = sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
            except OSError:
                continue
            join = host.rstrip("/") + "/"
            stack.extend((join + name, depth + 1) for name in reversed(subdirs))
        if deep:
            plan.notes.append(f"FIM: directories deeper than {self.max_depth} levels below {base} "
                              "are not watched")
