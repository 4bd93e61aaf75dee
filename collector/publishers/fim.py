"""file_events publisher: file integrity monitoring of the config's `file_paths`, driven by watchfiles.

    fim = FimPublisher(store, runtime=runtime, read_max=int(runtime.flag("read_max")))
    fim.update(config["file_paths"], config.get("exclude_paths"), config.get("file_accesses"))
    fim.start()            # thread; returns False (warning logged) when watchfiles is unavailable
    fim.update(...)        # hot reload: the watch set is rebuilt in the thread
    fim.stop()

One thread runs `watchfiles.watch()` (Rust `notify`, inotify on Linux) non-recursively over the directories
fim_paths.Planner chose, and turns each batch of changes into file_events rows, one per matching category
(exclude_paths applied per category). Columns as osquery's subscriber fills them
(`osquery/tables/events/linux/file_events.cpp`, `event_utils.cpp`): the file's stat (following a link, as
the `file` table does), md5/sha1/sha256 for CREATED and UPDATED files when hashing is on (osquery always
hashes those; files over --read_max or unreadable give hashed = -1), hashed = 0 for other actions.

What watchfiles can and cannot tell (it reports only added / modified / deleted, as a set per batch):
- CREATED, UPDATED, DELETED come straight from it.
- MOVED_FROM / MOVED_TO: a rename arrives as deleted(old) + added(new). When the deleted path's last known
  identity (device, inode, type, size, mtime, from our stat cache) is the added path's, the pair is
  reported as MOVED_FROM / MOVED_TO with one shared transaction_id (osquery uses the inotify cookie);
  otherwise DELETED / CREATED. A move from or to an unwatched directory is DELETED or CREATED (inotify
  would say MOVED_FROM / MOVED_TO with no partner).
- ATTRIBUTES_MODIFIED: "modified" covers both data and metadata. When the file's size and mtime are
  unchanged against the stat cache but its mode, owner, group or ctime changed, it is ATTRIBUTES_MODIFIED;
  a `touch` (mtime only) is UPDATED. Without a cached stat it is UPDATED.
- Order within a batch is lost (a set). A path both added and deleted in one batch is reported in the
  order that matches what is on disk now (gone: CREATED then DELETED; present: DELETED then CREATED).
- ACCESSED / OPENED (osquery's `file_accesses`) are not reported by watchfiles; configuring them logs a
  warning once and is otherwise ignored.
- transaction_id is 0 except for move pairs.
Directories a pattern names that do not exist yet (and new matches of wildcard directories, such as a new
home for `/home/%/.ssh/%%`) are looked for every `recheck_s` seconds (30) and then watched.
A directory created inside a recursive pattern's tree is added to the watch set (the watcher is rebuilt,
`refreshes` in osquery_events counts rebuilds) and its entries are reported as CREATED, since changes made
before its watch existed would otherwise be missed. While the watcher is rebuilt (milliseconds), changes
in the other directories are not seen: watchfiles cannot add a directory to a running watcher.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from collector.eventstore import EventStore
from collector.publishers import EventStatus
from collector.publishers.fim_paths import MAX_DIRS, Pattern, Plan, Planner, compile_excludes, compile_pattern
from collector.publishers.fim_file import Sig, hashes, identity, sig, stat_columns
from collector.runtime import Runtime

log = logging.getLogger("quarry.publishers.fim")

TABLE = "file_events"
READ_MAX = 50 * 1024 * 1024
RECHECK_S = 30.0  # how often wildcard directories and not-yet-existing ones are expanded again
MAX_CACHE = 100_000  # stat entries remembered for move / attribute inference


class _Wake:
    """watchfiles' stop_event: returns when the publisher stops or the watch set must be rebuilt."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.rebuild = threading.Event()

    def is_set(self) -> bool:
        return self.stop.is_set() or self.rebuild.is_set()


