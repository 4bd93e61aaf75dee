"""The `_bulk` shipper shared by the elasticsearch and opensearch packages: encode, send, classify.

    BulkShipper(name, cfg, client, format="ecs")   a collector.pipeline.api Shipper; `client` is the product's
                                                   adapter (shippers/elasticsearch/client.py, shippers/opensearch/)
    encode_batch(batch, router, format) -> bytes   NDJSON: {"create":{"_index":..,"_id":Record.id}} + document
    classify(status, headers, body, n) -> Outcome  one HTTP answer → one Outcome (table in README.md)

The pipeline owns batching, retry, backoff and dead letters; this module never sleeps or resends.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from collector.ecs_convert import iso_time
from collector.pipeline.api import (
    Delivered,
    Health,
    Outcome,
    Partial,
    Record,
    Rejected,
    Request,
    Retry,
    TooLarge,
)

from .options import BulkConfig
from .template import load_template

log = logging.getLogger("quarry.shippers.elasticsearch")

# Only what classification needs comes back: a 1000-item answer shrinks from ~250 KB to ~25 KB.
FILTER_PATH = ("errors,items.*.status,items.*.error.type,items.*.error.reason,"
               "items.*.error.caused_by.type,items.*.error.caused_by.reason")
_DATASET_BAD = re.compile(r"[^a-z0-9_.]+")
FALLBACK_TABLE = "result"
MAX_TABLE = 92  # "osquery." + table <= 100 characters (data stream dataset limit)
AUTH_LOG_EVERY_S = 60.0


# --- the client adapter each package supplies -------------------------------------------------------------
class ConnectFailed(Exception):
    """No HTTP answer: connection refused/reset, DNS, TLS handshake, timeout."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON (dict), or text when the server did not answer JSON


def request_headers(body: bytes | None, *, gzipped: bool, ndjson: bool) -> dict[str, str]:
    """The headers of one request, the same for both products' clients."""
    headers = {"accept": "application/json"}
    if body is not None:
        headers["content-type"] = "application/x-ndjson" if ndjson else "application/json"
        if gzipped:
            headers["content-encoding"] = "gzip"
    return headers


class BulkClient(Protocol):
    flavor: str

    async def request(self, method: str, path: str, *, body: bytes | None = None, gzipped: bool = False,
                      params: dict[str, str] | None = None, ndjson: bool = False, timeout: float) -> Answer:
        """One HTTP request; an Answer for every HTTP status (errors included), ConnectFailed otherwise."""

    async def close(self) -> None: ...


# --- encode ---------------------------------------------------------------------------------------------
def dataset_table(table: str | None) -> str:
    """A table name as a valid data stream dataset part: lower case, [a-z0-9_.] only, at most 92 chars."""
    t = _DATASET_BAD.sub("_", (table or "").lower()).strip("_.")[:MAX_TABLE]
    return t or FALLBACK_TABLE


class Router:
    """Record → target name (bytes, JSON-escaped), cached per (table, kind)."""

    def __init__(self, template: str, namespace: str) -> None:
        self.template, self.namespace = template, namespace
        self._cache: dict[tuple[str | None, str], bytes] = {}

    def index(self, r: Record) -> bytes:
        if r.route:
            override = r.route.get("index")
            if override:
                return orjson.dumps(override)[1:-1]
        key = (r.table, r.kind)
        name = self._cache.get(key)
        if name is None:
            name = orjson.dumps(self.template.format(table=dataset_table(r.table), namespace=self.namespace,
                                                     kind=r.kind))[1:-1]
            if len(self._cache) > 4096:  # bounded: table names come from queries
                self._cache.clear()
            self._cache[key] = name
        return name


def wrap_osquery(r: Record) -> bytes:
    """An osquery results line as a document: data streams need @timestamp, the line goes under `osquery`."""
    ts = iso_time(r.time) if r.time > 0 else iso_time(time.time())
    return b'{"@timestamp":"' + ts.encode() + b'","event":{"id":' + orjson.dumps(r.id) + b'},"osquery":' + \
        r.payload + b"}"


def encode_batch(batch: list[Record], router: Router, fmt: str) -> bytes:
    parts: list[bytes] = []
    add = parts.append
    ecs = fmt == "ecs"
    for r in batch:
        add(b'{"create":{"_index":"' + router.index(r) + b'","_id":' + orjson.dumps(r.id) + b"}}\n")
        add(r.payload if ecs else wrap_osquery(r))
        add(b"\n")
    return b"".join(parts)


