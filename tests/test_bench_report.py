"""bench.report renders canned figures into BENCHMARKS.md exactly (medians, min-max, ratios, chart links), and
`python -m bench --quick` runs end to end on the cheapest sections, one of them against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report
from bench.__main__ import parse
from bench.common import figure

REPO = Path(__file__).resolve().parents[1]


def canned() -> dict:
    return {
        "meta": {"date": "2026-11-27 20:00 UTC", "commit": "abc1234", "cores": 2, "runs": 3, "quick": False,
                 "command": "python -m bench", "total_seconds": 61.25},
        "sections": [
            {"name": "kafka", "title": "kafka shipper", "intro": "Same messages, same broker.", "seconds": 12.0,
             "figures": [figure("quarry shipper", [100_000, 300_000, 200_000], "events/s",
                                baseline=["kcat", "rsyslog omkafka"]),
                         figure("kcat", [400_000, 400_000, 500_000], "events/s"),
                         figure("rsyslog omkafka", [100_000, 90_000, 110_000], "events/s", note="imtcp")],
             "notes": ["broker 4.4.0"]},
            {"name": "processes", "title": "processes vs a bare /proc reader",
             "figures": [figure("SELECT * FROM processes", [12.5, 10.0, 15.0], "ms", better="lower",
                                baseline="bare /proc reader"),
                         figure("bare /proc reader", [10.0, 9.0, 11.0], "ms", better="lower")]},
            {"name": "tables", "title": "per-table latency", "chart": False,
             "figures": [figure("uptime", [0.05, 0.04, 0.06], "ms", better="lower", note="1 rows"),
                         figure("users", [1.234, 1.0, 2.0], "ms", better="lower", baseline="missing peer")]},
            {"name": "hec", "title": "splunk HEC shipper", "error": "RuntimeError: hec server unavailable"},
            {"name": "outage", "title": "outage", "unavailable": "bench/outage.py is not in this checkout yet"},
        ],
    }


def test_markdown_has_medians_ranges_and_ratios(tmp_path: Path) -> None:
    md = tmp_path / "BENCHMARKS.md"
    text = report.render(canned(), md, tmp_path / "results")
    lines = text.splitlines()
    assert lines[0] == "# Quarry benchmarks"
    assert "| quarry shipper | 200,000 events/s ↑ | 100,000 – 300,000 | 3 | **0.50x** kcat, **2.00x** rsyslog omkafka |" in lines
    assert "| kcat | 400,000 events/s ↑ | 400,000 – 500,000 | 3 | — |" in lines
    assert "| rsyslog omkafka (imtcp) | 100,000 events/s ↑ | 90,000 – 110,000 | 3 | — |" in lines
    assert "| SELECT * FROM processes | 12.5 ms ↓ | 10 – 15 | 3 | **1.25x** bare /proc reader |" in lines
    assert "| uptime (1 rows) | 0.05 ms ↓ | 0.04 – 0.06 | 3 | — |" in lines
    assert "| users | 1.23 ms ↓ | 1 – 2 | 3 | missing peer: not measured |" in lines
    assert "**Not measured in this run**: RuntimeError: hec server unavailable" in lines
    assert "Not available: bench/outage.py is not in this checkout yet" in lines
    assert "- broker 4.4.0" in lines
    assert "| commit | abc1234 |" in lines and "| total seconds | 61.2 |" in lines
    assert ("Contents: [kafka shipper](#kafka-shipper) · [processes vs a bare /proc reader]"
            "(#processes-vs-a-bare-proc-reader) · [per-table latency](#per-table-latency) · "
            "[splunk HEC shipper](#splunk-hec-shipper) · [outage](#outage)") in lines
    assert [x for x in lines if x.startswith("## ")] == [
        "## kafka shipper", "## processes vs a bare /proc reader", "## per-table latency",
        "## splunk HEC shipper", "## outage"]


def test_charts_are_linked_relative_to_the_markdown(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    md = tmp_path / "BENCHMARKS.md"
    report.write(canned(), md, tmp_path / "bench" / "results")
    text = md.read_text()
    links = [x for x in text.splitlines() if x.startswith("![")]
    # per-table latency has chart False; the failed and unavailable sections have no figures
    assert links == ["![kafka shipper](bench/results/kafka.png)",
                     "![processes vs a bare /proc reader](bench/results/processes.png)"]
    for name in ("kafka", "processes"):
        png = tmp_path / "bench" / "results" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size < 100_000  # commit-friendly
    assert not (tmp_path / "bench" / "results" / "tables.png").exists()
    # the saved figures re-render to the same Markdown
    again = tmp_path / "again.md"
    assert report.main([str(tmp_path / "bench" / "results" / "figures.json"), "--out", str(again)]) == 0
    assert again.read_text() == text


def test_outage_result_is_rendered_with_its_chart(tmp_path: Path) -> None:
    result = {"figures": [figure("events lost", [0, 0, 0], "events", better="lower")],
              "recovery_s": 4.5, "down_s": None, "png": str(tmp_path / "bench" / "results" / "outage.png"),
              "timeline_json": str(tmp_path / "bench" / "results" / "outage-kafka.json")}
    s = {"name": "outage", "title": "outage", "outage": result}
    lines = report.render({"sections": [s]}, tmp_path / "BENCHMARKS.md").splitlines()
    assert "| events lost | 0 events ↓ | 0 – 0 | 3 | — |" in lines
    assert "| recovery_s | 4.50 |" in lines
    assert "![outage chart](bench/results/outage.png)" in lines
    assert "- data: [outage-kafka.json](bench/results/outage-kafka.json)" in lines
    assert not [x for x in lines if "down_s" in x or "timeline_json" in x]


def test_figure_and_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="better must be"):
        figure("x", [1.0], "ms", better="faster")
    with pytest.raises(ValueError, match="no samples"):
        figure("x", [], "ms")
    assert figure("x", [1], "ms", baseline="y")["baseline"] == ["y"]
    assert parse(["--only", "file, pipeline"]).only == ["file", "pipeline"]
    with pytest.raises(SystemExit) as e:
        parse(["--only", "file,nope"])
    assert e.value.code == 2


@pytest.mark.realserver
def test_quick_run_end_to_end(tmp_path: Path) -> None:
    """file and pipeline need no server; logstash starts the go-lumber peer through tests/servers."""
    from tests.servers.plugin import IN_CI, _missing

    miss = _missing("lumberjack")
    if miss and not IN_CI:
        pytest.skip(f"lumberjack peer unavailable: {miss[0]}; install with: {miss[1]}")
    md, res = tmp_path / "B.md", tmp_path / "results"
    p = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "file,pipeline,logstash", "--out",
                        str(md), "--results", str(res)], cwd=REPO, capture_output=True, text=True, timeout=180,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    text = md.read_text()
    heads = [x for x in text.splitlines() if x.startswith("## ")]
    assert heads == ["## pipeline: memory under a dead sink, spool drain", "## file shipper",
                     "## logstash (beats) shipper"]  # in the suite's order, not --only's
    saved = json.loads((res / "figures.json").read_text())
    by_name = {s["name"]: s for s in saved["sections"]}
    assert sorted(by_name) == ["file", "logstash", "pipeline"]
    for s in saved["sections"]:
        assert "error" not in s, s
        assert s["figures"] and all(len(f["samples"]) == 2 and min(f["samples"]) > 0 for f in s["figures"]), s
    assert "| 2 | **" in text  # two runs and a ratio against a baseline measured in the same run
    logstash = [x for x in text.splitlines() if x.startswith("| shipper, plain |")]
    assert len(logstash) == 1 and "x** harness client, plain |" in logstash[0]
    if "![file shipper](results/file.png)" not in text:
        pytest.importorskip("matplotlib")
        pytest.fail("no chart link for the file section")
    assert (res / "file.png").exists() and (res / "logstash.png").exists()
