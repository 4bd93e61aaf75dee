"""`quarry status`, status.json, osquery_shippers and the /metrics + /healthz endpoint of a real daemon."""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from collector import status
from collector.engine import Engine
from collector.runtime import Runtime
from tests.daemon.test_daemon import Daemon, write_config

SECRET = "tok-3f9c1e77-5b2a-4d0e-9a61-c0ffee123456"


def snap(name: str, type_: str = "file", **over) -> dict:
    base = {"shipper": name, "type": type_, "format": "osquery", "sent": 10, "requests": 2, "acked": 10,
            "retried": 0, "splits": 0, "dead_lettered": 0, "dropped": {}, "dropped_total": 0, "notices": {},
            "in_flight": 0, "in_flight_requests": 0, "last_error": "", "last_error_time": None,
            "health": "ok", "queued_events": 0, "queued_bytes": 0, "spool_enabled": False, "spool_bytes": 0,
            "spool_events": 0, "spool_segments": 0, "spool_corrupt_skipped": 0, "spool_write_errors": 0,
            "oldest_event_age_s": None,
            "put_wait_s": 0.0, "put_waits": 0, "rate_wait_s": 0.0, "dead_letter_file": "/x/dl.jsonl"}
    base.update(over)
    return base


PROCESS = {"pid": os.getpid(), "version": "0.1.0", "start_time": 0.0, "uptime_s": 75.0,
           "rss_bytes": 50 * 2**20, "cpu_user_s": 1.5, "cpu_system_s": 0.5, "threads": 4}
SCHED = {"queries": 3, "executions": 7, "errors": 1, "backpressure_s": 2.5, "backpressure_waits": 1,
         "delayed_runs": 4, "denylisted": 0, "skipped": 2, "per_query": {"bad": {"last_error": "no such table: nope"}}}


def make_doc(**kw) -> dict:
    shippers = kw.pop("shippers", {
        "files": snap("files"),
        "hec": snap("hec", "splunk_hec", health="retrying", acked=0, retried=40, spool_events=8,
                    spool_bytes=3072, dropped={"queue_full_drop_newest": 3}, dropped_total=3,
                    oldest_event_age_s=4.25,
                    last_error=f"HEC request failed: https://user:pw@splunk:8088 token {SECRET}"),
    })
    return status.document(shippers=shippers, scheduler=SCHED, process=PROCESS, interval_s=5.0,
                           secrets={SECRET}, **kw)


# --- secrets ------------------------------------------------------------------------------------------------
def test_secret_values_resolve_inline_env_file_headers_and_nested(tmp_path, monkeypatch):
    monkeypatch.setenv("QS_TOKEN", "from-env-secret")
    (tmp_path / "pw").write_text("from-file-secret\n")
    shippers = {
        "hec": {"type": "splunk_hec", "url": "https://s:8088", "token": "inline-token"},
        "hec2": {"type": "splunk_hec", "token_env": "QS_TOKEN"},
        "k": {"type": "kafka",
              "sasl": {"mechanism": "PLAIN", "username": "bob", "password_file": str(tmp_path / "pw")}},
        "es": {"type": "elasticsearch", "api_key": ["id-1234", "key-5678"], "hosts": ["http://es:9200"]},
        "ls": {"type": "logstash", "mode": "http", "headers": {"Authorization": "Bearer hdr-secret"}},
        "short": {"type": "splunk_hec", "token": "abc"},  # too short to scrub safely: left alone
    }
    assert status.secret_values(shippers) == {"inline-token", "from-env-secret", "from-file-secret",
                                              "id-1234", "key-5678", "Bearer hdr-secret"}


def test_redact_replaces_secrets_and_url_userinfo_everywhere():
    doc = {"a": [f"x {SECRET} y"], "b": {"c": "see https://user:pw@host:1/p and http://ok/"}, "n": 3}
    assert status.redact(doc, {SECRET}) == {
        "a": ["x <redacted> y"], "b": {"c": "see https://<redacted>@host:1/p and http://ok/"}, "n": 3}


