"""Self-tests of the harness plugin: CI must fail on skipped realserver tests; OTLP decoding."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.servers.plugin import decode_otlp_logs

REPO = Path(__file__).resolve().parents[2]


def _run_pytest(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess:
    (tmp_path / "test_sample.py").write_text(textwrap.dedent("""
        import pytest

        @pytest.mark.realserver
        def test_needs_server():
            pytest.skip("server not here")

        def test_plain():
            pass

        @pytest.mark.skip(reason="not a realserver test")
        def test_other_skip():
            pass
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.servers.plugin", "-p", "no:cacheprovider", "test_sample.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_skipped_realserver_test_fails_the_session_in_ci(tmp_path):
    p = _run_pytest(tmp_path, ci=True)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "realserver tests skipped in CI" in p.stdout
    assert "test_sample.py::test_needs_server: Skipped: server not here" in p.stdout
    assert "test_other_skip" not in p.stdout.split("realserver tests skipped in CI")[1].split("=====")[0]


def test_skipped_realserver_test_is_only_a_skip_outside_ci(tmp_path):
    p = _run_pytest(tmp_path, ci=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "realserver tests skipped in CI" not in p.stdout


def test_decode_otlp_logs():
    batch = {"resourceLogs": [{
        "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "h"}},
                                    {"key": "com.splunk.index", "value": {"stringValue": "main"}}]},
        "scopeLogs": [{"scope": {}, "logRecords": [
            {"timeUnixNano": "1712345678000000000",
             "body": {"kvlistValue": {"values": [
                 {"key": "a", "value": {"doubleValue": 1}},
                 {"key": "l", "value": {"arrayValue": {"values": [{"stringValue": "x"}, {"boolValue": True}]}}}]}},
             "attributes": [{"key": "f", "value": {"stringValue": "v"}}]},
            {"body": {"stringValue": "plain"}},
        ]}],
    }]}
    got = decode_otlp_logs(batch)
    assert got[0]["event"] == {"a": 1.0, "l": ["x", True]}
    assert got[0]["fields"] == {"f": "v"} and got[0]["time"] == 1712345678.0
    assert (got[0]["host"], got[0]["index"]) == ("h", "main")
    assert got[1]["event"] == "plain" and got[1]["time"] is None
