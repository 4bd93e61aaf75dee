"""SIGKILL mid-stream and restart: nothing accepted is lost; duplicates only past the saved cursor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def lines(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def test_sigkill_mid_stream_then_restart_loses_nothing(tmp_path):
    state, out = tmp_path / "state", tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-m", "tests.pipeline.killchild", "produce", str(state), str(out),
                              "50000"], cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 60
        while len(lines(out / "delivered.log")) < 3000 or len(lines(out / "submitted.log")) < 200:
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    accepted = max(lines(out / "submitted.log")) + 1  # every id below this was accepted by submit
    first_run = lines(out / "delivered.log")
    assert len(first_run) < accepted, "the kill came while a backlog was waiting"
    subprocess.run([sys.executable, "-m", "tests.pipeline.killchild", "drain", str(state), str(out)], cwd=REPO,
                   env=env, check=True, timeout=120)
    everything = lines(out / "delivered.log")
    second_run = everything[len(first_run):]
    assert set(range(accepted)) <= set(everything)  # 0 lost
    resumed_at = min(second_run)
    assert set(range(resumed_at)) <= set(first_run)  # the restart resumed at the cursor...
    assert sorted(set(second_run)) == list(range(resumed_at, max(second_run) + 1))  # ...and sent all after it
    dups = set(first_run) & set(second_run)
    assert all(d >= resumed_at for d in dups)  # duplicates only in the window past the saved cursor
    assert len(second_run) == len(set(second_run))