# --- the document and the file ------------------------------------------------------------------------------
def test_document_names_failing_shippers_and_holds_no_secret():
    doc = make_doc()
    assert doc["failing"] == ["hec"] and doc["state"] == "running" and doc["format"] == 1
    assert doc["shippers"]["hec"]["failing"] is True and doc["shippers"]["files"]["failing"] is False
    assert SECRET not in json.dumps(doc) and "user:pw" not in json.dumps(doc)
    assert doc["shippers"]["hec"]["last_error"] == \
        "HEC request failed: https://<redacted>@splunk:8088 token <redacted>"


@pytest.mark.parametrize("health,error,expected", [
    ("ok", "", False), ("ok", "health check: down", False), ("starting", "", False),
    ("starting", "open failed: x", True), ("retrying", "", True), ("stopped", "", True)])
def test_failing(health, error, expected):
    assert status.failing({"health": health, "last_error": error}) is expected


def test_write_is_atomic_0640_and_read_back(tmp_path):
    path = tmp_path / "status.json"
    old = os.umask(0)
    try:
        status.write(path, make_doc())
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert status.read(path)["failing"] == ["hec"]
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temporary file left behind
    path.write_text('{"format": 99}')
    with pytest.raises(ValueError, match="not a Quarry status document"):
        status.read(path)


def test_status_path_follows_the_state_folder():
    assert status.status_path("/var/osquery/osquery.db") == Path("/var/osquery/status.json")
    assert status.status_path("/var/lib/quarry") == Path("/var/lib/quarry/status.json")


def test_not_running_reasons():
    import psutil

    me = psutil.Process().create_time()
    doc = make_doc()
    doc["process"] = dict(PROCESS, start_time=me)
    now = doc["time"]
    assert status.not_running(doc, now=now) is None
    assert "stopped" in status.not_running({**doc, "state": "stopped"}, now=now)
    assert "16 s old (limit 15 s)" in status.not_running(doc, now=now + 16)
    assert status.not_running(doc, now=now + 16, max_age_s=30) is None
    reused = {**doc, "process": dict(PROCESS, start_time=me - 3600)}
    assert "pid reused" in status.not_running(reused, now=now)
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = {**doc, "process": dict(PROCESS, pid=dead.pid)}
    assert status.not_running(gone, now=now) == f"process {dead.pid} is not running"


def test_table_one_line_per_shipper_and_the_scheduler():
    doc = make_doc()
    text = status.table(doc, now=doc["time"] + 2)
    lines = text.splitlines()
    pid = os.getpid()
    assert lines[0] == f"quarry 0.1.0  pid {pid}  up 1.2m  rss 50.0MiB  cpu 2.0s  status written 2s ago"
    header = lines[2].split()
    assert header[:4] == ["shipper", "type", "health", "queued"]
    files = lines[3].split()
    hec = lines[4].split(None, 11)
    assert files == ["files", "file", "ok", "0/0B", "0/0B", "0", "10", "0", "0", "0", "-"]
    assert hec[:12] == ["hec", "splunk_hec", "retrying", "FAILING", "0/0B", "8/3.0KiB", "0", "0", "40", "3",
                        "0",
                        "4.2s    HEC request failed: https://<redacted>@splunk:8088 token <redacted>"]
    assert "  hec dropped by reason: queue_full_drop_newest 3" in lines
    assert ("scheduler: 3 queries, 7 executions, 1 failed, 2 skipped, 0 denylisted, backpressure 2.5s over "
            "1 queries (4 delayed runs)") in lines
    assert "  bad: last error: no such table: nope" in lines


