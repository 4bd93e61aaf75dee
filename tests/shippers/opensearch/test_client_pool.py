"""The opensearch client is built with no retries of its own and the same short node parking as the elasticsearch
client (shippers/elasticsearch/pool.py), and opensearch-py's pools behave as pool.py relies on: one host or every
node dead → a connection is returned at once; a dead node among live ones is skipped, and back after at most
DEAD_MAX_S however often it failed (opensearch-py's default: 60 s doubling to 32 min)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from shippers.elasticsearch.options import check
from shippers.elasticsearch.pool import DEAD_MAX_S
from shippers.opensearch.client import OpenSearchClient

A, B = "http://127.0.0.1:9", "http://127.0.0.1:10"  # nothing is sent


def with_transport(hosts: list[str], fn: Any) -> Any:
    async def go() -> Any:
        cfg, errors = check({"hosts": hosts}, "opensearch")
        assert errors == [] and cfg is not None
        c = OpenSearchClient(cfg)
        try:
            transport: Any = c.os.transport  # an AsyncTransport
            await transport._async_init()  # opensearch-py builds its pool on the first request
            return fn(transport)
        finally:
            await c.close()

    return asyncio.run(go())


def test_no_client_retries() -> None:
    def look(t: Any) -> None:
        assert t.max_retries == 0
        assert t.retry_on_timeout is False
        assert tuple(t.retry_on_status) == ()  # a 502/503/504 answer neither retries nor parks the node
        assert (t.connection_pool.dead_timeout, t.connection_pool.timeout_cutoff) == (1.0, 3)

    with_transport([A, B], look)


def test_one_host_is_never_parked() -> None:
    def look(t: Any) -> None:
        conn = t.get_connection()
        for _ in range(5):
            t.mark_dead(conn)
        assert t.get_connection() is conn

    with_transport([A], look)


def test_every_node_dead_still_gives_a_node() -> None:
    def look(t: Any) -> None:
        pool = t.connection_pool
        for conn in list(pool.connections):
            pool.mark_dead(conn)
        assert pool.connections == []
        assert t.get_connection() in pool.orig_connections

    with_transport([A, B], look)


def test_dead_node_among_live_ones_is_skipped_then_back_within_max() -> None:
    def look(t: Any) -> None:
        pool = t.connection_pool
        dead, live = pool.orig_connections
        pool.mark_dead(dead)
        assert {t.get_connection() for _ in range(10)} == {live}  # failover: skipped while parked
        # ten failures in a row (each after a resurrection), the last one DEAD_MAX_S + 0.5 s ago
        for _ in range(9):
            pool.resurrect(force=True)
            pool.mark_dead(dead)
        pool.resurrect(force=True)
        pool.mark_dead(dead, now=time.time() - DEAD_MAX_S - 0.5)
        assert pool.dead_count[dead] == 11
        assert dead in {t.get_connection() for _ in range(4)}

    with_transport([A, B], look)


def test_close_closes_parked_connections() -> None:
    async def go() -> list[bool]:
        cfg, _ = check({"hosts": [A, B]}, "opensearch")
        assert cfg is not None
        c = OpenSearchClient(cfg)
        transport: Any = c.os.transport
        await transport._async_init()
        pool = transport.connection_pool
        for conn in pool.orig_connections:
            await conn._create_aiohttp_session()  # as a request would
        pool.mark_dead(pool.orig_connections[0])
        await c.close()
        return [conn.session is None for conn in pool.orig_connections]  # close() drops the session

    assert asyncio.run(go()) == [True, True]
