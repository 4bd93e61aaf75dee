"""deploy/splunk/quarry_osquery: the Splunk app's .conf files, CIM mapping and the overview dashboard.

No Splunk runs here: each .conf is parsed with Splunk's stanza rules, and every name the app uses is checked
against what Quarry emits — the osquery results envelope (a real Event line), the table specs in
collector/tables/ for columns.*, the status events of collector/watchdog.py and collector/events.py — and
every CIM name and tag against shared/reference/ecs.md §4. Timestamp and line-breaking settings are applied
with Python's re to real result and status lines.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import pytest

from collector.events import Event, LogContext, status_line
from collector.registry import all_tables
from collector.watchdog import status_event
from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "deploy" / "splunk" / "quarry_osquery"
DEFAULT = APP / "default"


# ------------------------------------------------------------------------------------------------- .conf parser
class ConfError(ValueError):
    pass


def parse_conf(path: Path) -> dict[str, dict[str, str]]:
    """Splunk .conf: `[stanza]`, `key = value`, `#` comment lines, `\\` at the end continues a value.
    Keys before the first stanza belong to "default". A repeated stanza merges; a repeated key in one stanza
    is an error here (Splunk keeps the last one silently)."""
    out: dict[str, dict[str, str]] = {}
    stanza = "default"
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        n, line = i + 1, lines[i]
        i += 1
        while line.endswith("\\") and i < len(lines):
            line = line[:-1] + "\n" + lines[i]
            i += 1
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("["):
            if not s.endswith("]"):
                raise ConfError(f"{path}:{n}: bad stanza header {s!r}")
            stanza = s[1:-1]
            out.setdefault(stanza, {})
            continue
        if "=" not in s:
            raise ConfError(f"{path}:{n}: expected `key = value`, got {s!r}")
        key, value = (p.strip() for p in s.split("=", 1))
        if not key or " " in key and not key.startswith(("FIELDALIAS-", "EVAL-", "LOOKUP-")):
            raise ConfError(f"{path}:{n}: bad key {key!r}")
        section = out.setdefault(stanza, {})
        if key in section:
            raise ConfError(f"{path}:{n}: key {key!r} repeated in [{stanza}]")
        section[key] = value
    return out


@lru_cache(maxsize=None)
def conf(name: str) -> dict[str, dict[str, str]]:
    return parse_conf(DEFAULT / name)


def test_conf_parser_rules(tmp_path: Path) -> None:
    p = tmp_path / "x.conf"
    p.write_text("# c\nglobal = 1\n[a]\nk = v = w\nlong = one \\\ntwo\n[a]\nk2 = 3\n")
    assert parse_conf(p) == {"default": {"global": "1"}, "a": {"k": "v = w", "long": "one \ntwo", "k2": "3"}}
    for bad, msg in (("[a\n", "bad stanza header"), ("[a]\nnovalue\n", "expected `key = value`"),
                     ("[a]\nk = 1\nk = 2\n", "key 'k' repeated in [a]")):
        p.write_text(bad)
        with pytest.raises(ConfError, match=re.escape(msg)):
            parse_conf(p)


def test_every_conf_file_parses() -> None:
    files = sorted(p.name for p in DEFAULT.glob("*.conf"))
    assert files == ["app.conf", "eventtypes.conf", "inputs.conf", "macros.conf", "props.conf", "tags.conf",
                     "transforms.conf"]
    for f in files:
        assert conf(f), f
    meta = parse_conf(APP / "metadata" / "default.meta")
    assert meta[""]["export"] == "system"
    assert meta["views/quarry_overview"]["access"] == "read : [ * ], write : [ admin ]"
    app = conf("app.conf")
    assert app["package"]["id"] == APP.name
    assert re.fullmatch(r"\d+\.\d+\.\d+", app["launcher"]["version"])


# ------------------------------------------------------------------------------------------------- what Quarry emits
def result_line(unix_time: int = 1795773600, **columns: str) -> bytes:
    ev = Event(name="pack_q", action="added", columns=columns or {"pid": "42"}, host_identifier="web-1",
               unix_time=unix_time, calendar_time="Fri Nov 27 10:00:00 2026 UTC", epoch=0, counter=3,
               decorations={"username": "root"})
    return ev.osquery_line()


def envelope_fields() -> set[str]:
    keys = set(json.loads(result_line()))
    return keys | {"decorations.username", "_time", "host", "source", "sourcetype", "index", "eventtype"}


def status_fields() -> set[str]:
    hec = {"host", "time"} | set(status_event(action="stopped", query="q", cause="cpu", value=1.0, limit=1.0,
                                              unit="percent", stopped=True, expiry=None, now=0.0, message="m"))
    ctx = LogContext(host_identifier="web-1")
    log = json.loads(status_line(1, "m", "f.py", 1, ctx, unix_time=1795773600))
    return set(hec) | set(log) | {"_time", "sourcetype", "index", "source", "eventtype"}


@lru_cache(maxsize=None)
def table_columns() -> dict[str, frozenset[str]]:
    return {name: frozenset(c.name for c in reg.spec.columns) for name, reg in all_tables().items()}


def _ecs_md_section4() -> str:
    text = (SHARED / "reference" / "ecs.md").read_text()
    return text.split("## 4. Splunk CIM naming", 1)[1].split("\n## 5.", 1)[0]


@lru_cache(maxsize=None)
def cim_fields() -> frozenset[str]:
    """The CIM field column of ecs.md §4's "Main fields compared" table."""
    names: set[str] = set()
    for row in _ecs_md_section4().split("Main fields compared", 1)[1].splitlines():
        cells = row.split("|")
        if len(cells) > 4 and "`" in cells[3]:
            names.update(re.findall(r"`([a-z_]+)`", cells[3]))
    return frozenset(names)