class FimPublisher:
    def __init__(self, store: EventStore, *, runtime: Runtime | None = None, root: str = "/",
                 hash_files: bool = True, read_max: int = READ_MAX, max_dirs: int = MAX_DIRS,
                 debounce_ms: int = 400, step_ms: int = 50, recheck_s: float = RECHECK_S) -> None:
        self.store = store
        self.status = EventStatus(runtime, TABLE)
        self.planner = Planner(root, max_dirs=max_dirs)
        self.hash_files = hash_files
        self.read_max = read_max
        self.debounce_ms, self.step_ms, self.recheck_s = debounce_ms, step_ms, recheck_s
        self.notes: list[str] = []  # what the last update/plan could not honour
        self._patterns: list[Pattern] = []
        self._excludes: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._wake = _Wake()
        self._thread: threading.Thread | None = None
        self._plan = Plan()
        self._cache: dict[str, Sig] = {}
        self._baselined: set[str] = set()
        self._next_move = 0
        self._accesses_warned = False
        self._ready = threading.Condition()
        self._requested = 0  # watch-set generations asked for (start, update, new directories)
        self._built = -1  # the generation whose watches are in place
        self._fresh: dict[str, set[str]] = {}  # new directories -> entries already reported in them

    # --- configuration --------------------------------------------------------------------------------------
    def update(self, file_paths: Mapping[str, Iterable[str]] | None,
               exclude_paths: Mapping[str, Iterable[str]] | None = None,
               file_accesses: Iterable[str] | None = None) -> list[str]:
        """Apply the config's FIM keys (start or hot reload); returns the problems found (also logged).

        Entries that cannot be used (relative paths, non-string values) are skipped with a message naming
        the category and entry; the others are applied."""
        problems: list[str] = []
        patterns: list[Pattern] = []
        for category, entries in (file_paths or {}).items():
            if isinstance(entries, str) or not isinstance(entries, Iterable):
                problems.append(f"file_paths.{category}: expected a list of paths")
                continue
            for entry in entries:
                try:
                    patterns.append(compile_pattern(str(category), entry, self.planner.is_dir))
                except ValueError as e:
                    problems.append(f"file_paths.{category}: {entry!r}: {e}")
        categories = {p.category for p in patterns}
        excludes: dict[str, list[Any]] = {}
        for category, entries in (exclude_paths or {}).items():
            if category not in categories:
                problems.append(f"exclude_paths.{category}: no such category in file_paths; ignored")
                continue
            excludes[str(category)] = compile_excludes(
                [entries] if isinstance(entries, str) else list(entries or ()))
        if file_accesses and not self._accesses_warned:
            self._accesses_warned = True
            problems.append("file_accesses: ACCESSED/OPENED events are not available with watchfiles; ignored")
        for p in problems:
            log.warning("FIM config: %s", p)
        with self._lock:
            self._patterns, self._excludes = patterns, excludes
        self._request_rebuild()
        self.status.set_active(self.active and bool(patterns), len(patterns))
        return problems

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until the watch set asked for so far (start(), update()) is in place; False on timeout."""
        with self._ready:
            wanted = self._requested
            return self._ready.wait_for(lambda: self._built >= wanted, timeout)

    def _request_rebuild(self) -> None:
        with self._ready:
            self._requested += 1
        self._wake.rebuild.set()

    @property
    def watched(self) -> frozenset[str]:
        """Directories (host paths) the current watcher covers."""
        with self._lock:
            return frozenset(self._plan.dirs)

    # --- life cycle -----------------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        if self.active:
            return True
        try:
            import watchfiles  # noqa: F401  (optional dependency: the daemon runs without FIM)
        except ImportError:
            log.warning("file_events disabled: the watchfiles package is not installed")
            self.status.set_active(False, 0)
            return False
        # watchfiles logs every batch at INFO ("N changes detected"); the rows are the record here.
        logging.getLogger("watchfiles.main").setLevel(logging.WARNING)
        self._wake.stop.clear()
        self._request_rebuild()
        self._thread = threading.Thread(target=self._run, name="quarry-fim", daemon=True)
        self._thread.start()
        with self._lock:
            count = len(self._patterns)
        self.status.set_active(bool(count), count)
        return True

    def stop(self, timeout: float = 5.0) -> None:
        self._wake.stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("file_events: watcher thread did not stop within %.1f s", timeout)
                return
            self._thread = None
        self.status.set_active(False)

    # --- the watcher thread ---------------------------------------------------------------------------------
    def _run(self) -> None:
        import watchfiles

        failures = 0
        while not self._wake.stop.is_set():
            self._wake.rebuild.clear()
            with self._ready:
                generation = self._requested
            plan = self._replan()
            if not plan.dirs:  # nothing configured or nothing there yet: wait for update(), stop() or a while
                self._set_built(generation)
                deadline = time.monotonic() + self.recheck_s
                while not self._wake.is_set() and time.monotonic() < deadline:
                    self._wake.stop.wait(0.2)
                continue
            real_dirs = [self.planner.real(d) for d in sorted(plan.dirs)]
            next_check = time.monotonic() + self.recheck_s
            try:
                # The watches exist once the generator first yields (a batch, or an empty set after
                # rust_timeout): only then are new directories re-scanned and `ready` set.
                for changes in watchfiles.watch(
                        *real_dirs, watch_filter=None, debounce=self.debounce_ms, step=self.step_ms,
                        stop_event=self._wake, rust_timeout=500, yield_on_timeout=True, recursive=False,
                        raise_interrupt=False, ignore_permission_denied=True):
                    if changes:
                        self._handle({(int(c), self.planner.host(p)) for c, p in changes})
                    if self._built < generation:
                        self._rescan_fresh()
                        self._set_built(generation)
                        next_check = time.monotonic() + self.recheck_s
                    elif plan.volatile and time.monotonic() > next_check:
                        next_check = time.monotonic() + self.recheck_s
                        changed, appeared = self.planner.stale(plan)
                        for d in appeared:  # made after we started: what they hold is new
                            self._fresh.setdefault(d, set())
                        if changed:
                            self._request_rebuild()
                failures = 0
            except FileNotFoundError:
                continue  # a watched directory vanished between planning and watching: plan again
            except Exception:  # noqa: BLE001 - thread boundary: log, back off, rebuild
                failures += 1
                log.exception("file_events: watcher failed (attempt %d); rebuilding", failures)
                self._wake.stop.wait(min(30.0, float(failures)))

    def _set_built(self, generation: int) -> None:
        with self._ready:
            self._built = generation
            self._ready.notify_all()

    def _replan(self) -> Plan:
        with self._lock:
            patterns, excludes = list(self._patterns), dict(self._excludes)
        plan = self.planner.plan(patterns, excludes)
        for note in plan.notes:
            if note not in self.notes:
                log.warning("%s", note)
        with self._lock:
            self._plan = plan
            self.notes = list(plan.notes)
        if self._built >= 0:  # osquery's `refreshes`: run-loop restarts after the first start
            self.status.refreshed()
        for d in plan.dirs:
            if d not in self._baselined:
                self._baseline(d)
        self._baselined &= set(plan.dirs)
        return plan

    def _baseline(self, host_dir: str) -> None:
        self._baselined.add(host_dir)
        try:
            with os.scandir(self.planner.real(host_dir)) as it:
                names = [e.name for e in it]
        except OSError:
            return
        join = host_dir.rstrip("/") + "/"
        for name in names:
            if len(self._cache) >= MAX_CACHE:
                return
            self._remember(join + name)

    def _remember(self, host: str) -> os.stat_result | None:
        try:
            st = os.lstat(self.planner.real(host))
        except OSError:
            self._cache.pop(host, None)
            return None
        if host in self._cache or len(self._cache) < MAX_CACHE:
            self._cache[host] = sig(st)
        return st

    # --- changes -> rows ------------------------------------------------------------------------------------
    def _handle(self, changes: set[tuple[int, str]]) -> None:
        self.status.fired(len(changes))
        added = {p for c, p in changes if c == 1}
        modified = {p for c, p in changes if c == 2}
        deleted = {p for c, p in changes if c == 3}
        events: list[tuple[str, str, int]] = []  # (path, action, transaction_id), in report order
        for old, new in self._pair_moves(added, deleted):
            self._next_move += 1
            events += [(old, "MOVED_FROM", self._next_move), (new, "MOVED_TO", self._next_move)]
            deleted.discard(old)
            added.discard(new)
            modified.discard(new)
            self._new_directory(new, events)
        for path in sorted(added | modified | deleted):
            seq = []
            if path in deleted:
                seq.append("DELETED")
            if path in added:
                seq.append("CREATED")
            elif path in modified:
                seq.append(self._modified_action(path))
            exists = os.path.lexists(self.planner.real(path))
            if not exists:
                seq.sort(key=lambda action: action == "DELETED")  # it is gone: the removal came last
            events.extend((path, action, 0) for action in seq)
            if path in added and exists:
                self._new_directory(path, events)
        self._emit(events)

    def _emit(self, events: list[tuple[str, str, int]]) -> None:
        for path, action, _tid in events:
            if action in ("CREATED", "MOVED_TO"):
                for fresh, seen in self._fresh.items():
                    if path.startswith(fresh + "/"):
                        seen.add(path)
        rows = [row for path, action, tid in events for row in self._rows(path, action, tid)]
        if rows:
            self.status.added(self.store.add(TABLE, rows))

    def _pair_moves(self, added: set[str], deleted: set[str]) -> list[tuple[str, str]]:
        """(old, new) renames: a deleted path whose last known inode is now at an added path."""
        if not added or not deleted:
            return []
        by_identity: dict[tuple[int, ...], str] = {}
        for path in added:
            try:
                by_identity[identity(sig(os.lstat(self.planner.real(path))))] = path
            except OSError:
                continue
        pairs = []
        for path in sorted(deleted):
            old = self._cache.get(path)
            new = by_identity.pop(identity(old), None) if old else None
            if new is not None and new != path:
                pairs.append((path, new))
        return pairs

    def _modified_action(self, path: str) -> str:
        old = self._cache.get(path)
        try:
            new = sig(os.lstat(self.planner.real(path)))
        except OSError:
            return "UPDATED"
        if old is not None and old[2:4] == new[2:4] and old[4:] != new[4:]:
            return "ATTRIBUTES_MODIFIED"
        return "UPDATED"

    def _new_directory(self, path: str, events: list[tuple[str, str, int]]) -> None:
        """A directory created in a recursive tree: watch it (rebuild) and report what it already holds."""
        real = self.planner.real(path)
        if os.path.islink(real) or not os.path.isdir(real):
            return
        with self._lock:
            plan = self._plan
        parent = path.rpartition("/")[0] or "/"
        if not plan.dirs.get(parent, False) or plan.truncated:
            return
        self._request_rebuild()
        seen = self._fresh.setdefault(path, set())
        for child in self.planner.tree(path):
            if child not in seen:
                seen.add(child)
                events.append((child, "CREATED", 0))

    def _rescan_fresh(self) -> None:
        """Entries that appeared in new directories before their watch existed, not yet reported."""
        fresh, self._fresh = self._fresh, {}
        events = [(child, "CREATED", 0) for path, seen in fresh.items() for child in self.planner.tree(path)
                  if child not in seen]
        if events:
            self._emit(events)

    def _categories(self, path: str) -> list[str]:
        with self._lock:
            patterns, excludes = self._patterns, self._excludes
        out: list[str] = []
        for p in patterns:
            if p.category in out or not p.regex.fullmatch(path):
                continue
            if any(rx.fullmatch(path) for rx in excludes.get(p.category, ())):
                continue
            out.append(p.category)
        return out

    def _rows(self, path: str, action: str, tid: int) -> list[dict[str, Any]]:
        categories = self._categories(path)
        if not categories:
            return []
        now = int(time.time())
        base: dict[str, Any] = {"target_path": path, "action": action, "transaction_id": tid, "time": now}
        if action in ("DELETED", "MOVED_FROM"):
            self._cache.pop(path, None)
        else:
            self._remember(path)
            base.update(stat_columns(self.planner.real(path)))
        if self.hash_files and action in ("CREATED", "UPDATED"):
            base.update(hashes(self.planner.real(path), self.read_max))
        else:
            base["hashed"] = 0
        return [{**base, "category": c} for c in categories]