def test_show_exit_codes_and_json(tmp_path, capsys):
    import psutil

    assert status.show(str(tmp_path)) == 2
    assert "no status file at" in capsys.readouterr().err
    doc = make_doc()
    doc["process"] = dict(PROCESS, start_time=psutil.Process().create_time())
    status.write(tmp_path / "status.json", doc)
    out = io.StringIO()
    assert status.show(str(tmp_path), out=out) == 0
    assert "hec      splunk_hec  retrying FAILING" in out.getvalue()
    out = io.StringIO()
    assert status.show(str(tmp_path), as_json=True, out=out) == 0
    assert orjson.loads(out.getvalue()) == doc
    status.write(tmp_path / "status.json", {**doc, "state": "stopped"})
    out = io.StringIO()
    assert status.show(str(tmp_path), out=out) == 1
    assert out.getvalue().startswith("NOT RUNNING: the daemon stopped")


# --- publisher -> runtime -> osquery_shippers ---------------------------------------------------------------
async def test_publisher_feeds_the_file_and_osquery_shippers(tmp_path):
    rt = Runtime()
    snaps = {"files": snap("files", dropped={"shutdown": 2}, dropped_total=2),
             "hec": snap("hec", "splunk_hec", health="retrying", last_error=f"token {SECRET}",
                         last_error_time=1767225600.5, oldest_event_age_s=3.5, put_wait_s=1.25)}
    pub = status.StatusPublisher(tmp_path / "status.json", runtime=rt, shippers=lambda: snaps, scheduler=None,
                                 secrets={SECRET}, interval_s=0.5)
    pub.start()
    assert status.read(tmp_path / "status.json")["failing"] == ["hec"]
    rows = Engine(runtime=rt).query("select * from osquery_shippers order by name").dicts()
    keys = ("name", "type", "health", "failing", "acked", "dropped", "dropped_by_reason")
    assert [tuple(r[k] for k in keys) for r in rows] == [("files", "file", "ok", 0, 10, 2, '{"shutdown":2}'),
                               ("hec", "splunk_hec", "retrying", 1, 10, 0, "{}")]
    assert rows[1]["last_error"] == "token <redacted>" and rows[1]["last_error_time"] == 1767225600
    assert rows[1]["oldest_event_age"] == 3.5 and rows[1]["backpressure_wait"] == 1.25
    assert rows[0]["last_error"] is None and rows[0]["oldest_event_age"] is None
    await pub.stop()
    assert status.read(tmp_path / "status.json")["state"] == "stopped"


def test_osquery_shippers_is_empty_without_a_daemon():
    out = subprocess.run([sys.executable, "-m", "collector.cli", "query", "--json",
                          "select count(*) AS n from osquery_shippers"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout) == [{"n": "0"}]
    tables = subprocess.run([sys.executable, "-m", "collector.cli", "tables"], capture_output=True, text=True,
                            timeout=60).stdout.split()
    assert "osquery_shippers" in tables and "osquery_schedule" in tables


# --- end to end ---------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def _cli_status(db: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector.cli", "status", f"--database_path={db}", *extra],
                          capture_output=True, text=True, timeout=60)