@lru_cache(maxsize=None)
def cim_tags() -> frozenset[str]:
    """The tags column of ecs.md §4's dataset table."""
    tags: set[str] = set()
    for row in _ecs_md_section4().split("Main fields compared", 1)[0].splitlines():
        cells = row.split("|")
        if len(cells) > 3:
            tags.update(re.findall(r"`([a-z_]+)`", cells[2]))
    return frozenset(tags)


def test_cim_lists_were_read() -> None:
    assert {"process_id", "parent_process_id", "dest_port", "src_ip", "file_path", "user", "dest", "transport",
            "action", "app", "service_name", "status"} <= cim_fields()
    assert {"process", "report", "listening", "port", "network", "communicate", "authentication", "inventory",
            "endpoint", "filesystem", "service"} <= cim_tags()


# ------------------------------------------------------------------------------------------------- props.conf
def test_results_sourcetype_parsing_settings() -> None:
    st = conf("props.conf")["osquery:results"]
    assert st["KV_MODE"] == "json" and st["SHOULD_LINEMERGE"] == "false" and st["TIME_FORMAT"] == "%s"
    # the file-monitor case: three lines are three events, the breaker's capture group is dropped
    data = b"\n".join(result_line(1795773600 + i) for i in range(3)) + b"\r\n"
    events = [e for e in re.split(st["LINE_BREAKER"].encode(), data) if e and not re.fullmatch(rb"[\r\n]+", e)]
    assert [json.loads(e)["counter"] for e in events] == [3, 3, 3]
    assert int(st["TRUNCATE"]) >= 100000
    prefix = re.compile(st["TIME_PREFIX"])
    lookahead = int(st["MAX_TIMESTAMP_LOOKAHEAD"])
    for line in (result_line(1795773600).decode(), result_line().decode().replace(':1795773600', ':"1795773600"')):
        m = prefix.search(line)
        assert m, line
        digits = re.match(r"\d+", line[m.end():m.end() + lookahead])
        assert digits and datetime.fromtimestamp(int(digits.group()), UTC).isoformat() == "2026-11-27T10:00:00+00:00"


def test_status_sourcetype_time_from_both_shapes() -> None:
    st = conf("props.conf")["osquery:status"]
    assert st["KV_MODE"] == "json"
    prefix = re.compile(st["TIME_PREFIX"])
    ctx = LogContext(host_identifier="web-1")
    hec = json.dumps({"host": "web-1", "time": 1795773600, "severity": "warning", "message": "m"})
    for line in (status_line(1, "m", "f.py", 1, ctx, unix_time=1795773600).decode(), hec):
        m = prefix.search(line)
        assert m and line[m.end():m.end() + 10] == "1795773600", line


