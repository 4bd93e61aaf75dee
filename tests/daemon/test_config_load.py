"""Config loading: osquery's packs as they are, flags and their precedence, conf.d, and bad input with places."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from collector.config import load
from collector.config.load import DEFAULT_CONFIG_PATH
from collector.model import Place
from tests.conftest import shared_path


def write(path: Path, content: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return path


def messages(loaded, severity=None):
    return [str(d) for d in loaded.diagnostics if severity is None or d.severity == severity]


# --- osquery's own packs ------------------------------------------------------------------------------------

def test_osquery_packs_by_glob_read_306_queries(tmp_path):
    packs = shared_path("osquery", "packs")
    conf = write(tmp_path / "osquery.conf", {"packs": {"*": f"{packs}/*"}})
    loaded = load(conf)
    assert loaded.ok, messages(loaded)
    assert len(loaded.config.packs) == 10
    assert len(loaded.config.queries()) == 306
    names = {q.name for q in loaded.config.queries()}
    assert "pack_incident-response_crontab" in names and "pack_ossec-rootkit_bash_door" in names
    rootkit = loaded.config.pack("ossec-rootkit")
    assert rootkit.platform == "linux" and rootkit.version == "1.4.5"
    assert rootkit.place == Place(str(packs / "ossec-rootkit.conf"), 1, 1)
    # Pack files use string intervals: read as numbers.
    assert {q.interval for q in rootkit.queries} == {3600}
    # Pack files are watched for hot reload, as is their folder (a new file matches the glob).
    assert str(packs) in loaded.watch and str(packs / "ossec-rootkit.conf") in loaded.watch


def test_osquery_packs_by_relative_and_absolute_path(tmp_path):
    packs = shared_path("osquery", "packs")
    rel = os.path.relpath(packs / "incident-response.conf", tmp_path)
    conf = write(tmp_path / "osquery.conf", {"packs": {
        "ir": rel, "monitoring": str(packs / "osquery-monitoring.conf")}})
    loaded = load(conf)
    assert loaded.ok, messages(loaded)
    assert [p.name for p in loaded.config.packs] == ["ir", "monitoring"]
    assert len(loaded.config.pack("ir").queries) == 35
    q = next(q for q in loaded.config.pack("monitoring").queries if q.name == "pack_monitoring_schedule")
    assert (q.interval, q.removed, q.denylist, q.version) == (7200, False, False, "2.11.0")
    assert q.place == Place(str(packs / "osquery-monitoring.conf"), 3, 5)


def linux_expected(engine) -> set[str]:
    from tests.test_packs import _TABLES, linux_queries

    return {name for name, sql in linux_queries()
            if all(t.lower() in engine.tables for t in _TABLES.findall(sql))}


def test_linux_selection_matches_the_pack_acceptance_method(tmp_path, engine):
    packs = shared_path("osquery", "packs")
    loaded = load(write(tmp_path / "osquery.conf", {"packs": {"*": f"{packs}/*.conf"}}))
    selected = {q.name for q in loaded.config.scheduled("web-01", engine, platform="linux")}
    expected = linux_expected(engine)
    assert len(expected) <= 112
    assert selected == expected
    # The one query osquery's method drops for a missing table is named by the validator.
    from collector.config import validate

    errors = [str(d) for d in validate(loaded, engine) if d.severity == "error"]
    assert len(errors) == 1 and "pack_vuln-management_opera_extensions" in errors[0]
    assert "no such table: opera_extensions" in errors[0]
    assert errors[0].startswith(f"{packs / 'vuln-management.conf'}:57:5:")


# --- flags --------------------------------------------------------------------------------------------------

def test_flag_precedence_cli_over_flagfile_over_options(tmp_path):
    conf = write(tmp_path / "q.conf", {"options": {"logger_path": "/from/options", "events_max": 7,
                                                   "schedule_splay_percent": 20}})
    flagfile = write(tmp_path / "q.flags", "# comment\n--logger_path=/from/flagfile\n--events_max=8\n")
    only_options = load(conf)
    assert only_options.flag("logger_path") == "/from/options"
    assert only_options.flags["logger_path"].origin == "options"
    assert only_options.flags["logger_path"].place == Place(str(conf), 3, 5)
    with_flagfile = load(conf, flagfile=flagfile)
    assert with_flagfile.flag("logger_path") == "/from/flagfile"
    assert with_flagfile.flags["logger_path"].place == Place(str(flagfile), 2, 1)
    assert with_flagfile.flag("events_max") == 8
    full = load(conf, flagfile=flagfile, cli_flags=["--logger_path=/from/cli"])
    assert full.flag("logger_path") == "/from/cli" and full.flags["logger_path"].origin == "cli"
    assert full.flag("events_max") == 8  # flagfile still beats options
    assert full.flag("schedule_splay_percent") == 20  # options apply where nothing else sets the flag
    assert full.flag("watchdog_level") == 0  # default
    assert full.ok, messages(full)


def test_both_flag_spellings_and_gflags_forms(tmp_path):
    conf = write(tmp_path / "q.conf", {})
    flagfile = write(tmp_path / "q.flags", "--logger-path=/dash\n--schedule_splay_percent=5\n--nodisable_events\n"
                                           "  --verbose\n--log_result_events=false\n")
    loaded = load(conf, flagfile=flagfile, cli_flags=["--events-max", "9", "--utc=false"])
    assert loaded.ok, messages(loaded)
    assert loaded.flag("logger_path") == "/dash"
    assert loaded.flag("schedule_splay_percent") == 5
    assert loaded.flag("disable_events") is False and loaded.flag("verbose") is True
    assert loaded.flag("logger_event_type") is False  # osquery alias log_result_events
    assert loaded.flag("events_max") == 9 and loaded.flag("utc") is False
    assert loaded.runtime_flags()["logger_path"] == "/dash"


def test_config_path_and_flagfile_from_the_command_line(tmp_path):
    conf = write(tmp_path / "elsewhere.conf", {"schedule": {"q": {"query": "select 1", "interval": 60}}})
    flagfile = write(tmp_path / "q.flags", f"--config_path={conf}\n")
    loaded = load(cli_flags=[f"--flagfile={flagfile}"])
    assert loaded.config_path == str(conf) and [q.name for q in loaded.config.queries()] == ["q"]
    assert loaded.flags["config_path"].origin == "flagfile" and loaded.flag("config_path") == str(conf)
    assert loaded.flagfile == str(flagfile) and str(flagfile) in loaded.watch


def test_default_config_path_is_quarrys(tmp_path):
    loaded = load(cli_flags=[])
    assert loaded.config_path == DEFAULT_CONFIG_PATH
    if not Path(DEFAULT_CONFIG_PATH).exists():
        assert loaded.fatal and "config file does not exist" in messages(loaded)[0]


def test_bad_flag_values_name_the_flag_and_the_place(tmp_path):
    conf = write(tmp_path / "q.conf", '{\n  "options": {\n    "events_max": "lots",\n    "utc": "maybe"\n  }\n}\n')
    flagfile = write(tmp_path / "q.flags", "--verbose=true\n--schedule_timeout=-1\n")
    loaded = load(conf, flagfile=flagfile, cli_flags=["--watchdog_level=high"])
    errors = messages(loaded, "error")
    assert f"{conf}:3:5: error: bad value: --events_max takes a number (uint64), got 'lots'; keeping '50000'" in errors
    assert any(e.startswith(f"{conf}:4:5: error: bad value: --utc takes a boolean") for e in errors)
    assert any(e.startswith(f"{flagfile}:2:1: error: bad value: --schedule_timeout") for e in errors)
    assert any(e.startswith("<command line>: error: bad value: --watchdog_level") for e in errors)
    assert loaded.flag("events_max") == 50000 and loaded.flag("watchdog_level") == 0


def test_cli_only_flag_in_options_is_refused_loudly(tmp_path):
    conf = write(tmp_path / "q.conf", '{"options": {\n "database_path": "/tmp/x",\n "pidfile": "/p",\n'
                                      ' "logger_plugin": "tls", "watchdog_level": 1}}')
    loaded = load(conf)
    errors = messages(loaded, "error")
    assert len(errors) == 4
    assert errors[0].startswith(f"{conf}:2:2: error: option 'database_path': --database_path only works on the "
                                "command line")
    assert loaded.flag("database_path") == "/var/osquery/osquery.db"  # not applied
    assert loaded.flag("logger_plugin") == "filesystem" and loaded.flag("watchdog_level") == 0
    # The same flags are fine in the flagfile.
    flagfile = write(tmp_path / "q.flags", "--database_path=/tmp/db\n")
    assert load(write(tmp_path / "ok.conf", {}), flagfile=flagfile).flag("database_path") == "/tmp/db"


def test_unknown_options_and_flags(tmp_path):
    conf = write(tmp_path / "q.conf", {"options": {"custom_team": "blue", "enable_monitor": True,
                                                   "no_such_option": 1}})
    flagfile = write(tmp_path / "q.flags", "--no_such_flag=1\n")
    loaded = load(conf, flagfile=flagfile)
    assert loaded.config.custom == {"custom_team": "blue"}
    warnings, errors = messages(loaded, "warning"), messages(loaded, "error")
    assert any("option 'enable_monitor': an osquery flag Quarry does not implement" in w for w in warnings)
    assert any("unknown option 'no_such_option'" in w for w in warnings)
    assert errors == [f"{flagfile}:1:1: error: unknown flag --no_such_flag (flagfile)"]


def test_missing_flagfile_is_an_error(tmp_path):
    loaded = load(write(tmp_path / "q.conf", {}), flagfile=tmp_path / "nope.flags")
    assert messages(loaded, "error") == [f"{tmp_path / 'nope.flags'}: error: flagfile does not exist"]


# --- sources, merge order, text dialect ---------------------------------------------------------------------

def test_conf_d_merge_order(tmp_path):
    conf = write(tmp_path / "quarry.conf", {"options": {"events_max": 1, "events_expiry": 10},
                                            "schedule": {"q": {"query": "select 1", "interval": 60}},
                                            "packs": {"p": {"queries": {"a": {"query": "select 1"}}}},
                                            "file_paths": {"etc": ["/etc/%%"]}})
    write(tmp_path / "quarry.conf.d" / "20-b.conf", {"options": {"events_max": 3},
                                                     "file_paths": {"etc": ["/etc/ssh/%"], "tmp": ["/tmp/%"]}})
    d10 = write(tmp_path / "quarry.conf.d" / "10-a.conf", {"options": {"events_max": 2},
                                                           "schedule": {"q": {"query": "select 2", "interval": 120}},
                                                           "packs": {"p": {"queries": {"b": {"query": "select 2"}}}}})
    write(tmp_path / "quarry.conf.d" / "30-c.conf.bak", "{ not json")
    loaded = load(conf)
    assert loaded.config.sources == (str(conf), str(d10), str(tmp_path / "quarry.conf.d" / "20-b.conf"))
    assert loaded.flag("events_max") == 3 and loaded.flag("events_expiry") == 10
    [q] = loaded.config.schedule
    assert (q.sql, q.interval, q.place.file) == ("select 2", 120, str(d10))
    assert [x.name for x in loaded.config.pack("p").queries] == ["pack_p_b"]
    assert loaded.config.file_paths == {"etc": ("/etc/%%", "/etc/ssh/%"), "tmp": ("/tmp/%",)}
    warnings = messages(loaded, "warning")
    assert any("query q replaces the one defined at" in w for w in warnings)
    assert any("pack p replaces the pack of the same name" in w for w in warnings)
    assert loaded.ok


def test_broken_conf_d_file_does_not_lose_the_rest(tmp_path):
    conf = write(tmp_path / "quarry.conf", {"schedule": {"q": {"query": "select 1", "interval": 60}}})
    bad = write(tmp_path / "quarry.conf.d" / "a.conf", '{\n  "options": {\n    "x": 1\n  \n}\n')
    loaded = load(conf)
    assert not loaded.fatal and [q.name for q in loaded.config.queries()] == ["q"]
    [err] = messages(loaded, "error")
    assert err.startswith(f"{bad}:6:1: error: invalid JSON")


def test_broken_main_config_names_the_users_line_after_comments(tmp_path):
    conf = write(tmp_path / "osquery.conf", '{\n  // settings\n  # more\n  "options": {\n    "a": 1\n    "b": 2\n  }\n}\n')
    loaded = load(conf)
    assert loaded.fatal and loaded.config.queries() == []
    assert messages(loaded) == [f"{conf}:6:5: error: invalid JSON: Expecting ',' delimiter"]


def test_comments_and_continuations_in_a_config(tmp_path):
    conf = write(tmp_path / "osquery.conf", '{\n  # the schedule\n  "schedule": {\n    // processes\n'
                                            '    "procs": {"query": "select pid \\\n      from processes", '
                                            '"interval": 60}\n  }\n}\n')
    loaded = load(conf)
    [q] = loaded.config.queries()
    assert q.sql == "select pid       from processes"
    assert q.place == Place(str(conf), 5, 5)


# --- schedule entries ---------------------------------------------------------------------------------------

def test_schedule_entry_fields(tmp_path):
    conf = write(tmp_path / "q.conf", {"options": {"schedule_default_interval": 120}, "schedule": {
        "s": {"query": "select 1", "interval": "300", "snapshot": "t", "removed": False, "denylist": "false",
              "platform": "linux", "version": "5.0.0", "shard": "50", "description": "d", "value": "info",
              "startup_priority": 1, "run_at_start": True, "shippers": ["es", "kafka"]},
        "default": {"query": "select 2"},
        "numbers": {"query": "select 3", "interval": 60.0, "snapshot": 1, "removed": 0},
    }})
    loaded = load(conf)
    assert loaded.ok and not loaded.warnings, messages(loaded)
    s, default, numbers = loaded.config.schedule
    assert (s.interval, s.snapshot, s.removed, s.denylist, s.platform, s.version, s.shard) == (
        300, True, False, False, "linux", "5.0.0", 50)
    assert (s.description, s.startup_priority, s.run_at_start, s.shippers, s.pack) == (
        "d", 1, True, ("es", "kafka"), None)
    assert (default.interval, default.snapshot, default.removed, default.denylist) == (120, False, True, True)
    assert (numbers.interval, numbers.snapshot, numbers.removed) == (60, True, False)


def test_bad_intervals_are_skipped_with_a_warning_at_the_interval(tmp_path):
    conf = write(tmp_path / "q.conf", '{"schedule": {\n'
                                      ' "zero": {"query": "select 1", "interval": 0},\n'
                                      ' "long": {"query": "select 1", "interval": 604801},\n'
                                      ' "week": {"query": "select 1", "interval": "604800"},\n'
                                      ' "word": {"query": "select 1", "interval": "hourly"},\n'
                                      ' "negative": {"query": "select 1", "interval": -5}\n}}')
    loaded = load(conf)
    assert [q.name for q in loaded.config.queries()] == ["week"]
    warnings = messages(loaded, "warning")
    assert warnings == [
        f"{conf}:2:32: warning: zero: interval 0; skipped",
        f"{conf}:3:32: warning: long: interval 604801 is longer than a week (604800 s); skipped",
        f"{conf}:5:32: warning: word: interval 'hourly' is not a number of seconds; skipped",
        f"{conf}:6:36: warning: negative: interval -5 is not a number of seconds; skipped",
    ]
    assert [d.name for d in loaded.config.dropped] == ["zero", "long", "word", "negative"]


def test_wrong_types_and_unknown_keys_warn_with_places(tmp_path):
    conf = write(tmp_path / "q.conf", '{"schedule": {"q": {\n  "query": "select 1",\n  "snapshot": [1],\n'
                                      '  "platform": 5,\n  "shard": 101,\n  "colour": "red",\n'
                                      '  "blacklist": false\n}},\n "mystery": {"a": 1}}')
    loaded = load(conf)
    assert loaded.ok
    [q] = loaded.config.queries()
    assert (q.snapshot, q.platform, q.shard) == (False, None, None)
    warnings = messages(loaded, "warning")
    assert f"{conf}:3:3: warning: schedule.q.snapshot: expected a boolean, got a list [1]; read as false " \
           "(osquery's rule)" in warnings
    assert f"{conf}:4:3: warning: schedule.q.platform: expected a string, got a number; ignored" in warnings
    assert any(w.startswith(f"{conf}:5:3: warning: schedule.q.shard: expected a shard 1-100") for w in warnings)
    assert f"{conf}:6:3: warning: schedule.q.colour: unknown key; ignored" in warnings
    assert any(w.startswith(f"{conf}:7:3: warning: schedule.q.blacklist: `blacklist` was removed") for w in warnings)
    assert f"{conf}:9:2: warning: mystery: unknown key; kept, not used" in warnings
    assert loaded.config.extra == {"mystery": {"a": 1}}


def test_reserved_names_missing_sql_and_duplicates(tmp_path):
    conf = write(tmp_path / "q.conf", '{"schedule": {\n "query.x": {"query": "select 1"},\n'
                                      ' "my_counter": {"query": "select 1"},\n "nosql": {"interval": 60},\n'
                                      ' "ok": {"query": "select 1"},\n "ok": {"query": "select 2"}\n}}')
    loaded = load(conf)
    [q] = loaded.config.queries()
    assert (q.name, q.sql) == ("ok", "select 1")  # first of duplicate keys wins, as in osquery
    errors = messages(loaded, "error")
    assert any(e.startswith(f"{conf}:2:2: error: query.x: the name is reserved") for e in errors)
    assert any(e.startswith(f"{conf}:3:2: error: my_counter: the name is reserved") for e in errors)
    assert f"{conf}:4:2: error: nosql: no `query` string; skipped" in errors
    assert any("duplicate key schedule.ok" in w and w.startswith(f"{conf}:6:2") for w in messages(loaded, "warning"))


# --- packs --------------------------------------------------------------------------------------------------

def test_missing_pack_file_names_pack_and_path_and_keeps_the_others(tmp_path):
    write(tmp_path / "packs" / "good.conf", {"queries": {"a": {"query": "select 1", "interval": 60}}})
    conf = write(tmp_path / "q.conf", '{"packs": {\n  "good": "packs/good.conf",\n  "gone": "packs/gone.conf",\n'
                                      '  "inline": {"queries": {"b": {"query": "select 2"}}}\n}}')
    loaded = load(conf)
    assert [p.name for p in loaded.config.packs] == ["good", "inline"]
    assert messages(loaded, "error") == [
        f"{conf}:3:3: error: pack gone: {tmp_path / 'packs' / 'gone.conf'}: pack file does not exist; pack skipped"]
    assert str(tmp_path / "packs" / "gone.conf") in loaded.watch  # reappearing fixes it on reload


def test_broken_pack_file_points_into_the_pack(tmp_path):
    pack = write(tmp_path / "p.conf", '{\n  "queries": {\n    "a": {"query": "select 1",}\n  }\n}')
    conf = write(tmp_path / "q.conf", '{"packs": {"p": "p.conf"}}')
    loaded = load(conf)
    [err] = messages(loaded, "error")
    assert err.startswith(f"{pack}:3:31: error: pack p (from {conf}:1:12): invalid JSON")


def test_pack_fields_delimiter_and_glob_names(tmp_path):
    write(tmp_path / "d" / "ext_pack.conf", {"platform": "linux", "shard": "10", "version": "1.0",
                                             "discovery": ["select 1"], "oncall": "me",
                                             "queries": {"q": {"query": "select 1"}}})
    write(tmp_path / "d" / "two.conf", {"queries": {"r": {"query": "select 1"}}, "bogus": 1})
    conf = write(tmp_path / "q.conf", {"options": {"pack_delimiter": "/"}, "packs": {"*": "d"}})
    loaded = load(conf)
    p = loaded.config.pack("ext_pack")
    assert (p.platform, p.shard, p.version, p.discovery) == ("linux", 10, "1.0", ("select 1",))
    assert [q.name for q in loaded.config.queries()] == ["pack/ext_pack/q", "pack/two/r"]
    assert messages(loaded, "warning") == [f"{tmp_path / 'd' / 'two.conf'}:7:3: warning: pack two: unknown key "
                                           "'bogus'; ignored"]


def test_other_top_level_keys(tmp_path):
    conf = write(tmp_path / "q.conf", {
        "schedule": {"q": {"query": "select 1"}},
        "exclude_paths": {"etc": ["/etc/x"]}, "file_paths": {"etc": ["/etc/%%"]},
        "events": {"disable_subscribers": ["syslog_events"]},
        "kafka_topics": {"t1": ["q"]}, "views": {"v": "select 1 as one"},
        "shippers": {"es": {"type": "elasticsearch", "hosts": ["http://x"]}},
        "yara": {"signatures": {}},
    })
    loaded = load(conf)
    c = loaded.config
    assert c.exclude_paths == {"etc": ("/etc/x",)} and c.events == {"disable_subscribers": ("syslog_events",)}
    assert c.kafka_topics == {"t1": ("q",)} and c.views == {"v": "select 1 as one"}
    assert c.shippers == {"es": {"type": "elasticsearch", "hosts": ["http://x"]}}
    assert c.extra == {"yara": {"signatures": {}}}
    assert [w.split("warning: ")[1] for w in messages(loaded, "warning")] == [
        "yara: osquery key Quarry does not implement; kept, not used"]


def test_malformed_shippers_are_errors(tmp_path):
    conf = write(tmp_path / "q.conf", '{"shippers": {\n "a": {"type": "file"},\n "b": {"path": "/x"},\n "c": 3\n}}')
    loaded = load(conf)
    assert list(loaded.config.shippers) == ["a"]
    assert messages(loaded, "error") == [
        f"{conf}:3:2: error: shippers.b: needs a string `type` (e.g. \"file\"); skipped",
        f"{conf}:4:2: error: shippers.c: expected an object, got a number; skipped"]


def test_bad_shippers_routing_drops_the_query(tmp_path):
    conf = write(tmp_path / "q.conf", {"schedule": {"q": {"query": "select 1", "shippers": "es"}}})
    loaded = load(conf)
    assert loaded.config.queries() == []
    assert "`shippers` must be a list of shipper names" in messages(loaded, "error")[0]


def test_hash_changes_with_any_source(tmp_path):
    conf = write(tmp_path / "q.conf", {"packs": {"p": "p.conf"}})
    pack = write(tmp_path / "p.conf", {"queries": {}})
    first = load(conf).hash
    assert load(conf).hash == first
    write(pack, {"queries": {"a": {"query": "select 1"}}})
    assert load(conf).hash != first


@pytest.mark.parametrize("decorators,expect_warning", [
    ({"load": ["select 1"], "always": ["select 2"], "interval": {"120": ["select 3"], "60": ["select 4"]}}, None),
    ({"interval": {"61": ["select 1"]}}, "decorators.interval: '61' is not a positive multiple of 60 seconds"),
    ({"load": "select 1"}, "decorators.load: expected a list of SQL strings"),
    ({"sometimes": ["select 1"]}, "decorators: unknown key 'sometimes'"),
])
def test_decorators(tmp_path, decorators, expect_warning):
    loaded = load(write(tmp_path / "q.conf", {"decorators": decorators}))
    warnings = messages(loaded, "warning")
    if expect_warning is None:
        assert not warnings
        d = loaded.config.decorators
        assert d.load == ("select 1",) and d.always == ("select 2",)
        assert d.interval == ((60, ("select 4",)), (120, ("select 3",)))
    else:
        assert len(warnings) == 1 and expect_warning in warnings[0]


def test_decorators_merge_across_sources(tmp_path):
    conf = write(tmp_path / "q.conf", {"decorators": {"load": ["select 1"], "interval": {"60": ["select 2"]}}})
    write(tmp_path / "q.conf.d" / "a.conf", {"decorators": {"load": ["select 3"], "interval": {"60": ["select 4"]}}})
    d = load(conf).config.decorators
    assert d.load == ("select 1", "select 3") and d.interval == ((60, ("select 2", "select 4")),)


def test_pack_routing_is_the_default_of_its_queries(tmp_path):
    write(tmp_path / "p.conf", {
        "shippers": ["siem"], "route": {"index": "logs-osquery.inventory-prod", "topic": "inventory"},
        "skip_empty": True,
        "queries": {
            "plain": {"query": "select 1"},
            "own": {"query": "select 2", "shippers": ["bus"], "route": {"topic": "own_topic"},
                    "skip_empty": False},
        }})
    conf = write(tmp_path / "q.conf", {"packs": {"inv": "p.conf"}})
    loaded = load(conf)
    assert loaded.ok, messages(loaded)
    plain, own = loaded.config.pack("inv").queries
    assert (plain.shippers, dict(plain.route), plain.skip_empty) == (
        ("siem",), {"index": "logs-osquery.inventory-prod", "topic": "inventory"}, True)
    # A query's list replaces the pack's; its route overrides key by key.
    assert (own.shippers, dict(own.route), own.skip_empty) == (
        ("bus",), {"index": "logs-osquery.inventory-prod", "topic": "own_topic"}, False)


def test_bad_pack_routing_skips_the_pack_with_its_place(tmp_path):
    pack = write(tmp_path / "p.conf", '{\n  "route": {"topik": "x"},\n  "queries": {"q": {"query": "select 1"}}\n}\n')
    conf = write(tmp_path / "q.conf", {"packs": {"inv": "p.conf"}})
    loaded = load(conf)
    [err] = messages(loaded, "error")
    assert err.startswith(f"{pack}:2:") and "pack inv: `route` must be an object" in err
    assert loaded.config.queries() == []