def test_daemon_status_metrics_healthz_and_sql_with_one_failing_sink(tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    closed = _free_port()  # nothing listens there: the HEC sink fails
    port = _free_port()
    n = 5
    schedule = {
        "numbers": {"query": f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
                             "SELECT x FROM c", "interval": 3600, "run_at_start": True},
        "shippers_seen": {"query": "SELECT name, type, health, failing, acked, last_error "
                                   "FROM osquery_shippers",
                          "interval": 2},
    }
    shippers = {
        "files": {"type": "file", "dir": str(tmp_path / "out")},
        "hec": {"type": "splunk_hec", "url": f"http://127.0.0.1:{closed}", "token": SECRET,
                "retry": {"initial_s": 0.2, "max_s": 0.5}, "batch": {"linger_ms": 50}},
    }
    conf = tmp_path / "quarry.conf"
    write_config(conf, schedule, shippers=shippers)
    d = Daemon(tmp_path, conf, f"--metrics_port={port}", "--status_interval=1")
    db = tmp_path / "db"
    try:
        seen = d.wait_for(lambda x: x["name"] == "shippers_seen" and x["columns"]["name"] == "hec"
                          and x["columns"]["failing"] == "1", timeout=60)
        # the SQL table, run by the daemon's own schedule and written to its results log
        assert seen[0]["columns"]["type"] == "splunk_hec" and seen[0]["columns"]["health"] == "retrying"
        assert seen[0]["columns"]["acked"] == "0" and "ConnectError" in seen[0]["columns"]["last_error"]
        # The first rows may predate the file shipper's open() ("starting"); it must become ok, not failing.
        files_rows = d.wait_for(lambda x: x["name"] == "shippers_seen" and x["columns"]["name"] == "files"
                                and x["columns"]["health"] != "starting")
        assert files_rows[0]["columns"]["failing"] == "0" and files_rows[0]["columns"]["health"] == "ok"
        # quarry status: one line per shipper, the failing one marked
        out = _cli_status(db)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        hec_line = next(x for x in lines if x.startswith("hec "))
        assert hec_line.split()[1:4] == ["splunk_hec", "retrying", "FAILING"] and "ConnectError" in hec_line
        files_line = next(x for x in lines if x.startswith("files "))
        assert files_line.split()[1:3] == ["file", "ok"]
        assert any(x.startswith("scheduler: 2 queries,") for x in lines)
        raw = json.loads(_cli_status(db, "--json").stdout)
        assert raw["failing"] == ["hec"] and raw["state"] == "running" and raw["process"]["pid"] == d.proc.pid
        # /healthz names the failing sink and its error
        code, ctype, body = _get(f"http://127.0.0.1:{port}/healthz")
        assert code == 503 and ctype == "application/json"
        health = json.loads(body)
        assert list(health["failing"]) == ["hec"] and "ConnectError" in health["failing"]["hec"]["last_error"]
        # /metrics: valid exposition with the counters of both shippers
        deadline = time.monotonic() + 30
        while True:
            code, ctype, body = _get(f"http://127.0.0.1:{port}/metrics")
            assert code == 200 and ctype.startswith("text/plain; version=0.0.4")
            samples = {(s.name, s.labels.get("shipper")): s.value
                       for fam in text_string_to_metric_families(body.decode()) for s in fam.samples}
            if samples[("quarry_shipper_events_acked_total", "files")] >= n or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert samples[("quarry_shipper_up", "files")] == 1 and samples[("quarry_shipper_up", "hec")] == 0
        assert samples[("quarry_shipper_events_acked_total", "files")] >= n
        assert samples[("quarry_shipper_events_acked_total", "hec")] == 0
        assert samples[("quarry_shipper_events_retried_total", "hec")] > 0
        assert samples[("quarry_shipper_spool_events", "hec")] >= n  # everything waits in the spool
        assert samples[("quarry_shipper_oldest_event_age_seconds", "hec")] > 0
        assert samples[("quarry_scheduler_queries", None)] == 2
        assert samples[("quarry_scheduler_executions_total", None)] >= 2
        assert samples[("quarry_process_resident_memory_bytes", None)] > 10 * 2**20
        assert _get(f"http://127.0.0.1:{port}/other")[0] == 404
        outputs = [out.stdout, json.dumps(raw), body.decode(), json.dumps(health)]
    finally:
        assert d.stop() == 0
    # after shutdown: the endpoint is closed and `quarry status` says so, exit status 1
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    after = _cli_status(db)
    assert after.returncode == 1 and "NOT RUNNING: the daemon stopped" in after.stdout
    assert stat.S_IMODE((db / "status.json").stat().st_mode) == 0o640
    # the token is configured (and sent) but written nowhere: status, metrics, healthz, logs, results
    written = outputs + [after.stdout, (db / "status.json").read_text(), d.stderr.read_text()]
    written += [p.read_text(errors="replace") for p in (tmp_path / "log").iterdir() if p.is_file()]
    assert all(SECRET not in text for text in written)
