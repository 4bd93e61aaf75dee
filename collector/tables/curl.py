"""curl: one HTTP(S) GET per `url` constraint, as osquery's curl table (user agent "osquery" unless given).

http.client rather than urllib: osquery's client reports 4xx/5xx bodies as results and does not follow
redirects, and urllib raises on both. round_trip_time is in microseconds, bytes is the body length.
"""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'curl',
    'Perform an http request and return stats about it.',
    columns=[
        col('url', TEXT, 'The url for the request', index=True, required=True, optimized=True),
        col('method', TEXT, 'The HTTP method for the request'),
        col('user_agent', TEXT, 'The user-agent string to use for the request', additional=True),
        col('response_code', INTEGER, 'The HTTP status code for the response'),
        col('round_trip_time', BIGINT, 'Time taken to complete the request'),
        col('bytes', BIGINT, 'Number of bytes in the response'),
        col('result', TEXT, 'The HTTP response body'),
    ],
    platforms=('darwin', 'linux', 'windows'),
    examples=("select url, round_trip_time, response_code from curl where url = 'https://github.com/osquery/osquery'",),
)


USER_AGENT = "osquery"
TIMEOUT = 30.0


def generate(ctx: Context) -> Iterator[Row]:
    urls = ctx.eq("url") or set()
    agents = ctx.eq("user_agent")
    if agents is not None and len(agents) > 1:
        ctx.note("can only accept a single user_agent")
        return
    agent = next(iter(agents)) if agents else USER_AGENT
    failed = 0
    for url in sorted(str(u) for u in urls):
        ctx.check()
        row: Row = {"url": url, "method": "GET", "user_agent": agent}
        try:
            row.update(request(url, agent))
        except (OSError, http.client.HTTPException, ValueError) as e:
            failed += 1
            ctx.note(f"request to {url} failed: {e}")
        yield row
    if failed:
        ctx.missing(["response_code", "round_trip_time", "bytes", "result"], "request failed", None, rows=failed)


def request(url: str, agent: str, timeout: float = TIMEOUT) -> Row:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"unsupported URL {url!r}")
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        start = time.monotonic()
        conn.request("GET", target, headers={"User-Agent": agent, "Accept": "*/*"})
        resp = conn.getresponse()
        body = resp.read()
        elapsed = time.monotonic() - start
    finally:
        conn.close()
    text = body.decode("utf-8", "replace")
    return {"response_code": resp.status, "round_trip_time": int(elapsed * 1_000_000), "result": text,
            "bytes": len(body)}