# --- classify -------------------------------------------------------------------------------------------
def retry_after(headers: dict[str, str]) -> float | None:
    v = next((val for k, val in headers.items() if k.lower() == "retry-after"), None)
    try:
        return max(0.0, float(v)) if v is not None else None
    except ValueError:
        return None  # an HTTP date: rare from search clusters; the pipeline's backoff applies


def _error_text(err: Any) -> str:
    if not isinstance(err, dict):
        return str(err)[:500]
    text = f"{err.get('type', 'error')}: {err.get('reason', '')}"
    cause = err.get("caused_by")
    if isinstance(cause, dict):
        text += f" (caused by {cause.get('type', '')}: {cause.get('reason', '')})"
    return text[:1000]


def _top_error(body: Any) -> str:
    if isinstance(body, dict) and "error" in body:
        return _error_text(body["error"])
    return str(body)[:300]


def classify(status: int, headers: dict[str, str], body: Any, n: int) -> Outcome:
    """One `_bulk` answer for n actions → Outcome. Items match the request by position."""
    if status == 413:
        return TooLarge(f"HTTP 413: {_top_error(body)}")
    if status in (401, 403):
        # credentials or privileges, or cluster_block_exception (read-only/flood stage): the events are fine,
        # the configuration or the cluster is not. Retried so nothing is lost; logged loudly by the shipper.
        return Retry(f"HTTP {status} (fix credentials/privileges or the cluster block): {_top_error(body)}",
                     retry_after(headers))
    if status in (404, 405):  # a wrong URL path prefix or proxy: configuration, not the events
        return Retry(f"HTTP {status} (check hosts/path): {_top_error(body)}", retry_after(headers))
    if status == 408 or status == 429 or (status >= 500 and status != 501):
        return Retry(f"HTTP {status}: {_top_error(body)}", retry_after(headers))
    if status >= 400:
        return Rejected(f"HTTP {status}: {_top_error(body)}")
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        return Retry(f"HTTP {status}: unexpected _bulk answer: {str(body)[:200]}")
    items = body["items"]
    if len(items) != n:
        return Retry(f"_bulk answered {len(items)} items for {n} actions")
    if body.get("errors") is False:
        return Delivered()
    return classify_items(items)


def item_verdict(status: int, error: Any) -> tuple[str, str]:
    """("ok" | "duplicate" | "retry" | "reject", reason) for one bulk item."""
    if status < 300:
        return "ok", ""
    if status == 409:  # create with our deterministic _id: the event is already indexed
        return "duplicate", ""
    reason = f"{status} {_error_text(error)}"
    if status == 429 or (status >= 500 and status != 501) or status == 408:
        return "retry", reason
    if status == 403:  # cluster_block_exception (read-only index, flood-stage disk): operator-fixable
        return "retry", reason
    return "reject", reason


def classify_items(items: list[Any]) -> Outcome:
    retry: list[int] = []
    rejected: list[tuple[int, str]] = []
    retry_reason = ""
    for i, item in enumerate(items):
        res = next(iter(item.values())) if isinstance(item, dict) and item else {}
        status = res.get("status", 0) if isinstance(res, dict) else 0
        verdict, reason = item_verdict(int(status), res.get("error") if isinstance(res, dict) else None)
        if verdict == "retry":
            retry.append(i)
            retry_reason = retry_reason or reason
        elif verdict == "reject":
            rejected.append((i, reason))
    if not retry and not rejected:
        return Delivered()
    if retry and len(retry) == len(items):
        return Retry(f"every item: {retry_reason}")
    return Partial(retry=tuple(retry), rejected=tuple(rejected), retry_reason=retry_reason)


def count_duplicates(body: Any) -> int:
    if not isinstance(body, dict) or body.get("errors") is not True:
        return 0
    return sum(1 for it in body.get("items", ()) if isinstance(it, dict) and
               any(isinstance(v, dict) and v.get("status") == 409 for v in it.values()))


