"""Every benchmark of the project, then BENCHMARKS.md (figures JSON and PNG charts under bench/results/).

    python -m bench [--runs 3] [--quick] [--only kafka,hec] [--out BENCHMARKS.md] [--results bench/results]
                    [--daemon-seconds 60] [--outage-seconds 30] [--scale 1.0] [--merge] [--list]

Real servers (Kafka, Elasticsearch, OpenSearch, the HEC receiver, the lumberjack peer) are started through
tests/servers' ServerManager for the sections that need them, one section at a time (so one server's JVM does
not eat the CPU another section measures), and stopped afterwards. A section that fails is reported as not
measured, with the reason, and the others go on; the exit status is 1 if any failed.
`--quick` is a smoke test: fewer runs and events, short durations; its figures are not representative.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import report

log = logging.getLogger("quarry.bench")
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Config:
    runs: int
    quick: bool
    results: Path
    daemon_seconds: float
    outage_seconds: float
    scale: float = 1.0

    def events(self, full: int, quick: int) -> int:
        return quick if self.quick else max(1000, int(full * self.scale))


@contextlib.contextmanager
def servers(keep_logs: list[str]) -> Iterator[Callable[[str], Any]]:
    """A getter for tests/servers' servers (started lazily), all stopped on exit; the run folder is removed
    unless a start failed (its path is then added to `keep_logs`)."""
    import pytest

    from tests.servers.plugin import ServerManager

    run_dir = Path(tempfile.mkdtemp(prefix="quarry-bench-servers-"))
    run_dir.chmod(0o755)  # Elasticsearch/OpenSearch run as another user and must reach their folders
    mgr = ServerManager(run_dir)

    def get(name: str) -> Any:
        t = time.monotonic()
        try:
            srv = mgr.get(name)
        except (pytest.skip.Exception, pytest.fail.Exception) as e:  # the plugin speaks pytest outcomes
            raise RuntimeError(str(e)) from None
        log.info("%s server up in %.0f s", name, time.monotonic() - t)
        return srv

    try:
        yield get
    finally:
        mgr.stop_all()
        if mgr.start_failed:
            keep_logs.append(str(run_dir))
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


def rsyslog_or_note(fn: Callable[[], dict[str, Any]], notes: list[str]) -> list[dict[str, Any]]:
    """The rsyslog baseline figure, or a note saying why it is missing (the shipper figures still count)."""
    try:
        return [fn()]
    except Exception as e:  # noqa: BLE001 - a missing peer must not hide the shipper's own figures
        notes.append(f"rsyslog baseline not measured: {e}")
        return []


# -- one function per section: (config, folders to keep) -> section dict


def s_processes(c: Config, keep: list[str]) -> dict[str, Any]:
    from bench import tables

    return tables.processes_section(c.events(1000, 100), max(c.runs, 7) if not c.quick else c.runs)


def s_tables(c: Config, keep: list[str]) -> dict[str, Any]:
    from bench import tables

    return tables.tables_section(c.runs)


def s_daemon(c: Config, keep: list[str]) -> dict[str, Any]:
    from bench import daemon

    return daemon.run(c.daemon_seconds, runs=c.runs)


def s_pipeline(c: Config, keep: list[str]) -> dict[str, Any]:
    from bench import pipeline

    return pipeline.run(c.events(1_000_000, 50_000), runs=c.runs)


def s_file(c: Config, keep: list[str]) -> dict[str, Any]:
    from bench import file_shipper

    return file_shipper.run(c.events(300_000, 20_000), rounds=c.runs)


def s_kafka(c: Config, keep: list[str]) -> dict[str, Any]:
    from bench import kafka, rsyslog

    n, notes = c.events(200_000, 10_000), []
    with servers(keep) as get:
        brokers = get("kafka").bootstrap_servers
        extra = rsyslog_or_note(lambda: rsyslog.kafka_figure(brokers, n, c.runs), notes)
        s = kafka.run(brokers, n, rounds=c.runs, extra=extra)
    s["notes"] = notes + s.get("notes", [])
    return s


def s_hec(c: Config, keep: list[str]) -> dict[str, Any]:
    from bench import hec

    with servers(keep) as get:
        srv = get("hec")
        r = hec.run(srv.url, srv.data_dir, c.events(100_000, 10_000), rounds=c.runs)
    return hec.section(r, 500, 2, 1)


def _search(flavor: str, c: Config, keep: list[str]) -> dict[str, Any]:
    import bench.elasticsearch as es
    from bench import rsyslog

    n, notes = c.events(100_000, 5_000), []
    with servers(keep) as get:
        url = get(flavor).url
        extra = []
        if flavor == "elasticsearch":  # omelasticsearch's bulk API is Elasticsearch's; OpenSearch is not checked
            extra = rsyslog_or_note(lambda: rsyslog.es_figure(url, n, c.runs), notes)
        s = es.run(flavor, url, n, rounds=c.runs, extra=extra)
    s["notes"] = notes + s.get("notes", [])
    return s


def s_elasticsearch(c: Config, keep: list[str]) -> dict[str, Any]:
    return _search("elasticsearch", c, keep)


def s_opensearch(c: Config, keep: list[str]) -> dict[str, Any]:
    return _search("opensearch", c, keep)


def s_logstash(c: Config, keep: list[str]) -> dict[str, Any]:
    from bench import logstash

    with servers(keep) as get:
        srv = get("lumberjack")
        return logstash.run(srv.host, srv.port, c.events(100_000, 5_000), rounds=c.runs)


def s_outage(c: Config, keep: list[str]) -> dict[str, Any]:
    title = "outage: throughput and memory over time"
    if importlib.util.find_spec("bench.outage") is None:
        return {"title": title, "unavailable": "bench/outage.py is not in this checkout yet"}
    outage = importlib.import_module("bench.outage")
    results = [outage.run(out_dir=c.results, outage_s=c.outage_seconds) for _ in range(c.runs)]
    result = dict(results[-1])  # scalars and chart of the last run; figures get every run's value
    merged: dict[str, dict[str, Any]] = {}
    for r in results:
        for f in r.get("figures") or []:
            merged.setdefault(f["name"], {**f, "samples": []})["samples"] += f["samples"]
    result["figures"] = list(merged.values())
    return {"title": title, "outage": result,
            "intro": f"A sink goes away for {c.outage_seconds:.0f} s while events keep coming, then comes back "
                     f"(bench/outage.py), {c.runs} times; the table below the figures and the chart are the last "
                     "run's."}


SECTIONS: dict[str, Callable[[Config, list[str]], dict[str, Any]]] = {
    "processes": s_processes, "tables": s_tables, "daemon": s_daemon, "pipeline": s_pipeline, "file": s_file,
    "kafka": s_kafka, "hec": s_hec, "elasticsearch": s_elasticsearch, "opensearch": s_opensearch,
    "logstash": s_logstash, "outage": s_outage,
}


def host_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {"host": f"{platform.system()} {platform.release()} {platform.machine()}",
                             "cores": os.cpu_count(), "python": platform.python_version()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                facts["memory"] = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if commit:
            facts["commit"] = commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return facts


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=None, help="runs per figure (default 3; --quick: 2)")
    ap.add_argument("--quick", action="store_true", help="smoke test: fewer runs, fewer events, short durations")
    ap.add_argument("--only", default="", help=f"comma-separated sections: {','.join(SECTIONS)}")
    ap.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    ap.add_argument("--results", type=Path, default=REPO / "bench" / "results", help="charts and figures.json")
    ap.add_argument("--daemon-seconds", type=float, default=None, help="per daemon run (default 60; --quick: 8)")
    ap.add_argument("--outage-seconds", type=float, default=None, help="sink outage (default 30; --quick: 5)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply the full event counts (e.g. 0.2 on a busy or slow host)")
    ap.add_argument("--merge", action="store_true",
                    help="keep the other sections of the last run (from --results/figures.json), replace these")
    ap.add_argument("--list", action="store_true", help="print the section names and exit")
    a = ap.parse_args(argv)
    only = [x.strip() for x in a.only.split(",") if x.strip()]
    unknown = [x for x in only if x not in SECTIONS]
    if unknown:
        ap.error(f"--only: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    a.only = only or list(SECTIONS)
    if a.runs is not None and a.runs < 1:
        ap.error("--runs must be >= 1")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    if a.list:
        print("\n".join(SECTIONS))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("quarry.shippers", "quarry.pipeline", "aiokafka", "elastic_transport", "opensearch", "httpx",
                  "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)  # connects and retries are not benchmark progress
    c = Config(runs=a.runs or (2 if a.quick else 3), quick=a.quick, results=a.results.resolve(),
               daemon_seconds=a.daemon_seconds or (8 if a.quick else 60),
               outage_seconds=a.outage_seconds or (5 if a.quick else 30), scale=a.scale)
    c.results.mkdir(parents=True, exist_ok=True)
    for png in c.results.glob("*.png"):  # this run draws these sections' charts again
        if png.stem in a.only:
            png.unlink()
    t_all = time.monotonic()
    meta = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), **host_facts(), "runs": c.runs,
            "load_at_start": os.getloadavg()[0],
            "quick": c.quick, "scale": c.scale,
            "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])}
    sections, keep, failed = [], [], []
    earlier: dict[str, dict[str, Any]] = {}
    if a.merge and (c.results / "figures.json").exists():
        prior = json.loads((c.results / "figures.json").read_text())
        earlier = {s["name"]: s for s in prior.get("sections", [])}
        kept = [n for n in earlier if n not in a.only]
        if kept:
            meta["merged"] = (f"{', '.join(kept)} kept from the run of {prior.get('meta', {}).get('date', '?')} "
                              f"(load average {prior.get('meta', {}).get('load_at_start', 0):.1f} at its start)")

    def ordered() -> list[dict[str, Any]]:
        done = {s["name"]: s for s in sections}
        return [done.get(n) or earlier[n] for n in SECTIONS if n in done or n in earlier]

    for name in a.only:
        log.info("section %s ...", name)
        t, load0 = time.monotonic(), os.getloadavg()[0]
        try:
            s = SECTIONS[name](c, keep)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - report it, measure the rest
            log.exception("section %s failed", name)
            s = {"title": name, "error": f"{type(e).__name__}: {e}".strip()[:2000]}
            failed.append(name)
        s["name"] = name
        s["seconds"] = time.monotonic() - t
        s["load"] = [load0, os.getloadavg()[0]]
        log.info("section %s done in %.0f s", name, s["seconds"])
        sections.append(s)
        meta["total_seconds"] = time.monotonic() - t_all
        report.write({"meta": meta, "sections": ordered()}, a.out, c.results)  # partial results survive a crash
    print(f"wrote {a.out} ({len(sections)} sections run in {time.monotonic() - t_all:.0f} s)"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    for d in keep:
        print(f"server logs kept in {d}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
