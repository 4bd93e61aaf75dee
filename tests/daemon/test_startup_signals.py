"""Signals while `quarry run` starts (config load, setup(), before the loop's signal handlers exist).

SIGTERM/SIGINT: the daemon stops cleanly, exit 0, "quarry stopped" logged, status.json "stopped", and the
state opens again. SIGHUP: the daemon keeps starting and reloads once it runs."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

from tests.daemon.test_daemon import Daemon, write_config

# After the state folder appears, setup() runs for a few hundred ms more (engine, validation, host facts,
# shippers, status) before the event loop installs its handlers: these delays land before, around and after.
AFTER_STATE_S = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.8)
# From spawn: a signal that comes while Python is still importing the CLI kills it by the default action
# (nothing is open yet); from `quarry run`'s cmd_run on (before the daemon module is imported) it is
# recorded and honoured.
AFTER_SPAWN_S = (0.0, 0.2, 0.4, 0.7)


def config(tmp: Path) -> Path:
    conf = tmp / "quarry.conf"
    write_config(conf, {"one": {"query": "SELECT 1 AS n", "interval": 1, "run_at_start": True}},
                 shippers={"local": {"type": "file", "dir": str(tmp / "ship")}})
    return conf


def wait_for_state(d: Daemon, db: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not db.exists():
        assert d.proc.poll() is None and time.monotonic() < deadline, d.stderr.read_text()
        time.sleep(0.002)


def stop_with(d: Daemon, sig: signal.Signals, after: float) -> tuple[int, str]:
    time.sleep(after)
    d.proc.send_signal(sig)
    return d.proc.wait(timeout=60), d.stderr.read_text()


def assert_clean_stop(tmp: Path, code: int, err: str, what: str) -> None:
    assert code == 0, f"{what}: exit {code}\n{err[-3000:]}"
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, f"{what}:\n{err[-3000:]}"
    assert "quarry stopped" in err, f"{what}:\n{err[-3000:]}"
    status = json.loads((tmp / "db" / "status.json").read_text())
    assert status["state"] == "stopped", f"{what}: {status['state']}"


def test_sigterm_during_start_up_stops_cleanly(tmp_path):
    early = 0
    for i, after in enumerate(AFTER_STATE_S):
        tmp = tmp_path / f"run{i}"
        tmp.mkdir()
        d = Daemon(tmp, config(tmp))
        wait_for_state(d, tmp / "db")
        code, err = stop_with(d, signal.SIGTERM, after)
        assert_clean_stop(tmp, code, err, f"SIGTERM {after}s after the state appeared")
        early += "SIGTERM received during start-up" in err
    assert early, "no signal landed in setup(): the delays no longer cover the start-up"


def test_sigterm_right_after_spawn_is_never_half_done(tmp_path):
    for i, after in enumerate(AFTER_SPAWN_S):
        tmp = tmp_path / f"run{i}"
        tmp.mkdir()
        d = Daemon(tmp, config(tmp))
        code, err = stop_with(d, signal.SIGTERM, after)
        if code == -signal.SIGTERM:  # still importing: nothing was opened or created
            assert not (tmp / "db").exists() and not (tmp / "log").exists(), f"{after}s: killed half-way\n{err}"
        else:
            assert_clean_stop(tmp, code, err, f"SIGTERM {after}s after spawn")


def test_sigint_during_start_up_then_the_state_opens_again(tmp_path):
    conf = config(tmp_path)
    d = Daemon(tmp_path, conf)
    wait_for_state(d, tmp_path / "db")
    code, err = stop_with(d, signal.SIGINT, 0.0)
    assert_clean_stop(tmp_path, code, err, "SIGINT in setup()")
    again = Daemon(tmp_path, conf)
    try:
        again.wait_for(lambda x: x["name"] == "one")
    finally:
        assert again.stop() == 0
    assert "Traceback" not in again.stderr.read_text()


def test_sighup_during_start_up_reloads_once_running(tmp_path):
    d = Daemon(tmp_path, config(tmp_path))
    try:
        wait_for_state(d, tmp_path / "db")
        d.proc.send_signal(signal.SIGHUP)  # by default it would end the process half-way through setup()
        d.wait_for(lambda x: x["name"] == "one")
        deadline = time.monotonic() + 30
        while "config reloaded (SIGHUP)" not in d.stderr.read_text():
            assert time.monotonic() < deadline, d.stderr.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        assert d.stop() == 0
    assert "Traceback" not in d.stderr.read_text()