# --- the shipper ----------------------------------------------------------------------------------------
class BulkShipper:
    """Shipper (collector.pipeline.api) writing `_bulk` `create` actions into data streams."""

    def __init__(self, name: str, cfg: BulkConfig, client: BulkClient, *, format: str = "ecs") -> None:
        self.name, self.type, self.format = name, cfg.flavor, format  # type: ignore[assignment]
        self.cfg, self.client = cfg, client
        self.router = Router(cfg.index, cfg.namespace)
        self._template_ok = not cfg.install_template
        self._template_lock = asyncio.Lock()
        self._last_auth_log = 0.0
        self.stats: dict[str, int] = {"requests": 0, "duplicates": 0, "item_retries": 0, "item_rejects": 0,
                                      "too_large": 0, "connect_errors": 0, "auth_errors": 0}

    async def open(self) -> None:
        """Probe the cluster and install the template; an unreachable cluster is logged, never raised."""
        h = await self.healthcheck()
        if not h.ok:
            log.warning("%s shipper %s: cluster not ready at start (%s); events wait in the pipeline",
                        self.type, self.name, h.detail)

    async def close(self) -> None:
        await self.client.close()

    async def healthcheck(self) -> Health:
        """GET /_cluster/health (works where GET / does not, e.g. ES integ-test builds), then the template."""
        t = self.cfg.healthcheck_timeout_s
        try:
            a = await asyncio.wait_for(self.client.request("GET", "/_cluster/health", timeout=t), t + 1)
        except (ConnectFailed, TimeoutError) as e:
            return Health(False, f"cluster not reachable: {e or type(e).__name__}")
        if a.status >= 400 or not isinstance(a.body, dict):
            return Health(False, f"cluster health answered HTTP {a.status}: {_top_error(a.body)}")
        detail = f"cluster {a.body.get('cluster_name', '?')} status {a.body.get('status', '?')}"
        err = await self._ensure_template()
        if err:
            return Health(False, f"{detail}; {err}")
        return Health(a.body.get("status") in ("green", "yellow"), detail)

    async def _ensure_template(self) -> str:
        """Put the index template once (PUT is idempotent). '' when installed or not wanted, else why not."""
        if self._template_ok:
            return ""
        async with self._template_lock:
            if self._template_ok:
                return ""
            body = orjson.dumps(load_template(self.cfg.flavor))
            t = self.cfg.healthcheck_timeout_s
            try:
                a = await asyncio.wait_for(self.client.request(
                    "PUT", f"/_index_template/{self.cfg.template_name}", body=body, timeout=t), t + 1)
            except (ConnectFailed, TimeoutError) as e:
                return f"index template not installed: {e or type(e).__name__}"
            if a.status >= 300:
                log.error("%s shipper %s: index template %s refused: HTTP %d %s", self.type, self.name,
                          self.cfg.template_name, a.status, _top_error(a.body))
                return f"index template refused: HTTP {a.status}: {_top_error(a.body)}"
            log.info("%s shipper %s: index template %s installed", self.type, self.name, self.cfg.template_name)
            self._template_ok = True
            return ""

    def encode(self, batch: list[Record]) -> Request:
        body = encode_batch(batch, self.router, self.format)
        return Request(records=batch, body=body, size=len(body))

    async def send(self, request: Request) -> Outcome:
        n = len(request.records)
        if n == 0:
            return Delivered()
        if not self._template_ok:
            # writing before the template exists would auto-create the target with dynamic mappings for good
            err = await self._ensure_template()
            if err:
                return Retry(err)
        body: bytes = request.body
        level = self.cfg.compression_level
        data = gzip.compress(body, compresslevel=level) if level else body
        t = self.cfg.timeout_s
        self.stats["requests"] += 1
        try:
            a = await asyncio.wait_for(self.client.request(
                "POST", "/_bulk", body=data, gzipped=bool(level), params={"filter_path": FILTER_PATH},
                ndjson=True, timeout=t), t + 1)
        except (ConnectFailed, TimeoutError) as e:
            self.stats["connect_errors"] += 1
            return Retry(f"{self.type} not reachable: {e or 'timed out after %gs' % t}")
        outcome = classify(a.status, a.headers, a.body, n)
        self._count(a, outcome)
        return outcome

    def _count(self, a: Answer, outcome: Outcome) -> None:
        self.stats["duplicates"] += count_duplicates(a.body)
        if isinstance(outcome, Partial):
            self.stats["item_retries"] += len(outcome.retry)
            self.stats["item_rejects"] += len(outcome.rejected)
        elif isinstance(outcome, TooLarge):
            self.stats["too_large"] += 1
        if a.status in (401, 403):
            self.stats["auth_errors"] += 1
            now = time.monotonic()
            if now - self._last_auth_log >= AUTH_LOG_EVERY_S:
                self._last_auth_log = now
                log.error("%s shipper %s: the cluster refuses our requests (HTTP %d: %s); events are kept and "
                          "retried until the credentials, privileges (auto_configure, create_doc) or the "
                          "cluster block are fixed", self.type, self.name, a.status, _top_error(a.body))
