"""validate() (queries compiled on the engine) and `quarry check-config`: exit codes and output lines."""

from __future__ import annotations

import json
from pathlib import Path

from collector.config import check_config, load, validate
from tests.conftest import shared_path


def write(path: Path, content: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return path


BAD = """{
  // a config with one of each defect
  "options": {
    "pidfile": "/var/run/q.pid",
    "events_max": "many"
  },
  "schedule": {
    "unknown_table": {"query": "select * from no_such_table", "interval": 60},
    "unknown_column": {"query": "select no_such_column from processes"},
    "syntax": {"query": "selec 1"},
    "writes": {"query": "delete from processes"},
    "fine": {"query": "select pid from processes", "interval": "60", "shippers": ["nowhere"]},
    "zero": {"query": "select 1", "interval": 0}
  },
  "decorators": {"always": ["select no_such_column from time"]},
  "views": {"v": "select * from nothing_here"},
  "kafka_topics": {"t": ["fine", "ghost"]},
  "exclude_paths": {"homes": ["/home/x"]},
  "packs": {"gone": "gone.conf"}
}
"""


def test_validate_names_query_and_place(tmp_path, engine):
    conf = write(tmp_path / "q.conf", BAD)
    loaded = load(conf)
    lines = [str(d) for d in validate(loaded, engine)]
    assert lines == [
        f"{conf}:4:5: error: option 'pidfile': --pidfile only works on the command line or in the flagfile "
        "(osquery treats it as CLI-only); ignored here",
        f"{conf}:5:5: error: bad value: --events_max takes a number (uint64), got 'many'; keeping '50000'",
        f"{conf}:8:5: error: query unknown_table: no such table: no_such_table",
        f"{conf}:9:5: error: query unknown_column: no such column: no_such_column",
        f"{conf}:10:5: error: query syntax: near \"selec\": syntax error",
        f"{conf}:11:5: error: query writes: table processes may not be modified",
        f"{conf}:12:5: warning: query fine: shipper 'nowhere' is not defined under `shippers`",
        f"{conf}:13:35: warning: zero: interval 0; skipped",
        f"{conf}:15:29: error: decorators.always[0]: no such column: no_such_column",
        f"{conf}:16:13: error: views.v: no such table: nothing_here",
        f"{conf}:17:20: warning: kafka_topics.t: no scheduled query named 'ghost'",
        f"{conf}:18:21: warning: exclude_paths.homes: no file_paths category of that name (osquery ignores it)",
        f"{conf}:19:13: error: pack gone: {tmp_path / 'gone.conf'}: pack file does not exist; pack skipped",
    ]
    # validate() is idempotent: a second call adds nothing.
    assert [str(d) for d in validate(loaded, engine)] == lines
    # The valid query is still there for the daemon to run.
    assert [q.name for q in loaded.config.scheduled("web-01", engine)] == ["fine"]


def test_load_with_engine_validates(tmp_path, engine):
    conf = write(tmp_path / "q.conf", {"schedule": {"x": {"query": "select * from nope"}}})
    loaded = load(conf, engine=engine)
    assert loaded.validated and [d.message for d in loaded.errors] == ["query x: no such table: nope"]


def test_check_config_lists_every_error_and_exits_non_zero(tmp_path, engine):
    conf = write(tmp_path / "q.conf", BAD)
    code, text = check_config(["--config_path", str(conf)], engine=engine)
    lines = text.splitlines()
    assert code == 1
    assert sum(": error: " in line for line in lines) == 9
    assert sum(": warning: " in line for line in lines) == 4
    assert all(line.startswith(f"{conf}:") for line in lines[:-1])
    assert lines[-1] == f"{conf}: 9 error(s), 4 warning(s); 5 queries (5 scheduled, 0 packs) from 1 config file(s)"


def test_check_config_clean_config_exits_zero_with_warnings(tmp_path, engine):
    conf = write(tmp_path / "q.conf", {"schedule": {"p": {"query": "select pid from processes", "colour": 1}}})
    flagfile = write(tmp_path / "q.flags", f"--config_path={conf}\n")
    code, text = check_config([f"--flagfile={flagfile}", "--logger-path=/tmp/x"], engine=engine)
    assert code == 0
    assert text.splitlines()[0] == f"{conf}:5:7: warning: schedule.p.colour: unknown key; ignored"


def test_check_config_broken_json_and_usage(tmp_path, engine):
    conf = write(tmp_path / "q.conf", '{\n# c\n"schedule": {\n}\n,}')
    code, text = check_config([f"--config_path={conf}", "--explain"], engine=engine)
    assert code == 1 and text.splitlines()[0].startswith(f"{conf}:5:2: error: invalid JSON")
    assert "would run" not in text  # nothing to explain when the config could not be read
    assert check_config(["--config_path"], engine=engine)[0] == 2
    code, text = check_config([f"--config_path={conf}", "--bogus_flag=1"], engine=engine)
    assert code == 1 and "<command line>: error: unknown flag --bogus_flag (command line)" in text


def test_check_config_explain(tmp_path, engine):
    conf = write(tmp_path / "q.conf", {
        "schedule": {"procs": {"query": "select pid from processes", "interval": 60},
                     "mac": {"query": "select 1", "platform": "darwin"},
                     "heavy": {"query": "select 1"}, "zero": {"query": "select 1", "interval": 0}},
        "packs": {"off": {"discovery": ["select 1 where 0"], "queries": {"a": {"query": "select 1"}}},
                  "sharded": {"queries": {"b": {"query": "select 1", "shard": 5}}}},
        "decorators": {"load": ["select 1 as one"]},
    })
    code, text = check_config([f"--config_path={conf}", "--explain"], engine=engine, hostname="web-01",
                              denylisted={"heavy"})
    assert code == 0
    lines = text.splitlines()
    assert "On this host (web-01: linux, shard 77, osquery 5.23.0 compatible):" in lines
    assert any(line.startswith("  off (1 queries, 0 would run) inactive: discovery: query 1 returned no rows")
               for line in lines)
    assert any(line.startswith("  sharded (1 queries, 0 would run) active") for line in lines)
    assert "would run (1):" in lines
    assert f"  procs  every 60 s, differential  [{conf}:3:5]" in lines
    assert "would not run (4; 1 of them only because their pack is inactive):" in lines
    assert any(line.startswith("  mac  [") and "platform: query is for 'darwin'" in line for line in lines)
    assert any(line.startswith("  heavy  [") and "denylisted" in line for line in lines)
    assert any(line.startswith("  pack_sharded_b  [") and "shard: query runs on shards 0-5, this host is shard 77"
               in line for line in lines)
    assert "skipped when loading (1):" in lines and any(line.startswith("  zero  [") for line in lines)
    assert "decorators: load 1, always 0" in lines


def test_check_config_on_osquerys_packs(tmp_path, engine):
    packs = shared_path("osquery", "packs")
    conf = write(tmp_path / "osquery.conf", {"packs": {"*": f"{packs}/*.conf"}})
    code, text = check_config([f"--config_path={conf}", "--explain"], engine=engine, hostname="web-01")
    assert code == 1  # opera_extensions: the table no longer exists in osquery either
    assert "  osx-attacks (74 queries, 0 would run) inactive: platform: pack is for 'darwin', this host is linux" \
           in "\n".join(line.split("  [")[0] for line in text.splitlines())
