"""What the running Quarry instance knows about itself: the data behind the osquery_* tables.

The shell and `quarry query` use `Runtime.for_shell()` (no schedule, events off, flags at their defaults
unless given); the daemon builds one Runtime at start and updates it as it runs: schedule statistics via
`record_run()`, the scheduler's timing and delays via `set_timing()`, packs, event counters, the config
facts and the shippers' figures (`set_shippers()`). The osquery_* generators only read it, under `lock`.
"""

from __future__ import annotations

import os
import platform
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import collector
from collector import flags as flagdefs

if TYPE_CHECKING:
    from collector.eventstore import EventStore

# osquery PlatformType bits: POSIX 0x01, WINDOWS 0x02, BSD 0x04, LINUX 0x08, OSX 0x10, FREEBSD 0x20.
LINUX_PLATFORM_MASK = 0x01 | 0x08


class FlagState(NamedTuple):
    value: str
    default: str
    type: str
    description: str
    shell_only: bool


@dataclass
class ScheduleStats:
    """One osquery_schedule row; times in ms (wall_time in s, as osquery's deprecated column)."""

    query: str
    interval: int
    executions: int = 0
    last_executed: int = 0
    denylisted: bool = False
    output_size: int = 0
    wall_time_ms: int = 0
    last_wall_time_ms: int = 0
    user_time: int = 0
    last_user_time: int = 0
    system_time: int = 0
    last_system_time: int = 0
    average_memory: int = 0
    last_memory: int = 0

    @property
    def wall_time(self) -> int:
        return self.wall_time_ms // 1000

    def record(self, *, wall_ms: int, user_ms: int, system_ms: int, memory: int, output_size: int,
               finished: int | None = None) -> None:
        """Fold one execution in, as osquery's Config::recordQueryPerformance does."""
        self.executions += 1
        self.last_executed = int(finished if finished is not None else time.time())
        self.output_size += output_size
        self.wall_time_ms += wall_ms
        self.last_wall_time_ms = wall_ms
        self.user_time += user_ms
        self.last_user_time = user_ms
        self.system_time += system_ms
        self.last_system_time = system_ms
        # Running mean over executions, integer bytes like osquery's.
        self.average_memory = (self.average_memory * (self.executions - 1) + memory) // self.executions
        self.last_memory = memory


@dataclass(slots=True)
class QueryTiming:
    """One osquery_scheduler row: what the scheduler does with a query, beyond osquery_schedule's columns."""

    splayed_interval: int = 0  # the interval in use: the configured one with the splay applied
    next_run: int = 0  # UNIX time the next run is due
    phase: str = "idle"  # idle | executing | delivering
    waiting_since: int | None = None  # UNIX time a due run began waiting for the previous results' delivery
    delayed_runs: int = 0
    backpressure_ms: int = 0
    last_backpressure_ms: int = 0
    last_delay_time: int = 0
    skipped: int = 0
    errors: int = 0
    last_error: str | None = None
    last_error_time: int = 0


@dataclass
class PackInfo:
    """One osquery_packs row."""

    platform: str = ""
    version: str = ""
    shard: int = 0
    discovery_cache_hits: int = 0
    discovery_executions: int = 0
    active: bool = True


@dataclass
class EventInfo:
    """One osquery_events row: a publisher or a subscriber."""

    name: str
    publisher: str
    type: str  # "publisher" or "subscriber"
    subscriptions: int = 0
    events: int = 0
    refreshes: int = 0
    active: bool = False


# Linux evented tables and the publisher feeding each (osquery's names), used for osquery_events.
EVENT_SUBSCRIBERS: dict[str, str] = {
    "file_events": "inotify",
    "hardware_events": "udev",
}


def _os_release() -> str:
    """ID+VERSION_ID of the running distribution (Quarry is not built per distribution)."""
    try:
        info = platform.freedesktop_os_release()
    except OSError:
        return ""
    return info.get("ID", "") + info.get("VERSION_ID", "")


