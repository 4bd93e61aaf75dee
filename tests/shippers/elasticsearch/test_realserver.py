from __future__ import annotations

from typing import Any

from . import realserver as rs


def test_roundtrip_dedup_and_template(elasticsearch_server: Any) -> None:
    rs.run_roundtrip("elasticsearch", elasticsearch_server.url)


def test_mapping_conflict_is_rejected_rest_delivered(elasticsearch_server: Any) -> None:
    rs.run_mapping_conflict("elasticsearch", elasticsearch_server.url)


def test_osquery_format(elasticsearch_server: Any) -> None:
    rs.run_osquery_format("elasticsearch", elasticsearch_server.url)


def test_unreachable_is_retry() -> None:
    rs.run_unreachable("elasticsearch")


def test_status_events(elasticsearch_server: Any) -> None:
    rs.run_status_events("elasticsearch", elasticsearch_server.url)
