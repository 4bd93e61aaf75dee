"""Outage timeline: the real daemon streams to one real server (Kafka by default), the server is stopped for
`outage_s` and started again with its data, the daemon drains and stops. Writes the per-second timeline (events
produced and received, daemon RSS, spool size) as JSON and a PNG chart of throughput and memory over time.

    python -m bench.outage [--server kafka|elasticsearch|opensearch|hec|lumberjack] [--outage 60]
                           [--rows 100] [--out bench-results]

Same helpers as tests/faults (tests/faults/scenario.py, runner.py); the servers come from tests/servers.
`run(out_dir, outage_s)` is what `python -m bench` calls. Needs matplotlib (the `bench` extra).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from bench.common import figure

SERVERS = ("kafka", "elasticsearch", "opensearch", "hec", "lumberjack")


def _target(mgr: Any, server: str, query: str) -> Any:
    from tests.faults import scenario

    srv = mgr.get(server)
    if server == "kafka":
        return scenario.kafka_target(srv, f"t-outage-bench-{uuid.uuid4().hex[:8]}", query)
    if server in ("elasticsearch", "opensearch"):
        return scenario.search_target(srv, query)
    if server == "hec":
        return scenario.hec_target(srv, query)
    return scenario.lumberjack_target(srv, query)


def _rates(timeline: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """Per-second rate of a cumulative counter (samples where it is unknown are skipped)."""
    out, prev = [], None
    for s in timeline:
        if s.get(key) is None:
            continue
        if prev is not None and s["t"] > prev["t"]:
            out.append((s["t"], max(0.0, (s[key] - prev[key]) / (s["t"] - prev["t"]))))
        prev = s
    return out


def chart(timeline: list[dict[str, Any]], phases: dict[str, float], title: str, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(10, 6.5))
    for key, label in (("produced", "produced (results log)"), ("received", "received by the server")):
        pts = _rates(timeline, key)
        top.plot([t for t, _ in pts], [r for _, r in pts], label=label)
    top.set_ylabel("events/s")
    top.set_title(title)
    rss = [(s["t"], s["rss_kb"] / 1024) for s in timeline if s.get("rss_kb")]
    bottom.plot([t for t, _ in rss], [m for _, m in rss], color="tab:red", label="daemon RSS (MB)")
    bottom.set_ylabel("RSS MB")
    bottom.set_xlabel("seconds")
    spool = bottom.twinx()
    backlog = [(s["t"], s["status"]["spool_events"]) for s in timeline
               if isinstance(s.get("status"), dict) and s["status"].get("spool_events") is not None]
    if backlog:
        spool.plot([t for t, _ in backlog], [n for _, n in backlog], color="tab:green", label="spool events (status.json)")
        spool.set_ylabel("spool events")
    else:
        disk = [(s["t"], s["spool_bytes"] / 1e6) for s in timeline]
        spool.plot([t for t, _ in disk], [b for _, b in disk], color="tab:green", label="spool on disk (MB)")
        spool.set_ylabel("spool MB")
    if "outage" in phases and "drain" in phases:
        for ax in (top, bottom):
            ax.axvspan(phases["outage"], phases["drain"], color="grey", alpha=0.2,
                       label="server down (stopping, stopped, starting)")
    top.legend(loc="upper left")
    lines, labels = [], []
    for ax in (bottom, spool):
        h, lab = ax.get_legend_handles_labels()
        lines += h
        labels += lab
    bottom.legend(lines, labels, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _produced_at(timeline: list[dict[str, Any]], t: float) -> int:
    older = [s["produced"] for s in timeline if s["t"] <= t]
    return older[-1] if older else 0


def figures(result: Any) -> dict[str, Any]:
    """The headline numbers of one outage run."""
    from tests.faults.runner import CATCH_UP_LAG_S

    tl, ph = result.timeline, result.phases
    rss = [s["rss_kb"] for s in tl if s.get("rss_kb")]
    before = [s["rss_kb"] for s in tl if s.get("rss_kb") and s["t"] < ph.get("outage", 0)]
    back = ph.get("drain")  # the server serves again
    caught_t = backlog = None
    if back is not None:
        # caught up: the server has everything produced until it came back and until CATCH_UP_LAG_S ago
        backlog_total = _produced_at(tl, back)
        known = [s["received"] for s in tl if s["t"] < ph.get("outage", 0) and s.get("received") is not None]
        backlog = backlog_total - (known[-1] if known else 0)
        caught_t = next((s["t"] for s in tl if s["t"] >= back and s.get("received") is not None and s["received"]
                         >= max(backlog_total, _produced_at(tl, s["t"] - CATCH_UP_LAG_S))), None)
    rates = [r for t, r in _rates(tl, "received") if back is not None and back <= t <= (caught_t or 1e18)]
    return {
        "server": result.server, "outage_s": result.outage_s, "produced": result.produced,
        "produced_during_outage": result.produced_during_outage, "lost": len(result.missing),
        "duplicates": result.duplicates, "unexpected": len(result.unexpected),
        "down_s": round(back - ph["outage"], 1) if back is not None and "outage" in ph else None,
        "rss_before_outage_mb": round(max(before) / 1024, 1) if before else None,
        "peak_rss_mb": round(max(rss) / 1024, 1) if rss else None,
        "peak_spool_bytes_on_disk": max((s["spool_bytes"] for s in tl), default=0),
        "backlog_when_back": backlog,
        "catch_up_s": round(caught_t - back, 1) if caught_t is not None and back is not None else None,
        "peak_drain_events_per_s": round(max(rates), 1) if rates else None,
    }


def run(out_dir: Path, outage_s: float, server: str = "kafka", rows: int = 100) -> dict[str, Any]:
    """One outage scenario; writes outage-<server>.json and .png into out_dir and returns the figures."""
    import pytest

    from tests.faults.runner import run_outage
    from tests.servers.plugin import ServerManager

    if server not in SERVERS:
        raise ValueError(f"server must be one of {', '.join(SERVERS)}, not {server!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="quarry-outage-servers-", dir="/tmp"))
    run_dir.chmod(0o755)  # the search servers run as another user
    mgr = ServerManager(run_dir)
    work = Path(tempfile.mkdtemp(prefix="quarry-outage-", dir="/tmp"))
    ok = False
    try:
        try:
            target = _target(mgr, server, f"outage_{uuid.uuid4().hex[:8]}")
        except (pytest.skip.Exception, pytest.fail.Exception) as e:  # the plugin speaks pytest outcomes
            raise RuntimeError(str(e)) from None
        result = run_outage(mgr, target, work / "run", outage_s, rows=rows)
        ok = True
    finally:
        mgr.stop_all()
        if ok:
            shutil.rmtree(run_dir, ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"bench.outage: kept {run_dir} and {work}", file=sys.stderr)
    timeline = result.write(out_dir / f"outage-{server}.json")
    png = chart(result.timeline, result.phases, f"{server} stopped for {outage_s:g} s while the daemon streams "
                f"{2 * rows} events/s", out_dir / f"outage-{server}.png")
    figs = figures(result)
    figs.update(timeline_json=str(timeline), png=str(png), figures=[
        figure("events lost", [figs["lost"]], "events", better="lower"),
        figure("peak daemon RSS", [figs["peak_rss_mb"] or 0], "MB", better="lower"),
        *([figure("catch-up after restart", [figs["catch_up_s"]], "s", better="lower")]
          if figs["catch_up_s"] is not None else []),
        *([figure("peak drain rate", [figs["peak_drain_events_per_s"]], "events/s")]
          if figs["peak_drain_events_per_s"] is not None else []),
    ])
    return figs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.outage", description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", choices=SERVERS, default="kafka")
    ap.add_argument("--outage", type=float, default=60.0, help="seconds the server stays down (default 60)")
    ap.add_argument("--rows", type=int, default=100, help="rows per run; 2x this many events per second")
    ap.add_argument("--out", type=Path, default=Path("bench-results"))
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # the timeline's Kafka probe cannot connect while the broker is down: expected, not worth a line a second
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    figs = run(a.out, a.outage, server=a.server, rows=a.rows)
    print(json.dumps({k: v for k, v in figs.items() if k != "figures"}, indent=1))
    return 0 if figs["lost"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