@dataclass
class Runtime:
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    pid: int = field(default_factory=os.getpid)
    version: str = collector.__version__
    start_time: int = field(default_factory=lambda: int(time.time()))
    host_uuid: str | None = None  # None: read from the host (DMI product_uuid, else machine-id)
    config_path: str = ""
    config_hash: str = ""
    config_valid: bool = False
    extensions: str = "inactive"
    build_platform: str = "linux"
    build_distro: str = field(default_factory=_os_release)
    watcher: int = -1
    platform_mask: int = LINUX_PLATFORM_MASK
    flags: dict[str, FlagState] = field(default_factory=dict)
    schedule: dict[str, ScheduleStats] = field(default_factory=dict)
    timing: dict[str, QueryTiming] = field(default_factory=dict)  # same keys as schedule (osquery_scheduler)
    packs: dict[str, PackInfo] = field(default_factory=dict)
    events: list[EventInfo] = field(default_factory=list)
    # (registry, name) pairs of plugins beyond the tables, with their active state.
    plugins: dict[tuple[str, str], bool] = field(default_factory=dict)
    # The daemon's collector.eventstore.EventStore; None in the shell (evented tables are then empty).
    event_store: EventStore | None = None
    # The pipeline's per-shipper figures (collector.status publishes them); empty without a daemon.
    shippers: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    # --- construction ---------------------------------------------------------------------------------------
    @staticmethod
    def flag_states(values: dict[str, Any] | None = None) -> dict[str, FlagState]:
        """Every catalogued flag with its value: the given one (aliases resolved) or the default."""
        given = {flagdefs.canonical(k): v for k, v in (values or {}).items()}
        unknown = set(given) - set(flagdefs.FLAGS)
        if unknown:
            raise ValueError(f"unknown flag(s): {', '.join(sorted(unknown))}")
        return {
            f.name: FlagState(flagdefs.render(given[f.name]) if f.name in given else f.default,
                              f.default, f.type, f.description, f.shell_only)
            for f in flagdefs.CATALOGUE
        }

    @classmethod
    def for_shell(cls, flag_values: dict[str, Any] | None = None, *, config_path: str = "") -> Runtime:
        """An interactive shell or one-shot query: nothing scheduled, no event publishers running."""
        states = cls.flag_states(flag_values)
        logger = states["logger_plugin"].value
        rt = cls(flags=states, config_path=config_path or "")
        rt.events = cls.inactive_events()
        rt.plugins = {("config", "filesystem"): True, ("logger", "filesystem"): logger == "filesystem",
                      ("sql", "sql"): True}
        if logger != "filesystem":
            rt.plugins[("logger", logger)] = True
        return rt

    @staticmethod
    def inactive_events() -> list[EventInfo]:
        out: list[EventInfo] = []
        for publisher in sorted(set(EVENT_SUBSCRIBERS.values())):
            out.append(EventInfo(publisher, publisher, "publisher"))
        for subscriber, publisher in sorted(EVENT_SUBSCRIBERS.items()):
            out.append(EventInfo(subscriber, publisher, "subscriber"))
        return out

    # --- daemon-side updates --------------------------------------------------------------------------------
    def add_query(self, name: str, query: str, interval: int) -> ScheduleStats:
        with self.lock:
            stats = self.schedule.get(name)
            if stats is None or stats.query != query or stats.interval != interval:
                stats = self.schedule[name] = ScheduleStats(query, interval)
                self.timing.pop(name, None)  # new SQL or interval: the scheduler's figures start afresh too
            self.timing.setdefault(name, QueryTiming())
            return stats

    def record_run(self, name: str, **measures: int) -> None:
        with self.lock:
            self.schedule[name].record(**measures)

    def set_timing(self, name: str, **values: Any) -> None:
        """Update a scheduled query's osquery_scheduler row (add_query made it); a removed query has none."""
        with self.lock:
            row = self.timing.get(name)
            if row is not None:
                for key, value in values.items():
                    setattr(row, key, value)

    def remove_query(self, name: str) -> None:
        with self.lock:
            self.schedule.pop(name, None)
            self.timing.pop(name, None)

    def set_shippers(self, snapshot: dict[str, dict[str, Any]]) -> None:
        with self.lock:
            self.shippers = snapshot

    def flag(self, name: str) -> str:
        return self.flags[flagdefs.canonical(name)].value if self.flags else flagdefs.FLAGS[name].default


_SHELL: Runtime | None = None
_SHELL_LOCK = threading.Lock()


def current(runtime: Any) -> Runtime:
    """The engine's runtime, or one shell Runtime per process when the engine was given none."""
    global _SHELL
    if isinstance(runtime, Runtime):
        return runtime
    with _SHELL_LOCK:
        if _SHELL is None:
            _SHELL = Runtime.for_shell()
        return _SHELL