def test_hec_shipper_sourcetypes_have_props() -> None:
    from shippers.splunk_hec.config import check

    cfg, errors = check({"url": "https://splunk:8088", "token": "t"})
    assert errors == [] and cfg is not None
    props = conf("props.conf")
    assert cfg.status_sourcetype == "osquery:status" and "osquery:status" in props
    assert "osquery:results" in props  # the shipper's default for format osquery (shippers/splunk_hec/README.md)
    hec = conf("inputs.conf")["http://quarry"]
    assert hec["sourcetype"] == "osquery:results" and hec["disabled"] == "1" and hec["source"] == cfg.source
    monitors = [k for k in conf("inputs.conf") if k.startswith("monitor://")]
    assert monitors and all(conf("inputs.conf")[k]["sourcetype"] == "osquery:results" for k in monitors)


def aliases(value: str) -> list[tuple[str, str]]:
    toks = value.split()
    assert len(toks) % 3 == 0 and all(t.upper() == "AS" for t in toks[1::3]), value
    return list(zip(toks[0::3], toks[2::3]))


def test_field_aliases_come_from_real_columns_and_give_cim_names() -> None:
    props = conf("props.conf")["osquery:results"]
    classes = {k[len("FIELDALIAS-"):]: v for k, v in props.items() if k.startswith("FIELDALIAS-")}
    assert aliases(classes.pop("quarry_dest")) == [("hostIdentifier", "dest")]
    assert "hostIdentifier" in envelope_fields()
    assert sorted(classes) == ["file_events", "last", "listening_ports", "process_open_sockets", "processes",
                               "systemd_units", "users"]
    cols = table_columns()
    for table, value in classes.items():
        pairs = aliases(value)
        assert pairs, table
        for src, dest in pairs:
            assert src.startswith("columns."), (table, src)
            assert src[len("columns."):] in cols[table], f"FIELDALIAS-{table}: {table} has no column {src}"
            assert dest in cim_fields(), f"FIELDALIAS-{table}: {dest} is not a CIM name in ecs.md §4"
    # spot checks of the mapping itself (ecs.md §4 / TA-osquery precedent)
    assert ("columns.pid", "process_id") in aliases(classes["processes"])
    assert ("columns.cmdline", "process") in aliases(classes["processes"])
    assert ("columns.remote_port", "dest_port") in aliases(classes["process_open_sockets"])
    assert ("columns.target_path", "file_path") in aliases(classes["file_events"])


def test_evals_and_lookup() -> None:
    props = conf("props.conf")["osquery:results"]
    cols = table_columns()
    typed = {k[len("quarry_"):] for k in conf("eventtypes.conf") if k != "quarry_status"}
    evals = {k[len("EVAL-"):]: v for k, v in props.items() if k.startswith("EVAL-")}
    assert sorted(evals) == ["action", "app", "status", "vendor_product"]
    for name, expr in evals.items():
        assert name in cim_fields(), name
        for col in re.findall(r"'columns\.([a-z_]+)'", expr):
            assert any(col in cols[t] for t in typed), f"EVAL-{name}: no typed table has column {col}"
    assert "'columns.type_name'==\"user-process\", \"success\"" in evals["action"]
    assert evals["action"].endswith("true(), action)")  # every other event keeps osquery's action
    (lookup,) = [v for k, v in props.items() if k.startswith("LOOKUP-")]
    name, key, as_, src, output, dest = lookup.split()
    assert (key, as_, output) == ("number", "AS", "OUTPUT") and dest in cim_fields()
    assert all(src[len("columns."):] in cols[t] for t in ("listening_ports", "process_open_sockets"))
    tr = conf("transforms.conf")[name]
    with (APP / "lookups" / tr["filename"]).open() as f:
        rows = list(csv.DictReader(f))
    assert {r["number"]: r["transport"] for r in rows}["6"] == "tcp"
    assert {"number", dest} == set(rows[0])


# ------------------------------------------------------------------------------------------------- event types, tags
def signature(search: str) -> list[str]:
    return re.findall(r"\bcolumns\.([a-z_]+)=\*", search)


def test_eventtypes_pick_exactly_one_table() -> None:
    cols = table_columns()
    ets = conf("eventtypes.conf")
    assert ets.pop("quarry_status")["search"] == "sourcetype=osquery:status"
    assert len(ets) == 10
    for name, st in ets.items():
        table = name[len("quarry_"):]
        assert table in cols, f"{name}: Quarry has no table {table}"
        assert st["search"].startswith("sourcetype=osquery:results ")
        sig = signature(st["search"])
        assert len(sig) >= 2, name
        assert set(sig) <= cols[table], f"{name}: {sorted(set(sig) - cols[table])} not columns of {table}"
        others = sorted(t for t, c in cols.items() if t != table and set(sig) <= c)
        assert others == [], f"{name}: rows of {others} would match too"


