"""Runs one outage scenario (see scenario.py): the daemon, the per-second timeline, and the verdict."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.faults.scenario import ROOT, Key, LineCounter, Target, line_key

log = logging.getLogger("quarry.tests.faults")
SHIPPER = "target"  # the one shipper's name in the daemon's config
CATCH_UP_LAG_S = 5.0
STATUS_KEYS = ("health", "acked", "retried", "queued_events", "spool_events", "spool_bytes", "in_flight",
               "dead_lettered", "dropped_total", "oldest_event_age_s")


def stream_query(rows: int) -> str:
    # a series joined with the clock: every run (1 s apart) gives `rows` new distinct rows
    return (f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) "
            "SELECT x AS n, (SELECT unix_time FROM time) AS t FROM c")


class DaemonProcess:
    """`python -m collector.cli run` on a temp config, state and log folder (as tests/daemon does)."""

    def __init__(self, work: Path, target: Target, rows: int) -> None:
        self.work = work
        self.db, self.log_dir, self.stderr = work / "db", work / "log", work / "daemon.stderr"
        conf = work / "quarry.conf"
        conf.write_text(json.dumps({
            "schedule": {target.query: {"query": stream_query(rows), "interval": 1, "run_at_start": True}},
            "shippers": {SHIPPER: target.shipper}}, indent=2))
        cmd = [sys.executable, "-m", "collector.cli", "run", f"--config_path={conf}", f"--database_path={self.db}",
               f"--logger_path={self.log_dir}", "--disable_watchdog", "--disable_events"]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=open(self.stderr, "wb"))

    @property
    def results_log(self) -> Path:
        return self.log_dir / "osqueryd.results.log"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kb(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None

    def spool_bytes(self) -> int:
        total = 0
        for dirpath, _, files in os.walk(self.db / "spool"):
            for f in files:
                try:
                    total += os.path.getsize(os.path.join(dirpath, f))
                except OSError:
                    pass
        return total

    def shipper_status(self) -> dict[str, Any] | None:
        """This shipper's metrics from `<database_path>/status.json`, when the daemon writes one."""
        try:
            data = json.loads((self.db / "status.json").read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        for holder in (data.get("shippers"), data):
            if isinstance(holder, dict) and isinstance(holder.get(SHIPPER), dict):
                return holder[SHIPPER]
        return None

    def stop(self, timeout: float = 60) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return -9

    def status_messages(self) -> list[str]:
        p = self.log_dir / "quarry.status.log"
        if not p.exists():
            return []
        return [json.loads(x)["message"] for x in p.read_text().splitlines() if x.strip()]


class Sampler:
    """Once a second: events produced (results log lines), received (target.count), RSS, spool bytes."""

    def __init__(self, daemon: DaemonProcess, target: Target) -> None:
        self.daemon, self.target = daemon, target
        self.produced = LineCounter(daemon.results_log)
        self.phase = "start"
        self.samples: list[dict[str, Any]] = []
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outage-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def sample(self) -> dict[str, Any]:
        s = {"t": round(time.monotonic() - self.t0, 3), "phase": self.phase, "produced": self.produced.count(),
             "received": self.target.count(), "rss_kb": self.daemon.rss_kb(),
             "spool_bytes": self.daemon.spool_bytes()}
        status = self.daemon.shipper_status()
        if status is not None:  # the daemon's own figures (written every few seconds)
            s["status"] = {k: status[k] for k in STATUS_KEYS if k in status}
        self.samples.append(s)
        return s

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample()
            except Exception as e:  # noqa: BLE001 - a failed sample must not end the timeline
                log.warning("timeline sample failed: %s", e)
            self._stop.wait(max(0.0, 1.0 - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def produced_before(self, seconds: float) -> int:
        """Events produced as of `seconds` ago (per the samples)."""
        cut = time.monotonic() - self.t0 - seconds
        older = [s["produced"] for s in list(self.samples) if s["t"] <= cut]
        return older[-1] if older else 0

    def last_received(self) -> int | None:
        for s in reversed(self.samples):
            if s["received"] is not None:
                return int(s["received"])
        return None


@dataclass
class Result:
    server: str
    outage_s: float
    produced: int  # events in the results log
    received: int  # events received (duplicates included)
    unique_received: int
    missing: list[Key]  # produced, never received
    unexpected: list[Key]  # received, never produced
    conflicting_ids: dict[str, list[str]]  # key -> ids, where one event arrived under several ids
    reused_ids: int  # ids that name more than one event
    produced_during_outage: int
    exit_code: int
    status_messages: list[str]
    deadletter_files: list[str]
    timeline: list[dict[str, Any]] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)  # phase -> start time (s from t0)

    @property
    def duplicates(self) -> int:
        return self.received - self.unique_received

    @property
    def resume_s(self) -> float | None:
        """Seconds from the server serving again to the first sample that saw more events arrive."""
        ready = self.phases.get("drain")
        if ready is None:
            return None
        seen = [s for s in self.timeline if s["received"] is not None]  # None: the server did not answer
        before = [s["received"] for s in seen if s["t"] <= ready]
        base = before[-1] if before else 0
        later = [s["t"] for s in seen if s["t"] > ready and s["received"] > base]
        return round(later[0] - ready, 3) if later else None

    def summary(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("timeline")
        d["missing"], d["unexpected"] = len(self.missing), len(self.unexpected)
        d["duplicates"] = self.duplicates
        d["resume_s"] = self.resume_s
        d["status_messages"] = len(self.status_messages)
        return d

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps({**self.summary(), "timeline": self.timeline}, indent=1))
        return path


def _wait(pred: Any, timeout: float, what: str, daemon: DaemonProcess) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if not daemon.alive():
            raise AssertionError(f"daemon exited while waiting for {what}:\n{daemon.stderr.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}:\n"
                                 f"{daemon.stderr.read_text()[-3000:]}")
        time.sleep(0.5)


def run_outage(servers: Any, target: Target, work: Path, outage_s: float, rows: int = 50,
               warmup_s: float = 8.0, drain_timeout_s: float = 180.0) -> Result:
    """Stream to `target`, stop its server for `outage_s`, start it again, drain, stop, compare."""
    work.mkdir(parents=True, exist_ok=True)
    daemon = DaemonProcess(work, target, rows)
    sampler = Sampler(daemon, target).start()
    phases: dict[str, float] = {"start": 0.0}

    def phase(name: str) -> None:
        sampler.phase = name
        phases[name] = round(time.monotonic() - sampler.t0, 3)

    exit_code = -1
    try:
        t_start = time.monotonic()
        _wait(lambda: (sampler.last_received() or 0) > 0 and time.monotonic() - t_start >= warmup_s,
              120, f"the first events at {target.server}", daemon)
        phase("outage")
        before = sampler.produced.count()
        with servers.outage(target.server):
            phase("down")  # stopped (the stop itself took outage → down)
            time.sleep(outage_s)
            during = sampler.produced.count() - before
            phase("restart")
        phase("drain")
        backlog = sampler.produced.count()
        # Drained: the server holds as many events as were produced up to the restart and up to a few seconds
        # ago (the stream goes on, and batching and indexing delay the newest ones); graceful stop sends the rest.
        _wait(lambda: (sampler.last_received() or 0) >= max(backlog, sampler.produced_before(CATCH_UP_LAG_S)),
              drain_timeout_s, f"{target.server} to receive the backlog", daemon)
        phase("stop")
        exit_code = daemon.stop()
        phase("stopped")
        time.sleep(1.5)  # one more sample after the last events
        lines = [json.loads(x) for x in daemon.results_log.read_text().splitlines() if x.strip()]
        produced = [line_key(x) for x in lines if x.get("name") == target.query]
        expected = set(produced)
        got = _read_until(target, expected, timeout=60)
    finally:
        if daemon.alive():
            daemon.stop()
        sampler.stop()
        target.close()
    ids: dict[Key, set[str]] = defaultdict(set)
    for k, i in got:
        ids[k].add(i)
    owners: dict[str, set[Key]] = defaultdict(set)
    for k, s in ids.items():
        for i in s:
            owners[i].add(k)
    dl = sorted(os.path.join(d, f) for d, _, files in os.walk(daemon.db) if os.path.basename(d) == "deadletter"
                for f in files)
    return Result(
        server=target.server, outage_s=outage_s, produced=len(produced), received=len(got),
        unique_received=len(ids), missing=sorted(expected - ids.keys()), unexpected=sorted(ids.keys() - expected),
        conflicting_ids={repr(k): sorted(v) for k, v in ids.items() if len(v) > 1},
        reused_ids=sum(1 for v in owners.values() if len(v) > 1), produced_during_outage=during,
        exit_code=exit_code, status_messages=daemon.status_messages(), deadletter_files=dl,
        timeline=sampler.samples, phases=phases)


def _read_until(target: Target, expected: set[Key], timeout: float) -> list[tuple[Key, str]]:
    """Read back until every expected event is there (servers index/flush asynchronously) or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        got = target.read()
        if expected <= {k for k, _ in got} or time.monotonic() > deadline:
            return got
        time.sleep(2)
