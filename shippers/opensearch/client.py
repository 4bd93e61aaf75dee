"""Adapter from opensearch-py's `AsyncOpenSearch` (OpenSearch 2.x) to shippers.elasticsearch.bulk.BulkClient.

elasticsearch-py refuses servers without `X-Elastic-Product` (shipping.md §3.2), hence this client. Bodies are
pre-encoded and pre-gzipped NDJSON; no client-side retries and short node parking (shippers/elasticsearch/pool.py):
the pipeline owns retry.
opensearch-py does not expose response headers of failed requests, so `Retry-After` is not seen here.
"""

from __future__ import annotations

from typing import Any

from opensearchpy import AsyncOpenSearch
from opensearchpy import exceptions as oe

from shippers.elasticsearch.bulk import Answer, ConnectFailed, request_headers
from shippers.elasticsearch.options import BulkConfig
from shippers.elasticsearch.pool import opensearch_options


class OpenSearchClient:
    flavor = "opensearch"

    def __init__(self, cfg: BulkConfig) -> None:
        kw: dict[str, Any] = {"hosts": list(cfg.hosts), "timeout": cfg.timeout_s, "http_compress": False,
                              **opensearch_options()}
        if cfg.username:
            kw["http_auth"] = (cfg.username, cfg.password)
        if cfg.api_key:
            kw["headers"] = {"authorization": f"ApiKey {cfg.api_key}"}
        ctx = cfg.ssl_context()
        if ctx is not None:
            kw["ssl_context"] = ctx
        self.os = AsyncOpenSearch(**kw)

    async def request(self, method: str, path: str, *, body: bytes | None = None, gzipped: bool = False,
                      params: dict[str, str] | None = None, ndjson: bool = False, timeout: float) -> Answer:
        headers = request_headers(body, gzipped=gzipped, ndjson=ndjson)
        try:
            data = await self.os.transport.perform_request(method, path, params=params, body=body,
                                                           headers=headers, timeout=timeout)
        except (oe.ConnectionError, oe.ConnectionTimeout) as e:  # no HTTP answer (status_code "N/A")
            raise ConnectFailed(f"{type(e).__name__}: {e.error}") from e
        except oe.TransportError as e:
            status = e.status_code if isinstance(e.status_code, int) else 0
            if not status:
                raise ConnectFailed(f"{type(e).__name__}: {e.error}") from e
            return Answer(status, {}, e.info)
        return Answer(200, {}, data)

    async def close(self) -> None:
        # the transport closes only the connections it holds as alive; a parked one would leak its session
        pool = self.os.transport.connection_pool
        parked = [c for c in getattr(pool, "orig_connections", ()) if c not in pool.connections]
        await self.os.close()
        for conn in parked:
            await conn.close()
