"""Smoke tests: the official Elasticsearch 9 client and opensearch-py against the real servers."""

from __future__ import annotations

import pytest
from elasticsearch import AsyncElasticsearch
from elasticsearch.helpers import async_bulk as es_bulk
from opensearchpy import AsyncOpenSearch
from opensearchpy.helpers import async_bulk as os_bulk

pytestmark = pytest.mark.realserver
N = 10_000


def _doc(i: int) -> dict:
    return {"seq": i, "host": f"h{i % 13}", "message": f"event number {i}", "tags": ["a", str(i % 3)]}


def _actions(index: str):
    for i in range(N):
        yield {"_op_type": "create", "_index": index, "_id": f"id-{i}", "_source": _doc(i)}


async def _check(client, index: str, bulk) -> None:
    ok, errors = await bulk(client, _actions(index), chunk_size=1000, raise_on_error=False)
    assert (ok, errors) == (N, [])
    await client.indices.refresh(index=index)
    assert (await client.count(index=index))["count"] == N
    # every document back, exactly
    got = {}
    resp = await client.search(index=index, body={"query": {"match_all": {}}, "size": N, "sort": [{"seq": "asc"}]})
    for hit in resp["hits"]["hits"]:
        got[hit["_id"]] = hit["_source"]
    assert got == {f"id-{i}": _doc(i) for i in range(N)}
    # create is idempotent-safe: a second create of the same _id is a 409, not a duplicate
    ok, errors = await bulk(client, [{"_op_type": "create", "_index": index, "_id": "id-0", "_source": _doc(0)}],
                            raise_on_error=False)
    assert ok == 0 and errors[0]["create"]["status"] == 409
    await client.indices.refresh(index=index)
    assert (await client.count(index=index, body={"query": {"term": {"seq": 5}}}))["count"] == 1


async def test_elasticsearch_bulk_10k(elasticsearch_server, es_index):
    async with AsyncElasticsearch(elasticsearch_server.url, request_timeout=60) as es:
        await _check(es, es_index, es_bulk)


async def test_opensearch_bulk_10k(opensearch_server, os_index):
    client = AsyncOpenSearch(opensearch_server.url, timeout=60)
    try:
        await _check(client, os_index, os_bulk)
    finally:
        await client.close()
