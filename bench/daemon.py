"""Daemon cost: every Linux-applicable query of osquery's packs at 10x its frequency, RSS and CPU sampled
from /proc, against osquery's watchdog limits (normal 200 MB / 10 %, restrictive 100 MB / 5 %).

    python -m bench.daemon [--seconds 300] [--speedup 10] [--shared ../shared]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def sample(pid: int) -> tuple[float, int]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICK
    with open(f"/proc/{pid}/statm", "rb") as f:
        rss = int(f.read().split()[1]) * PAGE
    return cpu, rss


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=300)
    p.add_argument("--speedup", type=int, default=10)
    p.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    args = p.parse_args(argv)
    packs = sorted(Path(args.shared, "osquery", "packs").glob("*.conf"))
    if not packs:
        print(f"no packs under {args.shared}/osquery/packs", file=sys.stderr)
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="quarry-bench-"))
    for pack in packs:
        text = pack.read_text()
        # intervals are numbers or numeric strings in osquery's packs; divide them by the speed-up
        import re

        text = re.sub(r'("interval"\s*:\s*)"?(\d+)"?',
                      lambda m: f'{m.group(1)}{max(1, int(m.group(2)) // args.speedup)}', text)
        (tmp / pack.name).write_text(text)
    conf = tmp.parent / (tmp.name + ".conf")
    conf.write_text(json.dumps({"packs": {"*": str(tmp / "*.conf")}}))
    cmd = [sys.executable, "-m", "collector.cli", "run", f"--config_path={conf}", f"--database_path={tmp}/db",
           f"--logger_path={tmp}/log", "--disable_watchdog"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp / "stderr", "wb"))
    time.sleep(5)  # start-up (imports, config, host facts) is not steady state
    cpu0, _ = sample(proc.pid)
    t0 = time.monotonic()
    rss: list[int] = []
    try:
        while time.monotonic() - t0 < args.seconds and proc.poll() is None:
            time.sleep(3)  # osquery's watchdog interval
            rss.append(sample(proc.pid)[1])
        cpu1, _ = sample(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    wall = time.monotonic() - t0
    cores = os.cpu_count() or 1
    util = 100 * (cpu1 - cpu0) / wall / cores
    lines = sum(1 for _ in open(tmp / "log" / "osqueryd.results.log", "rb"))
    mb = [r / 2**20 for r in rss]
    print(f"daemon on osquery's packs at {args.speedup}x frequency for {wall:.0f} s ({len(rss)} samples)")
    print(f"  RSS  median {statistics.median(mb):.1f} MB (min {min(mb):.1f}, max {max(mb):.1f})"
          f"  limits: normal 200 MB, restrictive 100 MB")
    print(f"  CPU  {util:.2f} % of {cores} cores on average  limits: normal 10 %, restrictive 5 %")
    print(f"  results lines written: {lines}; logs in {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
