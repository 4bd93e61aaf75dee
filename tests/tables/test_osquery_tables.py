"""osquery_* self-description tables against the running process and a Runtime built by hand."""

from __future__ import annotations

import json
import os
import re
import time
import uuid

import pytest

import collector
from collector import flags as flagdefs
from collector.engine import Engine
from collector.registry import all_tables
from collector.runtime import PackInfo, Runtime, current
from tests.conftest import shared_path


def test_osquery_info_describes_this_process(engine):
    rows = engine.query("select * from osquery_info").dicts()
    assert len(rows) == 1
    info = rows[0]
    assert info["pid"] == os.getpid()
    assert info["version"] == collector.__version__
    assert uuid.UUID(info["instance_id"])
    assert info["watcher"] == -1  # no watchdog process in a shell
    assert info["platform_mask"] == 9  # osquery's POSIX | LINUX
    assert info["build_platform"] == "linux"
    assert info["extensions"] == "inactive"
    assert abs(info["start_time"] - time.time()) < 24 * 3600
    assert info["start_time"] <= time.time()
    again = engine.query("select instance_id, uuid, start_time from osquery_info").rows[0]
    assert again == (info["instance_id"], info["uuid"], info["start_time"])  # stable within a process
    other = Engine().query("select instance_id from osquery_info").rows[0][0]
    assert other == info["instance_id"]  # one shell Runtime per process


def test_osquery_info_uuid_matches_the_host(engine):
    got = engine.query("select uuid from osquery_info").rows[0][0]
    try:
        with open("/sys/class/dmi/id/product_uuid") as f:
            want = f.read().strip().upper()
    except OSError:
        with open("/etc/machine-id") as f:
            mid = f.read().strip()
        want = str(uuid.UUID(mid)).upper()
    assert got == want


def test_osquery_info_from_given_runtime():
    rt = Runtime.for_shell(config_path="/etc/quarry/quarry.conf")
    rt.config_hash, rt.config_valid, rt.watcher, rt.host_uuid = "abc123", True, 4242, "FAKE-UUID"
    info = Engine(runtime=rt).query("select * from osquery_info").dicts()[0]
    assert (info["config_hash"], info["config_valid"], info["watcher"], info["uuid"]) == (
        "abc123", 1, 4242, "FAKE-UUID")
    assert info["instance_id"] == rt.instance_id != current(None).instance_id


