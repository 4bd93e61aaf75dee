"""The daemon's live status: one JSON document for `quarry status`, /metrics, /healthz and osquery_shippers.

    pub = StatusPublisher(status_path(db), runtime=rt, shippers=pipeline.snapshot, scheduler=sched,
                          secrets=secret_values(config.shippers), interval_s=5)
    task = asyncio.create_task(pub.run())     # writes <state dir>/status.json every interval
    doc = pub.document()                      # a fresh document (the HTTP endpoint asks for one per request)
    await pub.stop()                          # final document, marked "stopped"

The file is written atomically (temporary file + rename, mode 0640), so a reader never sees half a document
and `quarry status` works without a network port. The document carries counters only; every string in it
goes through `redact()` with the configured secrets anyway, because an error text may quote a URL or a
header. `quarry status` calls `show()`: it reads the file, decides whether the daemon is alive (state,
pid and its start time, age of the file) and prints a table or the raw document.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import psutil

if TYPE_CHECKING:
    from collector.runtime import Runtime
    from collector.scheduler import Scheduler

log = logging.getLogger("quarry.status")

FILE = "status.json"
FORMAT = 1
REDACTED = "<redacted>"
# Keys of a shipper's settings whose values are credentials (with _env/_file: where to find them).
_SECRET_KEY = re.compile(r"(token|password|passwd|secret|api_?key|credential|auth)", re.I)
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
MAX_SECRET_FILE = 64 * 1024


def state_dir(database_path: str | os.PathLike[str]) -> Path:
    """The folder the daemon keeps its state in (as collector.state.State: `x.db` means its parent)."""
    db = Path(database_path)
    return db.parent if db.suffix == ".db" else db


def status_path(database_path: str | os.PathLike[str]) -> Path:
    return state_dir(database_path) / FILE


# --- secrets ------------------------------------------------------------------------------------------------
def secret_values(shippers: Mapping[str, Any]) -> set[str]:
    """Every credential the shippers' settings hold or point to (env variables and files are resolved)."""
    found: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, str) and len(value.strip()) >= 4:
            found.add(value.strip())
        elif isinstance(value, (list, tuple)):
            for v in value:
                add(v)
        elif isinstance(value, Mapping):
            for v in value.values():
                add(v)

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                k = str(key).lower()
                if k == "headers":
                    add(value)
                elif _SECRET_KEY.search(k) and k.endswith("_env") and isinstance(value, str):
                    add(os.environ.get(value, ""))
                elif _SECRET_KEY.search(k) and k.endswith("_file") and isinstance(value, str):
                    add(_read_small(value))
                elif _SECRET_KEY.search(k) and not isinstance(value, Mapping):
                    add(value)
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for v in node:
                walk(v)

    walk(shippers)
    return found


