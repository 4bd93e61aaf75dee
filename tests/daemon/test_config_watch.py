"""Hot reload: what a new config changes (diff_configs), rejection of bad configs, and the watchfiles watcher."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from collector.config import load, validate
from collector.config.watch import diff_configs, watch


def write(path: Path, content: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return path


BASE = {
    "options": {"events_max": 100},
    "schedule": {"same": {"query": "select 1", "interval": 60},
                 "sql": {"query": "select 2", "interval": 60},
                 "every": {"query": "select 3", "interval": 60},
                 "gone": {"query": "select 4", "interval": 60}},
    "decorators": {"load": ["select 1 as one"]},
    "file_paths": {"etc": ["/etc/%%"]},
    "kafka_topics": {"t": ["same"]},
}


def test_diff_queries_added_removed_changed(tmp_path):
    conf = write(tmp_path / "q.conf", BASE)
    old = load(conf)
    new_body = json.loads(json.dumps(BASE))
    new_body["schedule"]["sql"]["query"] = "select 22"
    new_body["schedule"]["every"]["interval"] = 120
    new_body["schedule"]["every"]["snapshot"] = True
    del new_body["schedule"]["gone"]
    new_body["schedule"]["fresh"] = {"query": "select 5"}
    write(conf, new_body)
    change = diff_configs(old, load(conf))
    assert not change.rejected
    assert change.added == ["fresh"] and change.removed == ["gone"]
    assert change.changed == {"every": ["interval", "snapshot"], "sql": ["sql"]}
    assert change.sql_changed == ["sql"]  # "every" keeps its diff state; its splay is recomputed
    assert not (change.options or change.decorators or change.file_paths or change.kafka_topics)
    assert change.summary() == ("config reloaded: 1 queries added (fresh); 1 queries removed (gone); "
                                "2 queries changed (every: interval/snapshot, sql: sql)")


def test_diff_other_sections_and_flags(tmp_path):
    conf = write(tmp_path / "q.conf", BASE)
    flagfile = write(tmp_path / "q.flags", "--logger_path=/a\n")
    old = load(conf, flagfile=flagfile)
    body = json.loads(json.dumps(BASE))
    body["options"]["events_max"] = 200
    body["decorators"]["always"] = ["select 2 as two"]
    body["file_paths"]["tmp"] = ["/tmp/%"]
    body["kafka_topics"]["t"].append("sql")
    write(conf, body)
    write(flagfile, "--logger_path=/b\n--database_path=/tmp/db\n")
    change = diff_configs(old, load(conf, flagfile=flagfile))
    assert change.flags == {"events_max": ("100", "200"), "logger_path": ("/a", "/b"),
                            "database_path": ("/var/osquery/osquery.db", "/tmp/db")}
    assert change.restart_flags == ["database_path"]
    assert change.decorators and change.file_paths and change.kafka_topics and change.options
    assert not (change.added or change.removed or change.changed)
    assert "restart needed for database_path" in change.summary()


def test_unchanged_config_is_an_empty_change(tmp_path):
    conf = write(tmp_path / "q.conf", BASE)
    change = diff_configs(load(conf), load(conf))
    assert change.empty and change.summary() == "config reloaded: no change"


def test_pack_file_change_and_pack_selectors(tmp_path):
    pack = write(tmp_path / "p.conf", {"platform": "linux", "queries": {"a": {"query": "select 1"}}})
    conf = write(tmp_path / "q.conf", {"packs": {"p": "p.conf"}})
    old = load(conf)
    write(pack, {"platform": "posix", "queries": {"a": {"query": "select 1", "interval": 30}}})
    change = diff_configs(old, load(conf))
    assert change.packs == ["p"] and change.changed == {"pack_p_a": ["interval"]}


def test_invalid_new_config_is_rejected(tmp_path, engine):
    conf = write(tmp_path / "q.conf", BASE)
    old = load(conf)
    write(conf, '{\n  "schedule": {\n    "x": {"query": "select 1"}\n  \n')
    broken = load(conf)
    change = diff_configs(old, broken)
    assert change.rejected and change.fatal
    assert change.summary().startswith(f"config rejected, running config kept: 1 new error(s): {conf}:5:1: error: ")
    # A config that parses but brings a new error (unknown table) is rejected too.
    body = json.loads(json.dumps(BASE))
    body["schedule"]["bad"] = {"query": "select * from no_such_table"}
    write(conf, body)
    new = load(conf)
    change = diff_configs(old, new, validate(new, engine))
    assert change.rejected and [e.message for e in change.errors] == ["query bad: no such table: no_such_table"]


def test_errors_already_running_do_not_block_reloads(tmp_path, engine):
    body = json.loads(json.dumps(BASE))
    body["options"]["pidfile"] = "/run/q.pid"  # CLI-only: an error, accepted when the daemon started
    conf = write(tmp_path / "q.conf", body)
    old = load(conf, engine=engine)
    assert len(old.errors) == 1
    body["schedule"]["fresh"] = {"query": "select 9"}
    body = {"comment_line_shift": 1, **body}  # lines move: the old error is still recognised
    write(conf, body)
    new = load(conf, engine=engine)
    change = diff_configs(old, new)
    assert not change.rejected and change.added == ["fresh"] and change.extra


async def _wait_for(event: asyncio.Event, seconds: float) -> None:
    await asyncio.wait_for(event.wait(), seconds)


async def test_watch_fires_within_two_seconds(tmp_path):
    conf = write(tmp_path / "q.conf", BASE)
    seen: list[set[Path]] = []
    fired = asyncio.Event()
    stop = asyncio.Event()

    def on_change(paths: set[Path]) -> None:
        seen.append(paths)
        fired.set()

    task = asyncio.create_task(watch([conf, str(conf) + ".d"], on_change, stop_event=stop))
    await asyncio.sleep(0.3)  # let the watcher start
    write(tmp_path / "unrelated.txt", "x")  # same folder, not watched: must not fire
    await asyncio.sleep(0.5)
    assert not fired.is_set()
    write(conf, {"schedule": {}})
    await _wait_for(fired, 2.0)
    assert seen == [{conf.absolute()}]
    # conf.d created after the watcher started: a new file in it is seen too.
    fired.clear()
    write(tmp_path / "q.conf.d" / "a.conf", {})
    await _wait_for(fired, 2.0)
    assert all(p == tmp_path / "q.conf.d" or tmp_path / "q.conf.d" in p.parents for p in seen[-1])
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_watch_follows_new_paths_from_the_callback(tmp_path):
    conf = write(tmp_path / "q.conf", {"packs": {}})
    pack = write(tmp_path / "packs" / "p.conf", {"queries": {}})
    fired = asyncio.Event()
    stop = asyncio.Event()
    calls: list[set[Path]] = []

    async def on_change(paths: set[Path]):
        calls.append(paths)
        fired.set()
        return [conf, pack]  # the reload now references a pack file in another folder

    task = asyncio.create_task(watch([conf], on_change, stop_event=stop))
    await asyncio.sleep(0.3)
    write(conf, {"packs": {"p": "packs/p.conf"}})
    await _wait_for(fired, 2.0)
    fired.clear()
    await asyncio.sleep(0.3)
    write(pack, {"queries": {"a": {"query": "select 1"}}})
    await _wait_for(fired, 2.0)
    assert calls[-1] == {pack.absolute()}
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_watch_survives_a_failing_callback(tmp_path):
    conf = write(tmp_path / "q.conf", {})
    calls = 0
    fired = asyncio.Event()
    stop = asyncio.Event()

    def on_change(paths: set[Path]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("boom")
        fired.set()

    task = asyncio.create_task(watch([conf], on_change, stop_event=stop))
    await asyncio.sleep(0.3)
    write(conf, {"a": 1})
    await asyncio.sleep(0.8)
    write(conf, {"a": 2})
    await _wait_for(fired, 2.0)
    assert calls == 2
    stop.set()
    await asyncio.wait_for(task, 5)


@pytest.mark.parametrize("paths", [[], ["/nonexistent/deep/q.conf"]])
async def test_watch_stops_on_stop_event(paths):
    stop = asyncio.Event()
    task = asyncio.create_task(watch(paths, lambda p: None, stop_event=stop))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 5)
