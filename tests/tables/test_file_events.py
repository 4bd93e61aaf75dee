"""file_events: the spec, the shell behaviour, and FIM on a temp tree read through an Engine."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from collector.engine import Engine
from collector.eventstore import EventStore
from collector.publishers import attach
from collector.publishers.fim import FimPublisher
from collector.runtime import Runtime
from collector.state import State
from collector.tables.file_events import SPEC
from tests.conftest import shared_path

COLUMNS = ("target_path, category, action, transaction_id, inode, uid, gid, mode, size, md5, sha1, sha256, "
           "hashed, time, eid")


def test_spec_matches_osquery():
    tables = {t["name"]: t for t in json.loads(shared_path("osquery", "tables.json").read_text())["tables"]}
    ref = tables["file_events"]
    assert [(c.name, c.type) for c in SPEC.columns] == [(c["name"], c["type"]) for c in ref["columns"]]
    assert [c.name for c in SPEC.columns if c.hidden] == ["eid"]
    assert SPEC.column("time").additional and SPEC.evented


def test_shell_has_no_events(engine):
    res = engine.query("SELECT * FROM file_events")
    assert res.rows == [] and any("events are disabled" in w for w in res.warnings)


@pytest.fixture
def daemon(tmp_path):
    """A runtime with an event store and a FIM publisher over tmp_path/tree, as the daemon wires them."""
    tree = tmp_path / "tree"
    for d in ("etc/sub", "etc/skip", "tmp/deeper"):
        (tree / d).mkdir(parents=True)
    (tree / "etc" / "existing").write_text("before")
    state = State(tmp_path / "state")
    store = EventStore(state, expiry=3600)
    rt = Runtime()
    attach(rt, store)
    fim = FimPublisher(store, runtime=rt, read_max=1000)
    problems = fim.update({"etc": [f"{tree}/etc/%%"], "tmp": [f"{tree}/tmp/%"],
                           "conf": [f"{tree}/etc/existing"]},
                          {"etc": [f"{tree}/etc/skip/%%"]})
    assert problems == []
    assert fim.start() and fim.wait_ready(10)
    yield tree, Engine(runtime=rt), fim
    fim.stop()
    state.close()


def poll(engine: Engine, sql: str, want, timeout: float = 10.0):
    """Query until `want(rows)` holds (events arrive asynchronously); returns the last rows."""
    deadline = time.monotonic() + timeout
    rows = engine.query(sql).dicts()
    while not want(rows) and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = engine.query(sql).dicts()
    return rows


def actions(rows, path):
    return [r["action"] for r in rows if r["target_path"] == path]


def test_create_modify_delete_under_recursive_and_one_level_patterns(daemon):
    tree, engine, _ = daemon
    deep = tree / "etc" / "sub" / "new.conf"
    top = tree / "tmp" / "t.txt"
    deep.write_text("one")
    top.write_text("x")
    (tree / "tmp" / "deeper" / "not-watched").write_text("x")  # `%` is one level only
    (tree / "etc" / "skip" / "excluded").write_text("x")  # exclude_paths
    sql = f"SELECT {COLUMNS} FROM file_events"
    rows = poll(engine, sql, lambda rs: actions(rs, str(deep)) and actions(rs, str(top)))
    created = next(r for r in rows if r["target_path"] == str(deep))
    st = deep.stat()
    assert created["category"] == "etc" and created["action"] == "CREATED"
    assert (created["inode"], created["uid"], created["gid"], created["size"]) == (st.st_ino, st.st_uid,
                                                                                  st.st_gid, 3)
    assert created["mode"] == "%04o" % (st.st_mode & 0o7777)
    assert created["hashed"] == 1 and created["md5"] == hashlib.md5(b"one").hexdigest()
    assert created["sha256"] == hashlib.sha256(b"one").hexdigest()
    assert abs(created["time"] - time.time()) < 60 and len(created["eid"]) == 10
    assert next(r for r in rows if r["target_path"] == str(top))["category"] == "tmp"

    time.sleep(0.3)
    deep.write_text("two!")
    rows = poll(engine, sql, lambda rs: "UPDATED" in actions(rs, str(deep)))
    updated = [r for r in rows if r["target_path"] == str(deep) and r["action"] == "UPDATED"][-1]
    assert updated["hashed"] == 1 and updated["sha1"] == hashlib.sha1(b"two!").hexdigest()

    time.sleep(0.3)
    deep.unlink()
    top.unlink()
    rows = poll(engine, sql, lambda rs: "DELETED" in actions(rs, str(deep)) and "DELETED" in actions(rs, str(top)))
    gone = [r for r in rows if r["target_path"] == str(deep) and r["action"] == "DELETED"][0]
    assert gone["hashed"] == 0 and gone["inode"] is None
    assert actions(rows, str(deep))[0] == "CREATED" and actions(rows, str(deep))[-1] == "DELETED"
    paths = {r["target_path"] for r in rows}
    assert str(tree / "tmp" / "deeper" / "not-watched") not in paths
    assert str(tree / "etc" / "skip" / "excluded") not in paths
    eids = [r["eid"] for r in rows]
    assert eids == sorted(eids) and len(set(eids)) == len(eids)


def test_moves_attributes_and_new_directories(daemon):
    tree, engine, _ = daemon
    sql = f"SELECT {COLUMNS} FROM file_events"
    src = tree / "etc" / "a.conf"
    src.write_text("a")
    poll(engine, sql, lambda rs: actions(rs, str(src)))
    time.sleep(0.3)
    os.chmod(src, 0o600)
    rows = poll(engine, sql, lambda rs: "ATTRIBUTES_MODIFIED" in actions(rs, str(src)))
    attr = [r for r in rows if r["action"] == "ATTRIBUTES_MODIFIED"][0]
    assert attr["mode"] == "0600" and attr["hashed"] == 0
    time.sleep(0.3)
    dst = tree / "etc" / "sub" / "b.conf"
    os.rename(src, dst)
    rows = poll(engine, sql, lambda rs: actions(rs, str(dst)))
    moved_from = next(r for r in rows if r["target_path"] == str(src) and r["action"] == "MOVED_FROM")
    moved_to = next(r for r in rows if r["target_path"] == str(dst) and r["action"] == "MOVED_TO")
    assert moved_from["transaction_id"] == moved_to["transaction_id"] != 0
    # A directory made inside the recursive tree is watched from then on, and what it held is reported.
    inner = tree / "etc" / "newdir" / "inner"
    inner.mkdir(parents=True)
    (inner / "early").write_text("e")
    rows = poll(engine, sql, lambda rs: actions(rs, str(inner / "early")))
    assert actions(rows, str(inner / "early")) == ["CREATED"]
    time.sleep(1.0)
    (inner / "late").write_text("l")
    rows = poll(engine, sql, lambda rs: actions(rs, str(inner / "late")))
    assert actions(rows, str(inner / "late")) == ["CREATED"]


def test_exact_file_atomic_replace_and_read_max(daemon):
    tree, engine, _ = daemon
    target = tree / "etc" / "existing"
    tmp = tree / "etc" / ".existing.tmp"
    tmp.write_text("replaced")
    os.rename(tmp, target)  # how editors and passwd(1) write: the watched inode is replaced
    sql = f"SELECT {COLUMNS} FROM file_events WHERE category = 'conf'"
    rows = poll(engine, sql, lambda rs: rs)
    assert rows and rows[-1]["target_path"] == str(target)
    assert rows[-1]["action"] in ("CREATED", "MOVED_TO", "UPDATED")
    big = tree / "etc" / "big.bin"
    big.write_bytes(b"x" * 2000)  # over read_max=1000: not hashed
    rows = poll(engine, f"SELECT {COLUMNS} FROM file_events", lambda rs: actions(rs, str(big)))
    row = next(r for r in rows if r["target_path"] == str(big))
    assert row["hashed"] == -1 and row["md5"] == "" and row["size"] == 2000


def test_events_expire_on_query(daemon):
    tree, engine, fim = daemon
    (tree / "tmp" / "f").write_text("x")
    rows = poll(engine, "SELECT target_path FROM file_events", lambda rs: rs)
    assert rows
    fim.store.configure(expiry=1)
    time.sleep(2.1)
    assert engine.query("SELECT target_path FROM file_events").rows == []