def _read_small(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(MAX_SECRET_FILE)
    except OSError:
        return ""


def redact(doc: Any, secrets: Iterable[str]) -> Any:
    """`doc` with every secret, and the user:password part of any URL, replaced in every string."""
    ordered = sorted(set(secrets), key=len, reverse=True)  # a longer secret first: no partial leftovers

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for s in ordered:
                if s in value:
                    value = value.replace(s, REDACTED)
            return _URL_USERINFO.sub(REDACTED + "@", value)
        if isinstance(value, dict):
            return {clean(k) if isinstance(k, str) else k: clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value

    return clean(doc)


# --- the document -------------------------------------------------------------------------------------------
def failing(snap: Mapping[str, Any]) -> bool:
    """A shipper is failing when its sends fail, its destination does not answer its probe, it could not
    open, or it stopped."""
    health = snap.get("health")
    return (health in ("retrying", "unreachable", "stopped")
            or (health == "starting" and bool(snap.get("last_error"))))


def scheduler_summary(scheduler: Scheduler | None) -> dict[str, Any]:
    if scheduler is None:
        return {"queries": 0, "executions": 0, "errors": 0, "backpressure_s": 0.0, "delayed_runs": 0,
                "denylisted": 0, "skipped": 0, "per_query": {}}
    stats = scheduler.stats.all()
    per_query = {
        name: {"executions": s.executions, "last_executed": s.last_executed, "rows": s.rows,
               "errors": s.errors, "last_error": s.last_error, "last_error_time": s.last_error_time or None,
               "skipped": s.skipped, "denylisted": s.denylisted, "backpressure_s": s.backpressure_ms / 1000,
               "last_backpressure_s": s.last_backpressure_ms / 1000, "delayed_runs": s.delayed_runs}
        for name, s in sorted(stats.items())
    }
    return {
        "queries": len(scheduler.queries()),
        "executions": sum(s.executions for s in stats.values()),
        "errors": sum(s.errors for s in stats.values()),
        "backpressure_s": scheduler.backpressure_ms / 1000,
        "backpressure_waits": sum(1 for s in stats.values() if s.backpressure_ms),
        "delayed_runs": sum(s.delayed_runs for s in stats.values()),
        "denylisted": sum(1 for s in stats.values() if s.denylisted),
        "skipped": sum(s.skipped for s in stats.values()),
        "per_query": per_query,
    }


def process_facts(pid: int, version: str, start_time: float) -> dict[str, Any]:
    proc = psutil.Process(pid)
    with proc.oneshot():
        cpu = proc.cpu_times()
        return {"pid": pid, "version": version, "start_time": round(proc.create_time(), 3),
                "uptime_s": round(time.time() - start_time, 3), "rss_bytes": proc.memory_info().rss,
                "cpu_user_s": round(cpu.user, 3), "cpu_system_s": round(cpu.system, 3),
                "threads": proc.num_threads()}


def document(*, shippers: Mapping[str, Mapping[str, Any]], scheduler: Mapping[str, Any],
             process: Mapping[str, Any], interval_s: float, state: str = "running",
             secrets: Iterable[str] = ()) -> dict[str, Any]:
    doc = {"format": FORMAT, "state": state, "time": round(time.time(), 3), "interval_s": interval_s,
           "process": dict(process), "scheduler": dict(scheduler),
           "shippers": {name: {**s, "failing": failing(s)} for name, s in shippers.items()},
           "failing": sorted(name for name, s in shippers.items() if failing(s))}
    return redact(doc, secrets)


def write(path: Path, doc: Mapping[str, Any]) -> None:
    """Atomically: a reader sees the old document or the new one, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.fchmod(fd, 0o640)  # the umask may be stricter at creation; never looser than 0640
        os.write(fd, orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    finally:
        os.close(fd)
    os.replace(tmp, path)


class StatusPublisher:
    def __init__(self, path: Path, *, runtime: Runtime, shippers: Callable[[], Mapping[str, Any]] | None,
                 scheduler: Scheduler | None, secrets: Iterable[str] = (), interval_s: float = 5.0) -> None:
        self.path, self.runtime, self.scheduler = path, runtime, scheduler
        self._shippers = shippers
        self.secrets = set(secrets)
        self.interval_s = max(0.5, float(interval_s))
        self.state = "running"
        self._task: asyncio.Task[None] | None = None
        self._last_problem = ""

    def document(self) -> dict[str, Any]:
        """A fresh document; also hands the shipper figures to the runtime (osquery_shippers). Loop only."""
        snaps = dict(self._shippers()) if self._shippers is not None else {}
        rt = self.runtime
        doc = document(shippers=snaps, scheduler=scheduler_summary(self.scheduler),
                       process=process_facts(rt.pid, rt.version, rt.start_time), interval_s=self.interval_s,
                       state=self.state, secrets=self.secrets)
        rt.set_shippers(doc["shippers"])
        return doc

    def publish(self) -> dict[str, Any] | None:
        try:
            doc = self.document()
            write(self.path, doc)
        except Exception as e:  # noqa: BLE001 - status is best effort: report each new problem once
            problem = f"{type(e).__name__}: {e}"
            if problem != self._last_problem:
                log.warning("cannot write the status file %s: %s", self.path, problem)
                self._last_problem = problem
            return None
        self._last_problem = ""
        return doc

    def start(self) -> None:
        self.publish()
        self._task = asyncio.create_task(self.run(), name="status")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self.publish()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.state = "stopped"
        self.publish()


# --- `quarry status` ----------------------------------------------------------------------------------------
def read(path: Path) -> dict[str, Any]:
    """The document; OSError when it cannot be read, ValueError when it is not a status document."""
    data = orjson.loads(path.read_bytes())
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a Quarry status document (format {FORMAT})")
    return data


def not_running(doc: Mapping[str, Any], *, now: float | None = None,
                max_age_s: float | None = None) -> str | None:
    """Why the document does not describe a running daemon, or None when it does."""
    now = time.time() if now is None else now
    proc = doc.get("process") or {}
    if doc.get("state") == "stopped":
        return "the daemon stopped (it wrote its final status at shutdown)"
    pid = int(proc.get("pid") or 0)
    try:
        started = psutil.Process(pid).create_time() if pid > 0 else None
    except psutil.NoSuchProcess:
        started = None
    except psutil.Error:  # e.g. access denied: the process exists
        started = proc.get("start_time")
    if started is None:
        return f"process {pid} is not running"
    if proc.get("start_time") is not None and abs(float(started) - float(proc["start_time"])) > 2.0:
        return f"process {pid} is not the daemon that wrote the status (pid reused)"
    limit = max_age_s if max_age_s else max(15.0, 3 * float(doc.get("interval_s") or 5.0))
    age = now - float(doc.get("time") or 0)
    if age > limit:
        return f"the status is {age:.0f} s old (limit {limit:.0f} s): the daemon is hung or not writing it"
    return None


def _n(value: Any) -> str:
    v = int(value or 0)
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if v >= size * 10:
            return f"{v // size}{unit}"
    return str(v)


def _bytes(value: Any) -> str:
    v = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if v < 1024 or unit == "GiB":
            return f"{v:.0f}{unit}" if unit == "B" else f"{v:.1f}{unit}"
        v /= 1024
    return f"{v:.1f}GiB"


def _age(value: Any) -> str:
    if value is None:
        return "-"
    v = float(value)
    return f"{v:.1f}s" if v < 60 else f"{v / 60:.1f}m" if v < 3600 else f"{v / 3600:.1f}h"


COLUMNS = ("shipper", "type", "health", "queued", "spool", "in flight", "acked", "retried", "dropped", "dead",
           "oldest", "last error")


def table(doc: Mapping[str, Any], *, now: float | None = None) -> str:
    """The human view: process line, one line per shipper, the scheduler summary."""
    now = time.time() if now is None else now
    p, s = doc.get("process") or {}, doc.get("scheduler") or {}
    cpu = float(p.get("cpu_user_s") or 0) + float(p.get("cpu_system_s") or 0)
    lines = [f"quarry {p.get('version', '?')}  pid {p.get('pid', '?')}  up {_age(p.get('uptime_s'))}  "
             f"rss {_bytes(p.get('rss_bytes'))}  cpu {cpu:.1f}s  "
             f"status written {max(0.0, now - float(doc.get('time') or now)):.0f}s ago"]
    rows = []
    for name, sh in sorted((doc.get("shippers") or {}).items()):
        health = str(sh.get("health", "?")) + (" FAILING" if name in (doc.get("failing") or ()) else "")
        err = str(sh.get("last_error") or "")
        rows.append((name, str(sh.get("type", "")), health,
                     f"{_n(sh.get('queued_events'))}/{_bytes(sh.get('queued_bytes'))}",
                     f"{_n(sh.get('spool_events'))}/{_bytes(sh.get('spool_bytes'))}", _n(sh.get("in_flight")),
                     _n(sh.get("acked")), _n(sh.get("retried")), _n(sh.get("dropped_total")),
                     _n(sh.get("dead_lettered")), _age(sh.get("oldest_event_age_s")),
                     err if len(err) <= 80 else err[:77] + "..."))
    if rows:
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
        lines.append("")
        lines.append("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths)).rstrip())
        lines.extend("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows)
        for name, sh in sorted((doc.get("shippers") or {}).items()):
            if sh.get("dropped"):
                reasons = ", ".join(f"{k} {v}" for k, v in sorted(sh["dropped"].items()))
                lines.append(f"  {name} dropped by reason: {reasons}")
    else:
        lines += ["", "no shippers configured (results go to the osquery results log only)"]
    lines.append("")
    waited = float(s.get("backpressure_s") or 0)
    lines.append(f"scheduler: {s.get('queries', 0)} queries, {s.get('executions', 0)} executions, "
                 f"{s.get('errors', 0)} failed, {s.get('skipped', 0)} skipped, "
                 f"{s.get('denylisted', 0)} denylisted, backpressure {waited:.1f}s "
                 f"over {s.get('backpressure_waits', 0)} queries ({s.get('delayed_runs', 0)} delayed runs)")
    for name, q in sorted((s.get("per_query") or {}).items()):
        if q.get("last_error"):
            lines.append(f"  {name}: last error: {q['last_error']}")
    return "\n".join(lines) + "\n"


def show(database_path: str, *, as_json: bool = False, max_age_s: float | None = None,
         out: Any = None) -> int:
    """`quarry status`: 0 when the daemon runs, 1 when it does not, 2 when there is no status to read."""
    out = out or sys.stdout
    path = status_path(database_path)
    try:
        doc = read(path)
    except FileNotFoundError:
        print(f"quarry is not running: no status file at {path} (is --database_path the daemon's?)",
              file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"quarry status: cannot read {path}: {e}", file=sys.stderr)
        return 2
    why = not_running(doc, max_age_s=max_age_s)
    if as_json:
        out.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        if why is not None:
            out.write(f"NOT RUNNING: {why}. Last status written by the daemon:\n\n")
        out.write(table(doc))
    if why is not None:
        print(f"quarry is not running: {why}", file=sys.stderr)
        return 1
    return 0
