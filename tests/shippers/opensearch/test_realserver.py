from __future__ import annotations

from typing import Any

from tests.shippers.elasticsearch import realserver as rs


def test_roundtrip_dedup_and_template(opensearch_server: Any) -> None:
    rs.run_roundtrip("opensearch", opensearch_server.url)


def test_mapping_conflict_is_rejected_rest_delivered(opensearch_server: Any) -> None:
    rs.run_mapping_conflict("opensearch", opensearch_server.url)


def test_osquery_format(opensearch_server: Any) -> None:
    rs.run_osquery_format("opensearch", opensearch_server.url)


def test_unreachable_is_retry() -> None:
    rs.run_unreachable("opensearch")


def test_status_events(opensearch_server: Any) -> None:
    rs.run_status_events("opensearch", opensearch_server.url)
