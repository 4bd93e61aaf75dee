"""Table latency: `SELECT * FROM processes` with 1,000 extra sleeping processes against a bare /proc reader
that reads the same files, as a ratio (target <= 1.3x), and `SELECT * FROM <t>` for every table.

    python -m bench.tables [--extra 1000] [--runs 7] [--tables-only | --processes-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from bench.common import measure
from collector.engine import Engine
from collector.registry import all_tables

# Tables that need a value for a required column get a representative one.
REQUIRED_INPUT = {
    "file": "SELECT * FROM file WHERE directory = '/etc'",
    "hash": "SELECT * FROM hash WHERE directory = '/usr/bin'",
    "magic": "SELECT * FROM magic WHERE path = '/bin/sh'",
    "curl": None,  # needs a URL to fetch: measured by its own tests against a local server
    "curl_certificate": None,
}


def bare_proc() -> list[tuple]:
    """What a minimal hand-written reader does: the same files the processes table reads, parsed once."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        base = "/proc/" + d
        try:
            with open(base + "/stat", "rb") as f:
                stat = f.read()
            with open(base + "/status", "rb") as f:
                status = f.read()
            with open(base + "/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        links = []
        for name in ("exe", "cwd", "root"):
            try:
                links.append(os.readlink(f"{base}/{name}"))
            except OSError:
                links.append(None)
        try:
            with open(base + "/io", "rb") as f:
                io = f.read()
        except OSError:
            io = b""
        try:
            with open(base + "/cgroup", "rb") as f:
                cgroup = f.read()
        except OSError:
            cgroup = b""
        fields = stat[stat.rfind(b")") + 2 :].split()
        kv = dict(line.split(b":", 1) for line in status.splitlines() if b":" in line)
        out.append((int(d), kv.get(b"Name"), cmdline.replace(b"\0", b" "), fields, links, io, cgroup))
    return out


def processes_ratio(extra: int, runs: int) -> None:
    sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(extra)]
    try:
        engine = Engine()
        n = len(engine.query("SELECT pid FROM processes").rows)
        ours = measure(lambda: engine.query("SELECT * FROM processes"), runs)
        base = measure(bare_proc, runs)
        print(f"processes ({n} processes, {extra} extra sleepers)")
        print(f"  SELECT * FROM processes : {ours.ms()}")
        print(f"  bare /proc reader       : {base.ms()}")
        print(f"  ratio                   : {ours.median / base.median:.2f}x (target <= 1.30x)")
    finally:
        for p in sleepers:
            p.kill()
        for p in sleepers:
            p.wait()


def every_table(runs: int) -> None:
    engine = Engine()
    print(f"{'table':<28} {'rows':>7}  time")
    for name in all_tables():
        sql = REQUIRED_INPUT.get(name, f"SELECT * FROM {name}")
        if sql is None:
            print(f"{name:<28} {'-':>7}  (needs a destination; see its tests)")
            continue
        try:
            rows = len(engine.query(sql).rows)
            t = measure(lambda: engine.query(sql), runs, warmup=0)
            print(f"{name:<28} {rows:>7}  {t.ms()}")
        except Exception as e:  # noqa: BLE001 - a benchmark reports and goes on
            print(f"{name:<28} {'error':>7}  {e}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--extra", type=int, default=1000)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--tables-only", action="store_true")
    p.add_argument("--processes-only", action="store_true")
    args = p.parse_args(argv)
    if not args.tables_only:
        processes_ratio(args.extra, args.runs)
    if not args.processes_only:
        every_table(max(3, args.runs // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
