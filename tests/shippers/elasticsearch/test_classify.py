from __future__ import annotations

from collector.pipeline.api import Delivered, Partial, Rejected, Retry, TooLarge
from shippers.elasticsearch.bulk import classify


def _item(status: int, etype: str = "", reason: str = "") -> dict:
    res: dict = {"status": status}
    if etype:
        res["error"] = {"type": etype, "reason": reason}
    return {"create": res}


def test_mixed_items_give_exact_indices() -> None:
    items = [_item(201), _item(429, "es_rejected_execution_exception", "queue full"),
             _item(400, "document_parsing_exception", "failed to parse field [process.pid]"),
             _item(409, "version_conflict_engine_exception", "exists"), _item(503, "unavailable_shards_exception", "x"),
             _item(404, "index_not_found_exception", "no such index"), _item(201)]
    out = classify(200, {}, {"errors": True, "items": items}, 7)
    assert out == Partial(retry=(1, 4), rejected=(
        (2, "400 document_parsing_exception: failed to parse field [process.pid]"),
        (5, "404 index_not_found_exception: no such index")),
        retry_reason="429 es_rejected_execution_exception: queue full")


def test_409_counts_as_delivered() -> None:
    items = [_item(409, "version_conflict_engine_exception", "exists"), _item(201)]
    assert classify(200, {}, {"errors": True, "items": items}, 2) == Delivered()
    assert classify(200, {}, {"errors": False, "items": [_item(201)]}, 1) == Delivered()


def test_all_items_retry_is_retry() -> None:
    out = classify(200, {}, {"errors": True, "items": [_item(429, "es_rejected_execution_exception", "busy")] * 2}, 2)
    assert isinstance(out, Retry) and "429" in out.reason


def test_whole_request_statuses() -> None:
    assert isinstance(classify(413, {}, "too big", 3), TooLarge)
    r = classify(429, {"Retry-After": "7"}, {"error": {"type": "x", "reason": "y"}}, 3)
    assert r == Retry("HTTP 429: x: y", 7.0)
    assert isinstance(classify(503, {}, {}, 3), Retry)
    assert isinstance(classify(401, {}, {"error": {"type": "security_exception", "reason": "no"}}, 3), Retry)
    assert isinstance(classify(403, {}, {}, 3), Retry)
    assert isinstance(classify(400, {}, {"error": {"type": "illegal_argument_exception", "reason": "bad"}}, 3),
                      Rejected)


def test_item_count_mismatch_is_retried() -> None:
    assert isinstance(classify(200, {}, {"errors": False, "items": [_item(201)]}, 2), Retry)