def test_tags_are_cim_tags_on_defined_eventtypes() -> None:
    ets = conf("eventtypes.conf")
    tags = conf("tags.conf")
    assert len(tags) == 10
    for stanza, values in tags.items():
        kind, _, et = stanza.partition("=")
        assert kind == "eventtype" and et in ets, stanza
        assert values and set(values) <= cim_tags(), (stanza, sorted(set(values) - cim_tags()))
        assert set(values.values()) == {"enabled"}
    assert set(tags["eventtype=quarry_processes"]) == {"process", "report"}
    assert set(tags["eventtype=quarry_last"]) == {"authentication"}
    assert set(tags["eventtype=quarry_process_open_sockets"]) == {"network", "communicate"}
    assert "inventory" in tags["eventtype=quarry_users"]


# ------------------------------------------------------------------------------------------------- dashboard
SPL_WORDS = {"stats", "dc", "latest", "count", "by", "sort", "head", "values", "convert", "ctime", "timechart",
             "eval", "round", "now", "AS", "OR", "AND", "NOT"}


def query_fields(query: str) -> tuple[set[str], set[str], set[str]]:
    """(fields read, names defined with AS/eval, eventtypes) of a simple SPL query; unknown words are fields."""
    q = re.sub(r'"[^"]*"', '""', re.sub(r"`[a-z_]+`", " ", query))
    search, *commands = q.split("|")
    used: set[str] = set()
    defined: set[str] = set()
    eventtypes = set(re.findall(r"\beventtype=([a-z_]+)", search))
    for key in re.findall(r"([A-Za-z_][\w.]*)=", search):
        used.add(key)
    for cmd in commands:
        defined.update(re.findall(r"\bAS\s+([A-Za-z_]\w*)", cmd))
        defined.update(re.findall(r"^\s*eval\s+([A-Za-z_]\w*)\s*=", cmd))
        words = re.findall(r"[A-Za-z_][\w.]*", re.sub(r"\bAS\s+[A-Za-z_]\w*|^\s*eval\s+[A-Za-z_]\w*\s*=", " ", cmd))
        used.update(w for w in words if w not in SPL_WORDS)
    return used, defined, eventtypes


def test_query_fields_reader() -> None:
    used, defined, ets = query_fields('`m` sourcetype=x eventtype=quarry_a columns.k="v" | stats dc(h) AS n by '
                                      'columns.p | eval m=round(n) | sort - m')
    assert used == {"sourcetype", "eventtype", "columns.k", "h", "columns.p", "n", "m"}
    assert defined == {"n", "m"} and ets == {"quarry_a"}


def test_dashboard_uses_only_fields_quarry_emits() -> None:
    path = DEFAULT / "data" / "ui" / "views" / "quarry_overview.xml"
    root = ET.parse(path).getroot()
    assert root.tag == "form" and root.findtext("label") == "Quarry overview"
    titles = [p.findtext("title") for p in root.iter("panel")]
    assert len(titles) == 10
    for word in ("Processes", "Listening ports", "Logins", "Packages", "File changes", "Quarry health"):
        assert any(word in (t or "") for t in titles), word
    macros = conf("macros.conf")
    ets = conf("eventtypes.conf")
    props = conf("props.conf")
    cols = table_columns()
    queries = [s.findtext("query") or "" for s in root.iter("search")]
    assert len(queries) == 10
    for q in queries:
        for macro in re.findall(r"`([a-z_]+)`", q):
            assert macro in macros, macro
        (st,) = re.findall(r"sourcetype=(\S+)", q)
        assert st in props, st
        used, defined, eventtypes = query_fields(q)
        assert eventtypes <= set(ets), eventtypes - set(ets)
        allowed = {"sourcetype", "eventtype"} | defined
        if st == "osquery:status":
            allowed |= status_fields()
        else:
            allowed |= envelope_fields()
            tables = [e[len("quarry_"):] for e in eventtypes]
            allowed |= {f"columns.{c}" for t in tables for c in cols[t]}
        unknown = used - allowed
        assert unknown == set(), f"{q}\nuses {sorted(unknown)}, which Quarry does not emit there"
    # each columns.* a panel reads belongs to every table its event types select (no column of just one of them)
    pkg = next(q for q in queries if "quarry_deb_packages" in q)
    for c in re.findall(r"columns\.([a-z_]+)", pkg):
        assert c in cols["deb_packages"] and c in cols["rpm_packages"], c
