"""`quarry run` end to end: a real daemon process on a temp config, state and log folder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def write_config(path: Path, schedule: dict, **extra) -> None:
    path.write_text(json.dumps({"schedule": schedule, **extra}, indent=2))


class Daemon:
    def __init__(self, tmp: Path, config: Path, *flags: str) -> None:
        self.log = tmp / "log"
        self.stderr = tmp / "daemon.stderr"
        cmd = [sys.executable, "-m", "collector.cli", "run", f"--config_path={config}",
               f"--database_path={tmp / 'db'}", f"--logger_path={self.log}", "--disable_watchdog",
               "--disable_events", *flags]
        self.proc = subprocess.Popen(cmd, stderr=open(self.stderr, "wb"), stdout=subprocess.DEVNULL)

    def lines(self) -> list[dict]:
        p = self.log / "osqueryd.results.log"
        return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []

    def wait_for(self, predicate, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [x for x in self.lines() if predicate(x)]
            if found:
                return found
            assert self.proc.poll() is None, self.stderr.read_text()
            time.sleep(0.2)
        raise AssertionError(f"not found within {timeout}s; stderr:\n{self.stderr.read_text()[-3000:]}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def sleeper():
    p = subprocess.Popen(["sleep", "300"])
    yield p
    p.kill()
    p.wait()


def test_process_started_between_runs_is_added_then_removed_across_restart(tmp_path, sleeper):
    conf = tmp_path / "quarry.conf"
    write_config(conf, {"sleepers": {"query": f"SELECT pid, name FROM processes WHERE pid = {sleeper.pid}",
                                     "interval": 2, "run_at_start": True}})
    d = Daemon(tmp_path, conf)
    added = d.wait_for(lambda x: x["name"] == "sleepers" and x["action"] == "added")
    assert added[0]["columns"] == {"pid": str(sleeper.pid), "name": "sleep"} and added[0]["counter"] == 0
    assert d.stop() == 0
    sleeper.kill()
    sleeper.wait()
    d2 = Daemon(tmp_path, conf)
    removed = d2.wait_for(lambda x: x["action"] == "removed")
    assert removed[0]["columns"]["pid"] == str(sleeper.pid) and removed[0]["counter"] == 1
    time.sleep(3)  # further runs find nothing new: no second "added" flood after the restart
    assert len([x for x in d2.lines() if x["action"] == "added"]) == 1
    assert d2.stop() == 0


def test_bad_query_is_reported_and_the_others_run(tmp_path):
    conf = tmp_path / "quarry.conf"
    write_config(conf, {"broken": {"query": "SELECT * FROM no_such_table", "interval": 2},
                        "good": {"query": "SELECT 1 AS one", "interval": 2, "run_at_start": True}})
    d = Daemon(tmp_path, conf)
    d.wait_for(lambda x: x["name"] == "good")
    err = d.stderr.read_text()
    assert f"{conf}:" in err and "no such table: no_such_table" in err
    assert d.stop() == 0


def test_hot_reload_valid_then_invalid(tmp_path):
    conf = tmp_path / "quarry.conf"
    write_config(conf, {"first": {"query": "SELECT 1 AS n", "interval": 2, "run_at_start": True}})
    d = Daemon(tmp_path, conf)
    d.wait_for(lambda x: x["name"] == "first")
    write_config(conf, {"first": {"query": "SELECT 1 AS n", "interval": 2},
                        "second": {"query": "SELECT 2 AS n", "interval": 2, "run_at_start": True}})
    d.wait_for(lambda x: x["name"] == "second", timeout=20)
    conf.write_text('{"schedule": {"first": {"query": "SELECT 1", ')  # broken JSON
    deadline = time.monotonic() + 15
    while "rejected" not in d.stderr.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    err = d.stderr.read_text()
    assert "rejected; keeping the running config" in err and f"{conf}:1:" in err
    assert d.proc.poll() is None
    assert d.stop() == 0


def test_missing_config_fails_with_the_path(tmp_path):
    p = subprocess.run([sys.executable, "-m", "collector.cli", "run", f"--config_path={tmp_path}/nope.conf",
                        f"--database_path={tmp_path}/db", f"--logger_path={tmp_path}/log"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and f"{tmp_path}/nope.conf" in p.stderr and "does not exist" in p.stderr


def test_check_config_cli(tmp_path):
    conf = tmp_path / "quarry.conf"
    conf.write_text('{\n  "schedule": {\n    "q": {"query": "SELECT * FROM nope", "interval": 10}\n  }\n}\n')
    p = subprocess.run([sys.executable, "-m", "collector.cli", "check-config", f"--config_path={conf}"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and f"{conf}:3:" in p.stdout and "no such table: nope" in p.stdout
    ok = Path(__file__).resolve().parents[2] / "config" / "quarry.conf"
    p = subprocess.run([sys.executable, "-m", "collector.cli", "check-config", f"--config_path={ok}"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


def test_unrelated_files_in_a_watched_folder_do_not_reload(tmp_path):
    packs = tmp_path / "packs"
    packs.mkdir()
    (packs / "p.conf").write_text(json.dumps({"queries": {"one": {"query": "SELECT 1 AS n", "interval": 2,
                                                                   "run_at_start": True}}}))
    conf = tmp_path / "quarry.conf"
    conf.write_text(json.dumps({"packs": {"*": str(packs / "*.conf")}}))
    d = Daemon(tmp_path, conf)
    d.wait_for(lambda x: x["name"] == "pack_p_one")
    for i in range(5):
        (packs / "notes.txt").write_text(f"edit {i}")
        time.sleep(0.5)
    time.sleep(2)
    assert "config reloaded" not in d.stderr.read_text()
    (packs / "q.conf").write_text(json.dumps({"queries": {"two": {"query": "SELECT 2 AS n", "interval": 2,
                                                                   "run_at_start": True}}}))
    d.wait_for(lambda x: x["name"] == "pack_q_two", timeout=20)
    assert d.stderr.read_text().count("quarry.daemon: config reloaded") == 1
    assert d.stop() == 0


def test_check_config_validates_shippers(tmp_path):
    conf = tmp_path / "quarry.conf"
    conf.write_text('{\n  "schedule": {},\n  "shippers": {\n    "k": {"type": "kafka", "acks": "sometimes",'
                    ' "brokers": ["127.0.0.1:9"], "topic": "t"},\n    "x": {"type": "carrier_pigeon"}\n  }\n}\n')
    p = subprocess.run([sys.executable, "-m", "collector.cli", "check-config", f"--config_path={conf}"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert f"{conf}:4:" in p.stdout and "shippers.k" in p.stdout and "acks" in p.stdout
    assert f"{conf}:5:" in p.stdout and "shippers.x.type" in p.stdout


def test_route_and_skip_empty(tmp_path):
    conf = tmp_path / "quarry.conf"
    out = tmp_path / "ship"
    write_config(conf, {
        "routed": {"query": "SELECT 1 AS n", "interval": 3600, "run_at_start": True, "route": {"file": "own.log"}},
        "plain": {"query": "SELECT 2 AS n", "interval": 3600, "run_at_start": True},
        "empty_skipped": {"query": "SELECT 1 AS n WHERE 0", "interval": 2, "snapshot": True,
                          "run_at_start": True, "skip_empty": True},
        "empty_logged": {"query": "SELECT 1 AS n WHERE 0", "interval": 2, "snapshot": True, "run_at_start": True},
    }, shippers={"local": {"type": "file", "dir": str(out)}})
    d = Daemon(tmp_path, conf)
    d.wait_for(lambda x: x["name"] == "plain")
    deadline = time.monotonic() + 20
    while not (out / "own.log").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    assert d.stop() == 0
    own = [json.loads(x)["name"] for x in (out / "own.log").read_text().splitlines()]
    results = [json.loads(x)["name"] for x in (out / "osqueryd.results.log").read_text().splitlines()]
    assert own == ["routed"] and results == ["plain"]
    snaps = [json.loads(x) for x in (tmp_path / "log" / "osqueryd.snapshots.log").read_text().splitlines()]
    assert {s["name"] for s in snaps} == {"empty_logged"} and all(s["snapshot"] == [] for s in snaps)
    shipped = (out / "osqueryd.snapshots.log")
    assert "empty_skipped" not in (shipped.read_text() if shipped.exists() else "")


def test_bad_route_drops_the_query_with_its_place(tmp_path):
    conf = tmp_path / "quarry.conf"
    conf.write_text('{"schedule": {\n "q": {"query": "SELECT 1", "interval": 10, "route": {"topik": "x"}}\n}}\n')
    p = subprocess.run([sys.executable, "-m", "collector.cli", "check-config", f"--config_path={conf}"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and f"{conf}:2:" in p.stdout and "route" in p.stdout
