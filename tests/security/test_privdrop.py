"""--run_as_user: the daemon opens its state and logs as root, then runs as the target user and keeps working."""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from collector import privdrop
from collector.errors import ConfigError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
USER = "quarry-test" if any(p.pw_name == "quarry-test" for p in pwd.getpwall()) else "nobody"


@pytest.fixture
def root_sleeper():
    """A process of root's: its /proc/<pid>/fd is closed to other users unless they have CAP_SYS_PTRACE."""
    p = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    yield p.pid
    p.kill()
    p.wait()


@pytest.fixture
def base():
    # Not under pytest's tmp_path: its parents are 0700 root, the dropped user could not reach its own files.
    path = Path(tempfile.mkdtemp(prefix="quarry-privdrop-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


def start(base: Path, *flags: str, fds_of: int = 1) -> subprocess.Popen:
    conf = base / "quarry.conf"
    conf.write_text(json.dumps({"schedule": {
        "tick": {"query": "SELECT 1 AS one", "interval": 1, "snapshot": True, "run_at_start": True},
        "fds": {"query": f"SELECT count(*) AS n FROM process_open_files WHERE pid = {fds_of}", "interval": 1,
                "snapshot": True, "run_at_start": True}}}))
    cmd = [sys.executable, "-m", "collector.cli", "run", f"--config_path={conf}", f"--database_path={base / 'db'}",
           f"--logger_path={base / 'log'}", "--disable_watchdog", "--disable_events", *flags]
    with open(base / "stderr", "wb") as err:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(cmd, stderr=err, stdout=subprocess.DEVNULL)


def snapshots(base: Path, name: str) -> list[dict]:
    p = base / "log" / "osqueryd.snapshots.log"
    lines = [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []
    return [x for x in lines if x["name"] == name]


def wait(proc: subprocess.Popen, base: Path, predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.poll() is None, (base / "stderr").read_text()
        time.sleep(0.2)
    raise AssertionError((base / "stderr").read_text()[-3000:])


def ids(pid: int) -> dict[str, list[int]]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: [int(x) for x in v.split()] for k, _, v in (line.partition(":") for line in status)
            if k in ("Uid", "Gid", "Groups")} | {
        "CapEff": [privdrop.effective_capabilities(pid)]}


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def test_the_daemon_runs_as_the_user_and_keeps_writing(base, root_sleeper):
    pw = pwd.getpwnam(USER)
    proc = start(base, f"--run_as_user={USER}", fds_of=root_sleeper)
    try:
        wait(proc, base, lambda: len(snapshots(base, "tick")) >= 3)
        seen = ids(proc.pid)
        assert seen["Uid"] == [pw.pw_uid] * 4 and seen["Gid"] == [pw.pw_gid] * 4, seen
        assert seen["CapEff"] == [0]
        # Files made as root before the drop were handed over, and the daemon still appends to them.
        for path in [base / "db", *(base / "db").rglob("*"), base / "log", *(base / "log").glob("*")]:
            st = path.stat()
            assert (st.st_uid, st.st_gid) == (pw.pw_uid, pw.pw_gid), path
        size = (base / "log" / "osqueryd.snapshots.log").stat().st_size
        wait(proc, base, lambda: (base / "log" / "osqueryd.snapshots.log").stat().st_size > size)
        # Without CAP_SYS_PTRACE the user cannot list the open files of root's process.
        assert snapshots(base, "fds")[-1]["snapshot"] == [{"n": "0"}]
    finally:
        assert stop(proc) == 0
    err = (base / "stderr").read_text()
    assert f"running as {USER} (uid {pw.pw_uid}, gid {pw.pw_gid})" in err
    # The state database was closed cleanly by the unprivileged process.
    assert "Traceback" not in err


def test_kept_capabilities_are_effective(base, root_sleeper):
    proc = start(base, f"--run_as_user={USER}", "--run_as_capabilities=sys_ptrace,cap_dac_read_search",
                 fds_of=root_sleeper)
    try:
        wait(proc, base, lambda: len(snapshots(base, "fds")) >= 2)
        seen = ids(proc.pid)
        assert seen["Uid"][0] == pwd.getpwnam(USER).pw_uid
        assert seen["CapEff"] == [(1 << 19) | (1 << 2)], hex(seen["CapEff"][0])
        assert snapshots(base, "fds")[-1]["snapshot"] == [{"n": "3"}]  # sleep's stdin, stdout, stderr
    finally:
        assert stop(proc) == 0
    assert "keeping dac_read_search, sys_ptrace" in (base / "stderr").read_text()


def test_unknown_user_stops_the_start(base):
    proc = start(base, "--run_as_user=no-such-user-q")
    assert proc.wait(timeout=60) == 1
    assert "cannot run as no-such-user-q: run_as_user: no such user 'no-such-user-q'" in (base / "stderr").read_text()


def test_resolve():
    t = privdrop.resolve(f"{USER}:root", "SYS_PTRACE, net_admin")
    assert (t.user, t.gid, t.keep) == (USER, 0, frozenset({"sys_ptrace", "net_admin"}))
    assert privdrop.resolve(str(pwd.getpwnam(USER).pw_uid)).user == USER
    with pytest.raises(ConfigError, match="no such group 'nogroup-q'"):
        privdrop.resolve(f"{USER}:nogroup-q")
    with pytest.raises(ConfigError, match="unknown capabilities sys_magic"):
        privdrop.resolve(USER, "sys_magic")


def _free_low_port() -> int:
    import socket

    for port in range(980, 700, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip("no free port below 1024 on 127.0.0.1")


def test_metrics_port_below_1024_is_opened_before_the_drop(base):
    import urllib.request

    port = _free_low_port()
    proc = start(base, f"--run_as_user={USER}", f"--metrics_port={port}")
    try:
        wait(proc, base, lambda: len(snapshots(base, "tick")) >= 1)
        assert ids(proc.pid)["Uid"][0] == pwd.getpwnam(USER).pw_uid

        def answers() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    return r.status == 200 and b"quarry_" in r.read()
            except OSError:
                return False

        wait(proc, base, answers)
    finally:
        assert stop(proc) == 0
    assert "cannot listen" not in (base / "stderr").read_text()