def test_osquery_info_fixture_root_uuid(engine_at, tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    got = engine_at(tmp_path).query("select uuid from osquery_info").rows[0][0]
    assert got == "01234567-89AB-CDEF-0123-456789ABCDEF"
    empty = tmp_path / "empty"
    empty.mkdir()
    res = engine_at(empty).query("select uuid from osquery_info")
    assert res.rows == [(None,)] and any("uuid" in w for w in res.warnings)


def test_osquery_schedule_reflects_runtime():
    rt = Runtime.for_shell()
    rt.add_query("pack_monitoring_heartbeat", "select 1", 60)
    rt.record_run("pack_monitoring_heartbeat", wall_ms=1500, user_ms=20, system_ms=10, memory=1000,
                  output_size=300, finished=1700000000)
    rt.record_run("pack_monitoring_heartbeat", wall_ms=700, user_ms=4, system_ms=2, memory=3000,
                  output_size=100, finished=1700000060)
    rt.schedule["pack_monitoring_heartbeat"].denylisted = True
    rows = Engine(runtime=rt).query("select * from osquery_schedule").dicts()
    assert rows == [{
        "name": "pack_monitoring_heartbeat", "query": "select 1", "interval": 60, "executions": 2,
        "last_executed": 1700000060, "denylisted": 1, "output_size": 400, "wall_time": 2,
        "wall_time_ms": 2200, "last_wall_time_ms": 700, "user_time": 24, "last_user_time": 4,
        "system_time": 12, "last_system_time": 2, "average_memory": 2000, "last_memory": 3000,
    }]


def test_osquery_schedule_empty_in_shell(engine):
    assert engine.query("select * from osquery_schedule").rows == []


def test_osquery_flags_defaults(engine):
    rows = {r["name"]: r for r in engine.query("select * from osquery_flags").dicts()}
    assert set(rows) == set(flagdefs.FLAGS)
    assert rows["schedule_splay_percent"] == {
        "name": "schedule_splay_percent", "type": "uint64", "description": "Percent to splay config times",
        "default_value": "10", "value": "10", "shell_only": 0}
    assert rows["logger_plugin"]["default_value"] == "filesystem"
    assert rows["disable_events"]["default_value"] == "false"
    assert rows["read_max"]["default_value"] == str(50 * 1024 * 1024)
    assert rows["logger_event_type"]["value"] == "true"
    assert rows["hostfs"]["default_value"] == "/"
    assert rows["planner"]["shell_only"] == 1
    assert "log_result_events" not in rows  # aliases set their target flag
    for name in ("config_path", "flagfile", "database_path", "logger_path", "host_identifier", "schedule_timeout",
                 "watchdog_level", "watchdog_memory_limit", "watchdog_utilization_limit", "events_expiry",
                 "events_max", "logger_snapshot_event_type", "logger_numerics", "logger_rotate",
                 "logger_rotate_size", "logger_rotate_max_files", "logger_kafka_brokers", "logger_kafka_topic",
                 "logger_kafka_acks", "logger_kafka_compression", "verbose", "disable_database"):
        assert name in rows
    overridden = engine.query("select name from osquery_flags where default_value <> value").rows
    assert overridden == []


def test_osquery_flags_overrides_and_aliases():
    rt = Runtime.for_shell({"verbose": True, "log_numerics_as_numbers": "true", "--schedule_splay_percent": 25})
    rows = Engine(runtime=rt).query(
        "select name, value from osquery_flags where default_value <> value order by name").rows
    assert rows == [("logger_numerics", "true"), ("schedule_splay_percent", "25"), ("verbose", "true")]
    with pytest.raises(ValueError):
        Runtime.for_shell({"no_such_flag": 1})


def test_osquery_registry_lists_every_table(engine):
    rows = engine.query("select * from osquery_registry").dicts()
    tables = {r["name"] for r in rows if r["registry"] == "table"}
    assert tables == set(all_tables())
    assert all(r["active"] == 1 and r["owner_uuid"] == 0 for r in rows if r["registry"] == "table")
    plugins = {(r["registry"], r["name"]): r["active"] for r in rows}
    assert plugins[("config", "filesystem")] == 1
    assert plugins[("logger", "filesystem")] == 1
    assert plugins[("event_subscriber", "file_events")] == 0


def test_osquery_events_in_shell(engine):
    rows = engine.query("select name, publisher, type, subscriptions, events, refreshes, active "
                        "from osquery_events order by type, name").rows
    assert rows == [
        ("inotify", "inotify", "publisher", 0, 0, 0, 0),
        ("udev", "udev", "publisher", 0, 0, 0, 0),
        ("file_events", "inotify", "subscriber", 0, 0, 0, 0),
        ("hardware_events", "udev", "subscriber", 0, 0, 0, 0),
    ]


def test_osquery_packs_reflect_runtime(engine):
    assert engine.query("select * from osquery_packs").rows == []
    rt = Runtime.for_shell()
    rt.packs["osquery-monitoring"] = PackInfo(platform="linux", version="1.5.3", shard=0, active=True)
    rows = Engine(runtime=rt).query("select * from osquery_packs where version >= '1.5.10'").dicts()
    assert rows == []  # version compares as a version (COLLATE VERSION): 1.5.3 < 1.5.10
    rows = Engine(runtime=rt).query("select * from osquery_packs").dicts()
    assert rows == [{"name": "osquery-monitoring", "platform": "linux", "version": "1.5.3", "shard": 0,
                     "discovery_cache_hits": 0, "discovery_executions": 0, "active": 1}]


def test_osquery_extensions_core_only(engine):
    rows = engine.query("select uuid, name, version, type from osquery_extensions").rows
    assert rows == [(0, "core", collector.__version__, "core")]


def test_heartbeat_join_returns_one_row(engine):
    rows = engine.query("select i.pid, i.version, p.name, p.resident_size from osquery_info i "
                        "join processes p using (pid)").rows
    assert len(rows) == 1 and rows[0][0] == os.getpid() and rows[0][3] > 0


def _pack_queries() -> dict[str, str]:
    text = shared_path("osquery", "packs", "osquery-monitoring.conf").read_text()
    return {name: q["query"] for name, q in json.loads(text)["queries"].items()}


def test_monitoring_pack_queries_run(engine):
    queries = _pack_queries()
    assert set(queries) == {"schedule", "events", "osquery_info"}
    if "time" not in {t for t in all_tables()}:
        pytest.skip("the time table is not registered yet")
    heartbeat = engine.query(queries["osquery_info"]).dicts()
    assert len(heartbeat) == 1 and heartbeat[0]["pid"] == os.getpid()
    assert heartbeat[0]["counter"] is not None
    events = engine.query(queries["events"]).rows
    assert len(events) == 4
    assert engine.query(queries["schedule"]).rows == []


def test_monitoring_schedule_query_with_stats():
    rt = Runtime.for_shell()
    rt.add_query("heartbeat", "select 1", 600)
    rt.record_run("heartbeat", wall_ms=3000, user_ms=40, system_ms=20, memory=4096, output_size=10)
    rt.record_run("heartbeat", wall_ms=1000, user_ms=20, system_ms=10, memory=2048, output_size=10)
    rows = Engine(runtime=rt).query(_pack_queries()["schedule"]).dicts()
    assert len(rows) == 1
    r = rows[0]
    assert (r["name"], r["executions"], r["wall_time"], r["avg_user_time"], r["avg_system_time"]) == (
        "heartbeat", 2, 4, 30, 15)
    assert r["average_memory"] == 3072 and r["denylisted"] == 0 and re.fullmatch(r"\d+", str(r["last_executed"]))
