"""Client settings shared by the elasticsearch and opensearch clients: no retries of their own, short node parking.

    elasticsearch_options() -> dict    keyword arguments for `AsyncElasticsearch` (elastic_transport NodePool)
    opensearch_options() -> dict       keyword arguments for `AsyncOpenSearch` (opensearch-py ConnectionPool)

The pipeline's Sender is the only retry layer (backoff, jitter, Retry-After, dead letters), so a client request
tries one node once: `max_retries=0`, no retry on timeout, no status retried. What is left to the client's pool
is which node a request goes to:
- one host: never parked (elastic_transport returns its only node; opensearch-py uses a DummyConnectionPool);
- every node dead: both pools resurrect one by force on each request, so the Sender's next attempt reaches the
  cluster as soon as a node answers;
- a dead node among live ones is skipped for DEAD_FIRST_S, doubling on each failure up to DEAD_MAX_S, then
  tried again. The clients' defaults keep it out much longer (elastic_transport 1 s doubling to 30 s;
  opensearch-py 60 s doubling to 32 min), so after an outage of the whole cluster the nodes that did not take
  the first request carried no traffic for half a minute to half an hour. A probe of a node that is still
  down costs one request, which the Sender retries on a live node.
"""

from __future__ import annotations

from typing import Any

DEAD_FIRST_S = 1.0
DEAD_DOUBLINGS = 3
DEAD_MAX_S = DEAD_FIRST_S * 2**DEAD_DOUBLINGS  # parked 1, 2, 4, then 8 s at most

_NO_RETRY: dict[str, Any] = {"max_retries": 0, "retry_on_timeout": False, "retry_on_status": ()}


def elasticsearch_options() -> dict[str, Any]:
    # elastic_transport parks for min(factor * 2**(n-1), max) seconds after the n-th failure in a row
    return {**_NO_RETRY, "dead_node_backoff_factor": DEAD_FIRST_S, "max_dead_node_backoff": DEAD_MAX_S}


def opensearch_options() -> dict[str, Any]:
    # opensearch-py parks for dead_timeout * 2**min(n-1, timeout_cutoff) seconds: the same schedule
    return {**_NO_RETRY, "dead_timeout": DEAD_FIRST_S, "timeout_cutoff": DEAD_DOUBLINGS}
