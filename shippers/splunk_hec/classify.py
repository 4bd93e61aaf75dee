"""HEC answers → Outcomes (shared/reference/shipping.md §2.6 and §7).

| answer | outcome |
|---|---|
| 2xx (code 0) | Delivered (with `ack: true`: only once the ackId is acknowledged) |
| connect error, timeout, other transport error | Retry |
| HTTP 408, 429, 5xx except 501; HEC code 8, 9, 18, 19, 20 (whatever the status) | Retry, after = Retry-After |
| HTTP 413 | TooLarge (the pipeline splits; one event: dead letter) |
| code 6 with `invalid-event-number` n | Partial: events before n delivered (Splunk indexed them), n rejected, after n retried |
| code 15 with `invalid-event-number` n | Partial: n rejected, every other event retried (no claim that earlier ones were kept) |
| any other 4xx, 501, HEC codes 1-7, 10-16, 21, 22 | Rejected with "HTTP <status> code <n>: <text>" |
| 1xx/3xx and other unexpected statuses | Retry (a misrouted URL must not dead-letter the stream) |
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from typing import Any

from collector.pipeline.api import Delivered, Outcome, Partial, Rejected, Retry, TooLarge

RETRY_CODES = frozenset({8, 9, 18, 19, 20})
RETRY_STATUS = frozenset({408, 429})


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent or unreadable."""
    v = headers.get("retry-after")
    if not v:
        return None
    v = v.strip()
    try:
        return max(0.0, float(v))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_reply(body: bytes) -> dict[str, Any]:
    """The HEC JSON status object, or {"text": <plain text>} for non-JSON replies (proxies, OTel auth errors)."""
    try:
        obj = json.loads(body) if body else {}
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        return obj
    return {"text": body[:500].decode("utf-8", "replace").strip()}


def describe(status: int, reply: Mapping[str, Any]) -> str:
    code = reply.get("code")
    text = reply.get("text") or ""
    s = f"HTTP {status}" + (f" code {code}" if isinstance(code, int) else "") + (f": {text}" if text else "")
    n = reply.get("invalid-event-number")
    if n is not None:
        s += f" (invalid-event-number {n})"
    return s


def classify(status: int, headers: Mapping[str, str], reply: Mapping[str, Any], count: int) -> Outcome:
    """The outcome of one data request of `count` events that got an HTTP answer."""
    code = reply.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    reason = describe(status, reply)
    if 200 <= status < 300 and (code is None or code == 0):
        return Delivered()
    if code in RETRY_CODES or status in RETRY_STATUS or (500 <= status < 600 and status != 501):
        return Retry(reason, retry_after(headers))
    if status == 413:
        return TooLarge(reason)
    bad = reply.get("invalid-event-number")
    if code in (6, 15) and isinstance(bad, int) and not isinstance(bad, bool) and 0 <= bad < count:
        rest = range(bad + 1, count) if code == 6 else (i for i in range(count) if i != bad)
        return Partial(retry=tuple(rest), rejected=((bad, reason),),
                       retry_reason=f"resent after event {bad} of the request was refused: {reason}")
    if 400 <= status < 600 or (code is not None and code != 0):
        return Rejected(reason)
    return Retry(f"unexpected answer {reason}")
