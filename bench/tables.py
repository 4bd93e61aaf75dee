"""Table latency: `SELECT * FROM processes` with 1,000 extra sleeping processes against a bare /proc reader
that reads the same files, as a ratio (target <= 1.3x), and `SELECT * FROM <t>` for every table.

    python -m bench.tables [--extra 1000] [--runs 7] [--tables-only | --processes-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Any

from bench.common import Timing, figure, measure
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


def processes_ratio(extra: int, runs: int) -> dict[str, Any]:
    """SELECT * FROM processes against bare_proc() with `extra` sleeping processes; times in seconds."""
    sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(extra)]
    try:
        engine = Engine()
        n = len(engine.query("SELECT pid FROM processes").rows)
        ours = measure(lambda: engine.query("SELECT * FROM processes"), runs)
        base = measure(bare_proc, runs)
    finally:
        for p in sleepers:
            p.kill()
        for p in sleepers:
            p.wait()
    return {"processes": n, "extra": extra, "ours": ours.samples, "bare": base.samples,
            "ratio": ours.median / base.median}


def every_table(runs: int) -> list[dict[str, Any]]:
    """One entry per table: rows and `runs` timings in seconds, or why it was not measured."""
    engine = Engine()
    out: list[dict[str, Any]] = []
    for name in all_tables():
        sql = REQUIRED_INPUT.get(name, f"SELECT * FROM {name}")
        if sql is None:
            out.append({"table": name, "skipped": "needs a destination; see its tests"})
            continue
        try:
            rows = len(engine.query(sql).rows)
            t = measure(lambda: engine.query(sql), runs, warmup=0)
            out.append({"table": name, "sql": sql, "rows": rows, "samples": t.samples})
        except Exception as e:  # noqa: BLE001 - a benchmark reports and goes on
            out.append({"table": name, "error": str(e)})
    return out


def processes_section(extra: int, runs: int) -> dict[str, Any]:
    r = processes_ratio(extra, runs)
    ms = lambda xs: [x * 1000 for x in xs]  # noqa: E731
    return {"title": "processes vs a bare /proc reader",
            "intro": f"`SELECT * FROM processes` with {extra:,} extra sleeping processes ({r['processes']:,} in "
                     "total) against a minimal reader of the same /proc files; target <= 1.30x.",
            "figures": [figure("SELECT * FROM processes", ms(r["ours"]), "ms", better="lower",
                               baseline="bare /proc reader"),
                        figure("bare /proc reader", ms(r["bare"]), "ms", better="lower")]}


def tables_section(runs: int) -> dict[str, Any]:
    figs, notes = [], []
    for t in every_table(runs):
        if "samples" in t:
            figs.append(figure(t["table"], [x * 1000 for x in t["samples"]], "ms", better="lower",
                               note=f"{t['rows']:,} row{'s' if t['rows'] != 1 else ''}"))
        else:
            notes.append(f"`{t['table']}`: {t.get('skipped') or 'error: ' + t['error']}")
    return {"title": "per-table latency", "intro": "`SELECT * FROM <table>` on this host (tables that need a "
            "value for a required column get a representative one), after one untimed query.",
            "figures": figs, "notes": notes, "chart": False}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--extra", type=int, default=1000)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--tables-only", action="store_true")
    p.add_argument("--processes-only", action="store_true")
    args = p.parse_args(argv)
    if not args.tables_only:
        r = processes_ratio(args.extra, args.runs)
        ours, base = Timing.of(r["ours"]), Timing.of(r["bare"])
        print(f"processes ({r['processes']} processes, {args.extra} extra sleepers)")
        print(f"  SELECT * FROM processes : {ours.ms()}")
        print(f"  bare /proc reader       : {base.ms()}")
        print(f"  ratio                   : {r['ratio']:.2f}x (target <= 1.30x)")
    if not args.processes_only:
        print(f"{'table':<28} {'rows':>7}  time")
        for t in every_table(max(3, args.runs // 2)):
            if "samples" in t:
                print(f"{t['table']:<28} {t['rows']:>7}  {Timing.of(t['samples']).ms()}")
            elif "skipped" in t:
                print(f"{t['table']:<28} {'-':>7}  ({t['skipped']})")
            else:
                print(f"{t['table']:<28} {'error':>7}  {t['error']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
