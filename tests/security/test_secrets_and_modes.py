"""Secrets never written, and the daemon's files 0640 / folders 0750.

One daemon run (a subprocess) with every network shipper configured with credentials from the environment and
from files (and one in a URL), all pointing at sinks that fail: refused ports, and an HTTP peer that answers
every request with an error, so errors are logged, retried, given up (retry.max_elapsed_s) and dead-lettered.
Afterwards every file under logger_path and database_path (logs, status log, results, dead letters, spool,
status.json), the daemon's stderr, `quarry status --json` and `quarry check-config --explain` are searched for
every secret. The HTTP peer records what it was sent, which proves the secrets were read and used.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

SOURCES = ["hec_env", "hec_file", "es_env", "es_file", "es_api_key", "es_url", "os_env", "ls_env", "ls_inline",
           "kafka_env", "kafka_file"]


class ErrorPeer:
    """Answers every request with HTTP 400 and an error body; records the Authorization headers it saw."""

    def __init__(self) -> None:
        self.auth: list[str] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                peer.auth.append(self.headers.get("Authorization", ""))
                body = b'{"text":"Invalid data format","code":6}'
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET = do_PUT = do_HEAD = _answer

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("secrets")
    secrets = {k: f"S3CR3T-{k}-{uuid.uuid4().hex}" for k in SOURCES}
    files = base / "secrets"
    files.mkdir()
    for k in ("hec_file", "es_file", "kafka_file"):
        (files / k).write_text(secrets[k] + "\n")
    env = dict(os.environ, **{f"Q_{k.upper()}": secrets[k] for k in SOURCES if k.endswith("_env")})
    peer = ErrorPeer()
    dead = "http://127.0.0.1:1"
    common = {"retry": {"initial_s": 0.1, "max_s": 0.2, "max_elapsed_s": 1.0}, "batch": {"linger_ms": 50}}
    shippers = {
        "hec_env": {"type": "splunk_hec", "url": peer.url, "token_env": "Q_HEC_ENV", "ack": False},
        "hec_file": {"type": "splunk_hec", "url": dead, "token_file": str(files / "hec_file")},
        "es_env": {"type": "elasticsearch", "hosts": [dead], "username": "elastic", "password_env": "Q_ES_ENV",
                   "format": "ecs"},
        "es_file": {"type": "elasticsearch", "hosts": [peer.url], "username": "elastic",
                    "password_file": str(files / "es_file"), "format": "ecs"},
        "es_api_key": {"type": "elasticsearch", "hosts": [dead], "api_key": secrets["es_api_key"], "format": "ecs"},
        "es_url": {"type": "elasticsearch", "hosts": [f"http://elastic:{secrets['es_url']}@127.0.0.1:1"],
                   "format": "ecs"},
        "os_env": {"type": "opensearch", "hosts": [dead], "username": "admin", "password_env": "Q_OS_ENV",
                   "format": "ecs"},
        "ls_env": {"type": "logstash", "mode": "http", "url": peer.url + "/", "user": "u", "password_env": "Q_LS_ENV"},
        "ls_inline": {"type": "logstash", "mode": "http", "url": dead + "/", "user": "u",
                      "password": secrets["ls_inline"]},
        "kafka_env": {"type": "kafka", "brokers": ["127.0.0.1:1"], "topic": "t", "connect_timeout_ms": 500,
                      "sasl": {"mechanism": "PLAIN", "username": "u", "password_env": "Q_KAFKA_ENV"}},
        "kafka_file": {"type": "kafka", "brokers": ["127.0.0.1:1"], "topic": "t", "connect_timeout_ms": 500,
                       "sasl": {"mechanism": "SCRAM-SHA-512", "username": "u",
                                "password_file": str(files / "kafka_file")}},
        "file": {"type": "file", "path": str(base / "log" / "shipped.jsonl")},
    }
    conf = base / "quarry.conf"
    conf.write_text(json.dumps({
        "schedule": {"tick": {"query": "SELECT 1 AS one", "interval": 1, "snapshot": True, "run_at_start": True},
                     "bad": {"query": "SELECT * FROM no_such_table", "interval": 1}},
        "shippers": {name: {**common, **body} for name, body in shippers.items()}}))
    flags = [f"--config_path={conf}", f"--database_path={base / 'db'}", f"--logger_path={base / 'log'}",
             "--disable_watchdog", "--disable_events", "--verbose", "--status_interval=1"]
    stderr = base / "daemon.stderr"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "collector.cli", "run", *flags], env=env, stderr=err,
                                stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(list((base / "db").rglob("deadletter/*.jsonl"))) >= 8 and len(peer.auth) >= 3:
                break
            assert proc.poll() is None, stderr.read_text()[-3000:]
            time.sleep(0.3)
        time.sleep(2)  # a few more rounds of errors
        outputs = {"status": subprocess.run([sys.executable, "-m", "collector.cli", "status", "--json",
                                             f"--database_path={base / 'db'}"], env=env, capture_output=True,
                                            text=True, timeout=60, check=False)}
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        peer.close()
    outputs["check-config"] = subprocess.run(
        [sys.executable, "-m", "collector.cli", "check-config", f"--config_path={conf}", "--explain"], env=env,
        capture_output=True, text=True, timeout=120, check=False)
    yield base, secrets, peer, outputs, code


def written(base: Path) -> dict[str, bytes]:
    out = {}
    for root in (base / "log", base / "db"):
        for p in root.rglob("*"):
            if p.is_file():
                out[str(p)] = p.read_bytes()
    out["stderr"] = (base / "daemon.stderr").read_bytes()
    return out


def test_the_run_exercised_the_failure_paths(run):
    base, secrets, peer, _outputs, code = run
    assert code == 0, (base / "daemon.stderr").read_text()[-3000:]
    files = written(base)
    dead_letters = sorted(Path(p).name for p in files if "/deadletter/" in p)
    assert {"hec_env.jsonl", "es_file.jsonl", "ls_env.jsonl"} <= set(dead_letters), dead_letters
    err = files["stderr"].decode()
    assert "no such table: no_such_table" in err
    assert "127.0.0.1:1" in err  # the refused sinks' errors were logged
    # The secrets were read and sent: the peer saw each one it serves.
    import base64

    seen = " ".join(peer.auth)
    assert f"Splunk {secrets['hec_env']}" in seen
    assert base64.b64encode(f"elastic:{secrets['es_file']}".encode()).decode() in seen
    assert base64.b64encode(f"u:{secrets['ls_env']}".encode()).decode() in seen


def test_no_secret_is_written_anywhere(run):
    base, secrets, _peer, outputs, _code = run
    texts = dict(written(base))
    texts["quarry status --json"] = (outputs["status"].stdout + outputs["status"].stderr).encode()
    texts["check-config --explain"] = (outputs["check-config"].stdout + outputs["check-config"].stderr).encode()
    assert outputs["check-config"].returncode in (0, 1), texts["check-config --explain"]
    assert len(texts["check-config --explain"]) > 100
    leaks = []
    for where, data in texts.items():
        for name, secret in secrets.items():
            for form in {secret, secret.encode().hex()}:
                if form.encode() in data:
                    leaks.append(f"{name} in {where}")
    assert leaks == []


def test_files_are_0640_and_folders_0750(run):
    base, *_ = run
    wrong = []
    for root in (base / "log", base / "db"):
        for p in [root, *root.rglob("*")]:
            if p.is_symlink():  # osqueryd.INFO -> the current INFO file, checked itself
                continue
            mode = stat.S_IMODE(p.lstat().st_mode)
            want = 0o750 if p.is_dir() else 0o640
            if mode != want:
                wrong.append(f"{p.relative_to(base)}: {oct(mode)}")
    assert wrong == []
    kinds = {p.name for p in (base / "log").iterdir()} | {p.name for p in (base / "db").iterdir()}
    assert {"osqueryd.results.log", "osqueryd.snapshots.log", "osqueryd.INFO", "quarry.status.log", "spool",
            "status.json", "shipped.jsonl"} <= kinds, sorted(kinds)
    assert len(list((base / "db").rglob("deadletter/*.jsonl"))) >= 8
