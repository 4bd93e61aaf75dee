"""Faults (issue 5): each real server stopped mid-stream for 60 s and started again on the same port with its
data → every event the daemon wrote to its results log arrived, duplicates only under the same event id, the
status log shows the outage (retrying) and no drop or dead letter.

All five share the session's servers; each test leaves its server serving again (servers.outage() restarts it
in a finally). QUARRY_OUTAGE_S shortens the outage for local loops (CI: 60). Each test writes its timeline
to <tmp_path>/timeline.json. Runtime: about outage + 30-60 s per server (backoff up to 30 s, restart time).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.faults.runner import SHIPPER, Result, run_outage
from tests.faults.scenario import Target, hec_target, kafka_target, lumberjack_target, search_target

OUTAGE_S = float(os.environ.get("QUARRY_OUTAGE_S", "60"))
RESUME_BOUND_S = 15.0

pytestmark = pytest.mark.realserver


def _query() -> str:
    return f"outage_{uuid.uuid4().hex[:8]}"


def check(result: Result, tmp_path: Path) -> None:
    path = result.write(tmp_path / "timeline.json")
    where = f"(timeline: {path}; summary: {result.summary()})"
    assert result.exit_code == 0, where
    # the stream went on while the server was down, so the outage tested something
    assert result.produced > 0 and result.produced_during_outage > 0, where
    assert result.missing == [], f"{len(result.missing)} event(s) lost, first {result.missing[:5]} {where}"
    assert result.unexpected == [], where
    assert result.conflicting_ids == {} and result.reused_ids == 0, where
    assert result.unique_received == result.produced, where
    msgs = result.status_messages
    assert any(m.startswith(f"shipper {SHIPPER}: retrying") for m in msgs), f"no retrying in the status log {where}"
    assert any(m.startswith(f"shipper {SHIPPER}: destination answers again") for m in msgs), where
    notices = [m for m in msgs if m.startswith("shipping: ")]  # drops, dead letters, truncations
    assert notices == [], where
    final = [m for m in msgs if m.startswith(f"shipper {SHIPPER} [stopped]")]
    assert final and "dead-lettered 0, dropped 0" in final[-1] and "spool 0 (" in final[-1], final
    assert result.deadletter_files == [], where
    down = [s for s in result.timeline if s["phase"] in ("outage", "down", "restart")]
    assert down and max(s["spool_bytes"] for s in down) > down[0]["spool_bytes"], where  # the backlog spooled
    # Every batch sits in a backoff of up to 30 s by now; the lane's health probe (retry.probe_s, 5 s) releases
    # one as soon as the server answers, so delivery resumes within a probe, a request and a sample or two.
    assert result.resume_s is not None and result.resume_s <= RESUME_BOUND_S, where


def _run(servers, target: Target, tmp_path: Path) -> None:
    result = run_outage(servers, target, tmp_path / "run", OUTAGE_S)
    check(result, tmp_path)


def test_kafka_outage_loses_nothing(servers, kafka_server, kafka_topic, tmp_path):
    _run(servers, kafka_target(kafka_server, kafka_topic, _query()), tmp_path)


def test_elasticsearch_outage_loses_nothing(servers, elasticsearch_server, tmp_path):
    _run(servers, search_target(elasticsearch_server, _query()), tmp_path)


def test_opensearch_outage_loses_nothing(servers, opensearch_server, tmp_path):
    _run(servers, search_target(opensearch_server, _query()), tmp_path)


def test_hec_receiver_outage_loses_nothing(servers, hec_receiver, tmp_path):
    _run(servers, hec_target(hec_receiver, _query()), tmp_path)


def test_lumberjack_outage_loses_nothing(servers, lumberjack_server, tmp_path):
    _run(servers, lumberjack_target(lumberjack_server, _query()), tmp_path)
