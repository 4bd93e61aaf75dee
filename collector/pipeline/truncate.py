"""Making an event that a destination refuses as too large fit, with a marker, instead of dead-lettering it.

A single event larger than the destination accepts (HEC's request size, Kafka's max.request.size) is cut
down to the shipper's `max_event_bytes`: the longest string values are shortened (each ends with
"…[truncated N bytes]") until the event fits, and the event says so: `tags` gets "quarry_truncated" in ECS
documents (an ECS field), osquery results lines get a top-level `quarry_truncated` list of the cut fields.
Structure, keys, numbers and short values are kept, so the event still parses and routes the same way.
When cutting strings cannot make it fit (thousands of small fields), fit() gives up and the caller
dead-letters the event as before.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from collector.pipeline.api import Record

MARK_TAG = "quarry_truncated"
KEEP_CHARS = 256  # what is left of a cut value at least: enough to recognise it
MAX_ROUNDS = 64


def _strings(node: Any, path: tuple[Any, ...], out: list[tuple[int, tuple[Any, ...]]]) -> None:
    if isinstance(node, str):
        out.append((len(node.encode()), path))
    elif isinstance(node, dict):
        for k, v in node.items():
            _strings(v, (*path, k), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _strings(v, (*path, i), out)


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] = value


def _cut(original: str, current: int, drop: int) -> str:
    """`original` cut to `current - drop` bytes or less (never below KEEP_CHARS bytes), with its marker.

    A value cut twice is cut again from its original, so the marker counts every byte removed.
    """
    raw = original.encode()
    keep = max(KEEP_CHARS, current - drop - 40)
    kept = raw[:keep].decode(errors="ignore")  # never split a UTF-8 sequence
    return f"{kept}…[truncated {len(raw) - len(kept.encode())} bytes]"


def fit(payload: bytes, limit: int, fmt: str) -> tuple[bytes, list[str]] | None:
    """(smaller payload, cut field paths) when the JSON `payload` can be made to fit `limit` bytes."""
    if len(payload) <= limit:
        return payload, []
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    cut: list[str] = []
    originals: dict[tuple[Any, ...], str] = {}
    for _ in range(MAX_ROUNDS):
        marker = 64 + sum(len(c) + 4 for c in cut)  # room for the tag or the list of cut fields
        excess = len(orjson.dumps(doc)) + marker - limit
        if excess <= 0:
            break
        found: list[tuple[int, tuple[Any, ...]]] = []
        _strings(doc, (), found)
        found = [f for f in found if f[0] > KEEP_CHARS + 48]
        if not found:
            return None
        size, path = max(found, key=lambda f: f[0])
        original = originals.setdefault(path, _get(doc, path))
        _set(doc, path, _cut(original, size, excess))
        name = ".".join(str(p) for p in path)
        if name not in cut:
            cut.append(name)
    else:
        return None
    if fmt == "ecs":
        tags = doc.get("tags")
        doc["tags"] = [*(tags if isinstance(tags, list) else [tags] if tags else []), MARK_TAG]
    else:
        doc[MARK_TAG] = cut
    out = orjson.dumps(doc)
    return (out, cut) if len(out) <= limit else None


def fit_record(record: Record, limit: int, fmt: str) -> tuple[Record, list[str]] | None:
    """The record with a payload that fits, keeping its id (so a duplicate still dedupes downstream)."""
    got = fit(record.payload, limit, fmt)
    if got is None or not got[1]:
        return None
    return replace(record, payload=got[0]), got[1]
