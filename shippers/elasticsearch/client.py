"""Adapter from the official async client (elasticsearch-py 8/9, `AsyncElasticsearch`) to bulk.BulkClient.

The client is used as a connection pool with auth, Cloud ID and TLS; the body is our own pre-encoded
(and pre-gzipped, at a cheap level: the client's own http_compress uses gzip level 9) NDJSON, sent through
`perform_request`. No client-side retries and short node parking (pool.py): the pipeline owns retry.
"""

from __future__ import annotations

from typing import Any

from elastic_transport import ApiError as TransportApiError
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from .bulk import Answer, ConnectFailed, request_headers
from .options import BulkConfig
from .pool import elasticsearch_options


class ElasticsearchClient:
    flavor = "elasticsearch"

    def __init__(self, cfg: BulkConfig) -> None:
        kw: dict[str, Any] = {"request_timeout": cfg.timeout_s, "http_compress": False, **elasticsearch_options()}
        if cfg.cloud_id:
            kw["cloud_id"] = cfg.cloud_id
        else:
            kw["hosts"] = list(cfg.hosts)
        if cfg.api_key:
            kw["api_key"] = cfg.api_key
        elif cfg.username:
            kw["basic_auth"] = (cfg.username, cfg.password)
        ctx = cfg.ssl_context()
        if ctx is not None:
            kw["ssl_context"] = ctx
        self.es = AsyncElasticsearch(**kw)

    async def request(self, method: str, path: str, *, body: bytes | None = None, gzipped: bool = False,
                      params: dict[str, str] | None = None, ndjson: bool = False, timeout: float) -> Answer:
        headers = request_headers(body, gzipped=gzipped, ndjson=ndjson)
        try:
            resp = await self.es.options(request_timeout=timeout).perform_request(
                method, path, params=params, headers=headers, body=body)
        except (ApiError, TransportApiError) as e:
            return Answer(int(e.meta.status), dict(e.meta.headers), e.body)
        except TransportError as e:  # connection refused/reset, timeout, TLS: no HTTP answer
            raise ConnectFailed(f"{type(e).__name__}: {e.message}") from e
        return Answer(int(resp.meta.status), dict(resp.meta.headers), resp.body)

    async def close(self) -> None:
        await self.es.close()
