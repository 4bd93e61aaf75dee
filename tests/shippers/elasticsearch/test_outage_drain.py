"""After an outage of the whole cluster, batches flow again as soon as the server accepts writes and every node
of the client's pool takes batches again within seconds (shippers/elasticsearch/pool.py). Stops and starts the
session's Elasticsearch again: about a minute."""

from __future__ import annotations

from typing import Any

from tests.shippers.elasticsearch import realserver as rs


def test_drain_starts_when_the_cluster_is_back(servers: Any, elasticsearch_server: Any) -> None:
    rs.run_outage_drain(servers, elasticsearch_server)
