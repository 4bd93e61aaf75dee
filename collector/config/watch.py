"""Hot reload: watch the config's files with watchfiles, and say what a reload changes.

    async def on_change(paths):                       # the daemon's callback
        new = load(...); validate(new, engine)
        change = diff_configs(current, new)
        if change.rejected: log change.errors, keep current
        else: log change.summary(); apply; return new.watch   # the files to watch from now on
    await watch(current.watch, on_change, stop_event=stop)

`watch` watches the folder of each file non-recursively (editors replace files by rename, which a watch on
the file itself would lose) and folders given as such (conf.d, a pack glob's folder), reports only changes to
the paths asked for, and restarts its watcher when the callback returns a different set of paths (a reload
that adds a pack file). `diff_configs` compares two loads: queries added, removed and changed (which
fields), flags, decorators, file_paths, kafka_topics...; a new config is rejected when it brings errors the
running one did not have (old errors were already accepted at start, so they do not block every reload).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import watchfiles

from collector.config.flagvalues import CLI_ONLY
from collector.config.load import Loaded
from collector.model import Diagnostic, ScheduledQuery

log = logging.getLogger("quarry.config")

# The callback gets the changed paths; it may be async, and may return the paths to watch from now on.
OnChange = Callable[[set[Path]], Awaitable[Iterable[str | Path] | None] | Iterable[str | Path] | None]
_QUERY_FIELDS = [f.name for f in fields(ScheduledQuery) if f.name not in ("name", "place", "pack")]


@dataclass
class ConfigChange:
    added: list[str] = field(default_factory=list)  # scheduled names
    removed: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # name -> fields ("sql", "interval", ...)
    packs: list[str] = field(default_factory=list)  # packs whose platform/version/shard/discovery changed
    flags: dict[str, tuple[str, str]] = field(default_factory=dict)  # flag -> (old, new) text
    custom: bool = False  # custom_* options
    decorators: bool = False
    file_paths: bool = False  # file_paths or exclude_paths
    events: bool = False
    kafka_topics: bool = False
    views: bool = False
    shippers: bool = False
    extra: bool = False
    errors: list[Diagnostic] = field(default_factory=list)  # errors the new config adds
    fatal: bool = False  # the new main config could not be read or parsed

    @property
    def rejected(self) -> bool:
        return self.fatal or bool(self.errors)

    @property
    def sql_changed(self) -> list[str]:
        """Queries whose SQL changed: their differential state starts a new baseline."""
        return [n for n, f in self.changed.items() if "sql" in f]

    @property
    def restart_flags(self) -> list[str]:
        """Changed flags osquery reads only at start: they apply after a restart."""
        return [n for n in self.flags if n in CLI_ONLY]

    @property
    def options(self) -> bool:
        return bool(self.flags) or self.custom

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.packs or self.options
                    or self.decorators or self.file_paths or self.events or self.kafka_topics or self.views
                    or self.shippers or self.extra)

    def summary(self) -> str:
        """One line for the log: what the reload changed (or why it was rejected)."""
        if self.rejected:
            first = "; ".join(str(e) for e in self.errors[:3]) or "the config could not be read"
            return f"config rejected, running config kept: {len(self.errors)} new error(s): {first}"
        if self.empty:
            return "config reloaded: no change"
        parts = []
        for label, names in (("added", self.added), ("removed", self.removed)):
            if names:
                parts.append(f"{len(names)} queries {label} ({', '.join(names)})")
        if self.changed:
            parts.append(f"{len(self.changed)} queries changed (" +
                         ", ".join(f"{n}: {'/'.join(f)}" for n, f in self.changed.items()) + ")")
        if self.packs:
            parts.append(f"pack selectors changed ({', '.join(self.packs)})")
        if self.flags:
            values = ", ".join(f"{n}={new}" for n, (_, new) in self.flags.items())
            parts.append(f"flags changed ({values})")
            if self.restart_flags:
                parts.append(f"restart needed for {', '.join(self.restart_flags)}")
        for label in ("custom", "decorators", "file_paths", "events", "kafka_topics", "views", "shippers",
                      "extra"):
            if getattr(self, label):
                parts.append(f"{'custom options' if label == 'custom' else label} changed")
        return "config reloaded: " + "; ".join(parts)


def _query_map(loaded: Loaded) -> dict[str, ScheduledQuery]:
    return {q.name: q for q in loaded.config.queries()}


def _error_key(d: Diagnostic) -> tuple[str, str]:
    # Lines move when a file is edited; the message and the file identify an error well enough.
    return d.message, d.place.file if d.place else ""


def diff_configs(old: Loaded, new: Loaded, diagnostics: list[Diagnostic] | None = None) -> ConfigChange:
    """What applying `new` over `old` changes.

    `diagnostics` defaults to new.diagnostics; pass validate(new, engine) to include compile errors.
    """
    known = {_error_key(d) for d in old.diagnostics if d.severity == "error"}
    new_diags = new.diagnostics if diagnostics is None else diagnostics
    added_errors = [d for d in new_diags if d.severity == "error" and _error_key(d) not in known]
    change = ConfigChange(errors=added_errors, fatal=new.fatal)
    a, b = _query_map(old), _query_map(new)
    change.added = [n for n in b if n not in a]
    change.removed = [n for n in a if n not in b]
    for name in a.keys() & b.keys():
        diff = [f for f in _QUERY_FIELDS if getattr(a[name], f) != getattr(b[name], f)]
        if diff:
            change.changed[name] = diff
    change.changed = dict(sorted(change.changed.items()))
    old_packs = {p.name: p for p in old.config.packs}
    for p in new.config.packs:
        o = old_packs.get(p.name)
        if o is not None and (o.platform, o.version, o.shard, o.discovery) != (p.platform, p.version, p.shard,
                                                                               p.discovery):
            change.packs.append(p.name)
    change.flags = {n: (old.flags[n].text if n in old.flags else "", s.text) for n, s in new.flags.items()
                    if n not in old.flags or old.flags[n].text != s.text}
    oc, nc = old.config, new.config
    change.custom = oc.custom != nc.custom
    change.decorators = oc.decorators != nc.decorators
    change.file_paths = (oc.file_paths, oc.exclude_paths) != (nc.file_paths, nc.exclude_paths)
    change.events = oc.events != nc.events
    change.kafka_topics = oc.kafka_topics != nc.kafka_topics
    change.views = oc.views != nc.views
    change.shippers = oc.shippers != nc.shippers
    change.extra = oc.extra != nc.extra
    return change


def _norm(paths: Iterable[str | Path]) -> frozenset[Path]:
    return frozenset(Path(p).absolute() for p in paths)


def _existing(p: Path) -> Path:
    while not p.is_dir() and p != p.parent:
        p = p.parent
    return p


def _roots(interest: frozenset[Path]) -> list[Path]:
    roots = set()
    for p in interest:
        roots.add(_existing(p.parent))
        if p.is_dir():
            roots.add(p)
    return sorted(roots)


def _relevant(path: Path, interest: frozenset[Path]) -> bool:
    return path in interest or any(parent in interest for parent in path.parents)


async def watch(paths: Iterable[str | Path], on_change: OnChange, *, stop_event: asyncio.Event | None = None,
                debounce_ms: int = 200) -> None:
    """Call `on_change(changed paths)` after each burst of changes, until stop_event is set.

    The callback may be async; if it returns paths, they replace the watched set.
    """
    interest = _norm(paths)
    while stop_event is None or not stop_event.is_set():
        roots = _roots(interest)
        if not roots:  # nothing to watch: wait to be stopped
            if stop_event is not None:
                await stop_event.wait()
            return
        current = interest

        def wanted(_change: Any, path: str, _interest: frozenset[Path] = current) -> bool:
            return _relevant(Path(path), _interest)

        restart = False
        try:
            async for changes in watchfiles.awatch(*roots, watch_filter=wanted, debounce=debounce_ms, step=50,
                                                   stop_event=stop_event, recursive=False):
                hit = {Path(p) for _, p in changes}
                try:
                    result: Any = on_change(hit)
                    if inspect.isawaitable(result):
                        result = await result
                except Exception:  # a task boundary: the watcher must outlive a bad callback
                    log.exception("config reload callback failed for %s", ", ".join(map(str, sorted(hit))))
                    continue
                if result is not None and _norm(result) != interest:
                    interest = _norm(result)
                    restart = True
                    break
        except (OSError, RuntimeError) as e:
            # A watched folder vanished (or the OS refused a watch): look again shortly.
            log.warning("config watch on %s failed: %s; retrying", ", ".join(map(str, roots)), e)
            await asyncio.sleep(1)
            continue
        if not restart:
            return
