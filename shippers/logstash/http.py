"""Logstash `http` mode: POST the batch as JSON to the http input (logstash-input-http) with httpx.

Body `json_array` (default): `[ev,ev,...]` as `application/json`, which the input's stock `json` codec turns
into one event per element. Body `ndjson`: one event per line as `application/x-ndjson`, for an input with
`additional_codecs => {"application/x-ndjson" => "json_lines"}`. Classification: 2xx delivered; 408, 429 and
5xx other than 501 (the input answers 429 when its queue is full), connect errors and timeouts → Retry
(honouring Retry-After); 413 → TooLarge (the pipeline splits); other 4xx and 501 → Rejected.
"""

from __future__ import annotations

import gzip
import logging
import ssl

import httpx

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

from .config import LogstashConfig
from .encode import Encoded, encode_events

log = logging.getLogger("quarry.shippers.logstash")


def retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from Logstash; the pipeline's backoff applies


def classify(status: int, text: str, after: str | None = None) -> Outcome:
    if 200 <= status < 300:
        return Delivered()
    reason = f"HTTP {status}: {text[:200].strip()}" if text.strip() else f"HTTP {status}"
    if status == 413:
        return TooLarge(reason)
    if status in (408, 429) or (status >= 500 and status != 501):
        return Retry(reason, retry_after(after))
    return Rejected(reason)


class HttpShipper:
    type = "logstash"

    def __init__(self, name: str, cfg: LogstashConfig, *, format: str = "osquery",
                 tls: ssl.SSLContext | None = None) -> None:
        self.name, self.format, self.cfg = name, format, cfg
        self._verify: ssl.SSLContext | bool = tls if tls is not None else True
        self._client: httpx.AsyncClient | None = None
        ctype = "application/json" if cfg.body == "json_array" else "application/x-ndjson"
        self._headers = {"Content-Type": ctype, **dict(cfg.headers)}
        if cfg.gzip:
            self._headers["Content-Encoding"] = "gzip"

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            auth = httpx.BasicAuth(self.cfg.user, self.cfg.password or "") if self.cfg.user else None
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.cfg.timeout_s, connect=self.cfg.connect_timeout_s),
                verify=self._verify, auth=auth, headers=self._headers)
        return self._client

    async def open(self) -> None:
        self._http()

    async def healthcheck(self) -> Health:
        # A GET creates no event; any HTTP answer means the input is listening.
        try:
            r = await self._http().get(self.cfg.url)
        except httpx.HTTPError as e:
            return Health(False, f"{type(e).__name__}: {e}")
        return Health(r.status_code < 500, f"HTTP {r.status_code}")

    async def close(self) -> None:
        c, self._client = self._client, None
        if c is not None:
            await c.aclose()

    def encode(self, batch: list[Record]) -> Request:
        enc = encode_events(batch, self.cfg.beat, self.format)
        if self.cfg.body == "json_array":
            body = b"[" + b",".join(enc.events) + b"]"
        else:
            body = b"".join(ev + b"\n" for ev in enc.events)
        if self.cfg.gzip:
            body = gzip.compress(body, 6)
        return Request(records=list(batch), body=(enc, body), size=enc.size)

    async def send(self, request: Request) -> Outcome:
        enc, body = request.body
        enc_: Encoded = enc
        if enc_.events:
            try:
                r = await self._http().post(self.cfg.url, content=body)
            except httpx.TimeoutException as e:
                out: Outcome = Retry(f"timeout: {type(e).__name__} after {self.cfg.timeout_s:g} s")
            except httpx.HTTPError as e:
                out = Retry(f"connection error: {type(e).__name__}: {e}")
            else:
                out = classify(r.status_code, r.text, r.headers.get("Retry-After"))
        else:
            out = Delivered()
        if not enc_.rejected:
            return out
        return _merge(out, enc_, len(request.records))


def _merge(out: Outcome, enc: Encoded, total: int) -> Outcome:
    """Fold encode-time rejections (not a JSON object) into the answer for the rest of the batch."""
    rejected = list(enc.rejected)
    if isinstance(out, Delivered):
        if len(rejected) == total:
            return Rejected("; ".join(sorted({r for _, r in rejected})))
        return Partial(rejected=tuple(rejected))
    if isinstance(out, Rejected):
        return Rejected(out.reason)
    if isinstance(out, Retry):
        return Partial(retry=tuple(enc.index), rejected=tuple(rejected), retry_reason=out.reason, after=out.after)
    return out  # TooLarge: the pipeline splits and the halves are encoded again
