"""The elasticsearch client is built with no retries of its own and short node parking (pool.py), and its node pool
behaves as pool.py relies on: one host or every node dead → a node is returned at once; a dead node among live
ones is skipped, and back after at most DEAD_MAX_S however often it failed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from shippers.elasticsearch.client import ElasticsearchClient
from shippers.elasticsearch.options import check
from shippers.elasticsearch.pool import DEAD_MAX_S

A, B = "http://127.0.0.1:9", "http://127.0.0.1:10"  # nothing is sent


def with_client(hosts: list[str], fn: Any) -> Any:
    async def go() -> Any:
        cfg, errors = check({"hosts": hosts}, "elasticsearch")
        assert errors == [] and cfg is not None
        c = ElasticsearchClient(cfg)
        try:
            return fn(c.es)
        finally:
            await c.close()

    return asyncio.run(go())


def test_no_client_retries() -> None:
    def look(es: Any) -> None:
        # what every perform_request of the client passes to the transport
        assert es._max_retries == 0
        assert es._retry_on_timeout is False
        assert tuple(es._retry_on_status) == ()
        pool = es.transport.node_pool
        assert (pool.dead_node_backoff_factor, pool.max_dead_node_backoff) == (1.0, DEAD_MAX_S)

    with_client([A, B], look)


def test_one_host_is_never_parked() -> None:
    def look(es: Any) -> None:
        pool = es.transport.node_pool
        node = pool.get()
        for _ in range(5):
            pool.mark_dead(node)
        assert pool.get() is node

    with_client([A], look)


def test_every_node_dead_still_gives_a_node() -> None:
    def look(es: Any) -> None:
        pool = es.transport.node_pool
        for n in pool.all():
            for _ in range(5):
                pool.mark_dead(n)
        assert pool.get() in pool.all()

    with_client([A, B], look)


def test_dead_node_among_live_ones_is_skipped_then_back_within_max() -> None:
    def look(es: Any) -> None:
        pool = es.transport.node_pool
        dead, live = pool.all()
        pool.mark_dead(dead)
        assert {pool.get() for _ in range(10)} == {live}  # failover: skipped while parked
        # eleven failures in a row (each after a resurrection), the last one DEAD_MAX_S + 0.5 s ago: the client's
        # default (30 s at most) would still park it
        for _ in range(9):
            pool.resurrect(force=True)
            pool.mark_dead(dead)
        pool.resurrect(force=True)
        pool.mark_dead(dead, _now=time.time() - DEAD_MAX_S - 0.5)
        assert pool._dead_consecutive_failures[dead.config] == 11
        assert dead in {pool.get() for _ in range(4)}

    with_client([A, B], look)
