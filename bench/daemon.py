"""Daemon cost: every Linux-applicable query of osquery's packs at 10x its frequency, RSS and CPU sampled
from /proc, against osquery's watchdog limits (normal 200 MB / 10 %, restrictive 100 MB / 5 %).

    python -m bench.daemon [--seconds 300] [--speedup 10] [--runs 1] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import figure

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SHARED = Path(__file__).resolve().parents[2] / "shared"


def sample(pid: int) -> tuple[float, int]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    with open(f"/proc/{pid}/statm", "rb") as f:
        rss = int(f.read().split()[1]) * PAGE
    return cpu, rss


def packs(shared: Path) -> list[Path]:
    found = sorted(Path(shared, "osquery", "packs").glob("*.conf"))
    if not found:
        raise FileNotFoundError(f"no packs under {shared}/osquery/packs")
    return found


def once(seconds: float, speedup: int, pack_files: list[Path], keep: bool = False) -> dict[str, Any]:
    """One daemon run on the packs: CPU % of all cores over the steady part, RSS samples every 3 s (MB)."""
    tmp = Path(tempfile.mkdtemp(prefix="quarry-bench-"))
    (tmp / "packs").mkdir()
    for pack in pack_files:
        # intervals are numbers or numeric strings in osquery's packs; divide them by the speed-up
        text = re.sub(r'("interval"\s*:\s*)"?(\d+)"?',
                      lambda m: f'{m.group(1)}{max(1, int(m.group(2)) // speedup)}', pack.read_text())
        (tmp / "packs" / pack.name).write_text(text)
    conf = tmp / "quarry.conf"
    conf.write_text(json.dumps({"packs": {"*": str(tmp / "packs" / "*.conf")}}))
    cmd = [sys.executable, "-m", "collector.cli", "run", f"--config_path={conf}", f"--database_path={tmp}/db",
           f"--logger_path={tmp}/log", "--disable_watchdog"]
    with open(tmp / "stderr", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
    rss: list[int] = []
    try:
        time.sleep(5)  # start-up (imports, config, host facts) is not steady state
        cpu0, _ = sample(proc.pid)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds and proc.poll() is None:
            time.sleep(min(3.0, max(0.1, seconds - (time.monotonic() - t0))))  # osquery's watchdog interval
            rss.append(sample(proc.pid)[1])
        cpu1, _ = sample(proc.pid)
        wall = time.monotonic() - t0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    cores = os.cpu_count() or 1
    results = tmp / "log" / "osqueryd.results.log"
    lines = sum(1 for _ in open(results, "rb")) if results.exists() else 0
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"wall": wall, "cores": cores, "cpu_pct": 100 * (cpu1 - cpu0) / wall / cores,
            "rss_mb": [r / 2**20 for r in rss], "lines": lines, "dir": str(tmp) if keep else None}


def run(seconds: float, speedup: int = 10, runs: int = 3, shared: Path = SHARED) -> dict[str, Any]:
    found = packs(shared)
    got = [once(seconds, speedup, found) for _ in range(runs)]
    return {"title": "daemon CPU and RSS on osquery's packs",
            "intro": f"`quarry run` on the {len(found)} packs of osquery ({', '.join(p.stem for p in found)}) with "
                     f"every interval divided by {speedup}, {seconds:.0f} s per run after 5 s of start-up; RSS "
                     f"sampled every 3 s. osquery's watchdog limits: normal 200 MB / 10 % CPU, restrictive "
                     f"100 MB / 5 %.",
            "figures": [figure("CPU (% of all cores, average)", [g["cpu_pct"] for g in got], "%", better="lower"),
                        figure("RSS (median of the run's samples)", [statistics.median(g["rss_mb"]) for g in got],
                               "MB", better="lower"),
                        figure("RSS (max of the run's samples)", [max(g["rss_mb"]) for g in got], "MB",
                               better="lower"),
                        figure("results lines written per minute", [g["lines"] * 60 / g["wall"] for g in got],
                               "lines/min")],
            "chart": False}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=300)
    p.add_argument("--speedup", type=int, default=10)
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--shared", default=str(SHARED))
    args = p.parse_args(argv)
    try:
        found = packs(Path(args.shared))
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 1
    for _ in range(args.runs):
        r = once(args.seconds, args.speedup, found, keep=True)
        mb = r["rss_mb"]
        print(f"daemon on osquery's packs at {args.speedup}x frequency for {r['wall']:.0f} s ({len(mb)} samples)")
        print(f"  RSS  median {statistics.median(mb):.1f} MB (min {min(mb):.1f}, max {max(mb):.1f})"
              f"  limits: normal 200 MB, restrictive 100 MB")
        print(f"  CPU  {r['cpu_pct']:.2f} % of {r['cores']} cores on average  limits: normal 10 %, restrictive 5 %")
        print(f"  results lines written: {r['lines']}; logs in {r['dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
