"""The outage helpers without servers: incremental counting, event keys, and the bench's figures and chart."""

from __future__ import annotations

import json

import pytest

from tests.faults.runner import Result
from tests.faults.scenario import LineCounter, ecs_key, line_key


def test_line_counter_counts_only_appended_tokens_across_split_writes(tmp_path):
    p = tmp_path / "out.jsonl"
    c = LineCounter(p, b'"quarry_event_id"')
    assert c.count() == 0  # no file yet
    p.write_bytes(b'{"a":1,"quarry_ev')
    assert c.count() == 0
    with open(p, "ab") as f:
        f.write(b'ent_id":"x"} {"quarry_event_id":"y"}\n')
    assert c.count() == 2
    assert c.count() == 2  # nothing new: nothing counted twice
    lines = LineCounter(p)
    assert lines.count() == 1


def test_keys_agree_between_osquery_lines_and_ecs_documents():
    line = {"name": "q", "action": "added", "counter": 3, "columns": {"n": "7", "t": "1795812920"}}
    doc = {"event": {"action": "added", "id": "x"},
           "osquery": {"query": {"name": "q"}, "counter": 3, "epoch": 0, "c": {"n": 7, "t": 1795812920}}}
    hec = {"name": "q", "action": "added", "counter": 3.0, "columns": {"n": "7", "t": "1795812920"}}
    assert line_key(line) == ecs_key(doc) == line_key(hec) == ("added", 3, "7", "1795812920")
    assert line_key({**line, "action": "removed"}) != line_key(line)


def _result() -> Result:
    tl = []
    produced = received = 0
    for t in range(30):
        phase = "start" if t < 5 else "outage" if t < 15 else "restart" if t < 16 else "drain" if t < 25 else "stopped"
        produced += 200 if phase != "stopped" else 0
        if phase in ("start", "drain", "stopped"):
            received = min(produced, received + 1500)
        tl.append({"t": float(t), "phase": phase, "produced": produced,
                   "received": None if phase == "outage" else received, "rss_kb": 50_000 + 100 * t,
                   "spool_bytes": 1000 * t})
    return Result(server="kafka", outage_s=10, produced=produced, received=produced, unique_received=produced,
                  missing=[], unexpected=[], conflicting_ids={}, reused_ids=0, produced_during_outage=2000,
                  exit_code=0, status_messages=[], deadletter_files=[], timeline=tl,
                  phases={"start": 0.0, "outage": 5.0, "restart": 15.0, "drain": 16.0, "stopped": 25.0})


def test_figures_from_a_timeline(tmp_path):
    from bench.outage import figures

    r = _result()
    f = figures(r)
    assert f["lost"] == 0 and f["duplicates"] == 0 and f["produced"] == 5000
    assert f["peak_rss_mb"] == round((50_000 + 2900) / 1024, 1)
    assert f["rss_before_outage_mb"] == round((50_000 + 400) / 1024, 1)
    # back at t=16 with 3400 produced, 1000 received before the outage; at t=16 the server has 2500, at t=17 3600
    assert f["down_s"] == 11.0 and f["backlog_when_back"] == 3400 - 1000 and f["catch_up_s"] == 1.0
    assert f["peak_drain_events_per_s"] == 1500.0
    assert r.resume_s == 1.0  # ready at t=16 with 2500 received, more at t=17
    saved = json.loads(r.write(tmp_path / "t.json").read_text())
    assert saved["missing"] == 0 and len(saved["timeline"]) == 30 and saved["phases"]["restart"] == 15.0


def test_chart_is_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib comes with the bench extra")
    from bench.outage import chart

    r = _result()
    png = chart(r.timeline, r.phases, "test", tmp_path / "t.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_outage_restarts_the_server_even_when_the_block_fails_and_reports_a_failed_restart(tmp_path):
    from tests.servers.plugin import ServerManager

    mgr = ServerManager(tmp_path)
    calls: list[str] = []
    mgr._started["lumberjack"] = object()
    mgr._restarts["lumberjack"] = (lambda: calls.append("stop"), lambda: calls.append("start"))
    with pytest.raises(RuntimeError):
        with mgr.outage("lumberjack"):
            calls.append("down")
            raise RuntimeError("test body failed")
    assert calls == ["stop", "down", "start"] and mgr.get("lumberjack") is mgr._started["lumberjack"]

    def broken() -> None:
        raise OSError("port taken")

    mgr._restarts["lumberjack"] = (lambda: None, broken)
    with pytest.raises(OSError):
        with mgr.outage("lumberjack"):
            pass
    assert mgr.start_failed and "port taken" in mgr._errors["lumberjack"]
    with pytest.raises(pytest.fail.Exception, match="could not start lumberjack server again"):
        mgr.get("lumberjack")  # later tests fail with the reason
    with pytest.raises(ValueError):
        mgr.stop("kafka")  # never started
