"""Which configured queries run on a host: platform, version, shard, discovery (real Engine), denylist, SQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.config import load
from collector.config.selectors import machine_shard


def config(tmp_path: Path, body: dict):
    p = tmp_path / "q.conf"
    p.write_text(json.dumps(body, indent=2))
    return load(p).config


def verdicts(cfg, engine, host="web-01", **kw):
    return {v.name: v for v in cfg.explain(host, engine, **kw)}


def test_platform_selectors_for_packs_and_queries(tmp_path, engine):
    cfg = config(tmp_path, {
        "schedule": {"any": {"query": "select 1"}, "ubuntu": {"query": "select 1", "platform": "ubuntu"},
                     "gentoo": {"query": "select 1", "platform": "gentoo"},
                     "mac_or_win": {"query": "select 1", "platform": "darwin,windows"},
                     "posix": {"query": "select 1", "platform": "posix"}},
        "packs": {"mac": {"platform": "darwin", "queries": {"q": {"query": "select * from launchd"}}},
                  "lin": {"platform": "linux", "queries": {"q": {"query": "select 1", "platform": "windows"}}}},
    })
    v = verdicts(cfg, engine, platform="linux")
    assert {n for n, x in v.items() if x.runs} == {"any", "ubuntu", "posix"}
    assert v["gentoo"].reasons == ["platform: query is for 'gentoo', this host is linux"]
    assert v["pack_mac_q"].pack_reasons == ["platform: pack is for 'darwin', this host is linux"]
    assert v["pack_mac_q"].reasons == []  # launchd is not compiled on Linux: no spurious SQL error
    assert v["pack_lin_q"].reasons == ["platform: query is for 'windows', this host is linux"]
    on_mac = {q.name for q in cfg.scheduled("web-01", engine, platform="darwin")}
    assert on_mac == {"any", "mac_or_win", "posix"}  # launchd is not a Quarry table: the pack query is held back


def test_shard_with_a_fixed_hostname(tmp_path, engine):
    host = "web-01"
    shard = machine_shard(host)
    assert shard == 77
    cfg = config(tmp_path, {
        "schedule": {"in": {"query": "select 1", "shard": shard}, "out": {"query": "select 1", "shard": shard - 1},
                     "all": {"query": "select 1", "shard": 0}},
        "packs": {"low": {"shard": 10, "queries": {"q": {"query": "select 1"}}},
                  "high": {"shard": "100", "queries": {"q": {"query": "select 1"}}}},
    })
    v = verdicts(cfg, engine, host)
    assert {n for n, x in v.items() if x.runs} == {"in", "all", "pack_high_q"}
    assert v["out"].reasons == [f"shard: query runs on shards 0-{shard - 1}, this host is shard {shard}"]
    assert v["pack_low_q"].pack_reasons == [f"shard: pack runs on shards 0-10, this host is shard {shard}"]
    # Another host lands in a low shard and runs them all.
    assert machine_shard("db-02") == 12
    assert {n for n, x in verdicts(cfg, engine, "db-02").items() if x.runs} == {"in", "out", "all", "pack_high_q"}


def test_version_selectors(tmp_path, engine):
    cfg = config(tmp_path, {
        "schedule": {"old": {"query": "select 1", "version": "1.4.5"}, "same": {"query": "select 1", "version": "5.23.0"},
                     "future": {"query": "select 1", "version": "99.0.0"}},
        "packs": {"new": {"version": "6.0", "queries": {"q": {"query": "select 1"}}}},
    })
    v = verdicts(cfg, engine)
    assert {n for n, x in v.items() if x.runs} == {"old", "same"}
    assert v["future"].reasons == ["version: query needs osquery 99.0.0, Quarry is compatible with 5.23.0"]
    assert v["pack_new_q"].pack_reasons == ["version: pack needs osquery 6.0, Quarry is compatible with 5.23.0"]


def test_discovery_with_a_real_engine(tmp_path, engine):
    cfg = config(tmp_path, {"packs": {
        "yes": {"discovery": ["select pid from processes where pid = 1", "select 1"],
                "queries": {"q": {"query": "select 1"}}},
        "no": {"discovery": ["select 1", "select pid from processes where pid = -1", "select no_such_fn()"],
               "queries": {"q": {"query": "select 1"}}},
        "broken": {"discovery": ["select * from no_such_table"], "queries": {"q": {"query": "select 1"}}},
        "none": {"queries": {"q": {"query": "select 1"}}},
    }})
    v = verdicts(cfg, engine, now=1000.0)
    assert v["pack_yes_q"].runs and v["pack_none_q"].runs
    assert v["pack_no_q"].pack_reasons == [
        "discovery: query 2 returned no rows (select pid from processes where pid = -1)"]
    assert v["pack_broken_q"].pack_reasons == [
        "discovery: query 1 failed: no such table: no_such_table (select * from no_such_table)"]
    info = cfg.pack_info()
    # "no" stopped at its second query (all must return rows: osquery short-circuits).
    assert (info["yes"].discovery_executions, info["no"].discovery_executions) == (2, 2)
    assert (info["yes"].active, info["no"].active, info["broken"].active) == (True, False, False)
    # Within --pack_refresh_interval the cached answer is used; after it, discovery runs again.
    cfg.scheduled("web-01", engine, now=1000.0 + 3599)
    assert (info["yes"].discovery_cache_hits, info["yes"].discovery_executions) == (1, 2)
    cfg.scheduled("web-01", engine, now=1000.0 + 3600)
    assert (info["yes"].discovery_cache_hits, info["yes"].discovery_executions) == (1, 4)


def test_denylist_and_uncompilable_sql(tmp_path, engine):
    cfg = config(tmp_path, {"schedule": {
        "heavy": {"query": "select 1"}, "exempt": {"query": "select 1", "denylist": False},
        "typo": {"query": "select * from proceses"}, "col": {"query": "select nope from processes"}}})
    v = verdicts(cfg, engine, denylisted={"heavy": 1_700_000_000.0, "exempt": 1_700_000_000.0})
    assert v["heavy"].reasons[0].startswith("denylisted until 2023-11-14T22:13:20+00:00")
    assert v["exempt"].runs
    assert v["typo"].reasons == ["sql: no such table: proceses"]
    assert v["col"].reasons == ["sql: no such column: nope"]
    assert [q.name for q in cfg.scheduled("web-01", engine, denylisted={"heavy"})] == ["exempt"]


def test_scheduled_keeps_configuration_order_and_objects(tmp_path, engine):
    cfg = config(tmp_path, {"schedule": {"b": {"query": "select 1"}, "a": {"query": "select 2", "interval": 10}},
                            "packs": {"p": {"queries": {"z": {"query": "select 3"}}}}})
    got = cfg.scheduled("web-01", engine)
    assert [q.name for q in got] == ["b", "a", "pack_p_z"]
    assert got[1].interval == 10 and got[2].pack == "p"


@pytest.mark.parametrize("host", ["alpha", "gamma"])
def test_explain_lists_every_query_once(tmp_path, engine, host):
    cfg = config(tmp_path, {"schedule": {"a": {"query": "select 1"}},
                            "packs": {"p": {"shard": 80, "queries": {"x": {"query": "select 1"}}}}})
    names = [v.name for v in cfg.explain(host, engine)]
    assert names == ["a", "pack_p_x"]
    assert cfg.explain(host, engine)[1].runs == (machine_shard(host) <= 80)
