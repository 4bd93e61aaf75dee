"""Events as Logstash receives them: the Record's JSON object with `@metadata` (and `@timestamp`) spliced in.

Logstash moves a top-level `@metadata` object into the event's metadata (beats and http inputs alike), where
pipelines read `[@metadata][beat]` for index names and `[@metadata][_id]` for `document_id`, as with Filebeat.
The splice avoids parsing and re-serialising every payload.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from collector import __version__
from collector.pipeline.api import Record


@dataclass
class Encoded:
    events: list[bytes] = field(default_factory=list)
    index: list[int] = field(default_factory=list)  # events[k] is request.records[index[k]]
    rejected: list[tuple[int, str]] = field(default_factory=list)
    size: int = 0


def iso_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wrap(rec: Record, beat: str, add_timestamp: bool) -> bytes | None:
    """The event bytes, or None when the payload is not a JSON object."""
    p = rec.payload
    if not p.startswith(b"{"):
        p = p.lstrip()
        if not p.startswith(b"{"):
            return None
    meta = (f'{{"@metadata":{{"beat":{json.dumps(beat)},"type":"_doc","version":"{__version__}",'
            f'"_id":{json.dumps(rec.id)}}}')
    if add_timestamp and rec.time:
        meta += f',"@timestamp":"{iso_time(rec.time)}"'
    rest = p[1:]
    if rest.lstrip().startswith(b"}"):
        return meta.encode() + rest
    return meta.encode() + b"," + rest


def encode_events(batch: list[Record], beat: str, fmt: str) -> Encoded:
    # osquery lines carry no @timestamp (Logstash would stamp the arrival time); ECS documents have their own.
    add_ts = fmt != "ecs"
    out = Encoded()
    for i, rec in enumerate(batch):
        ev = wrap(rec, beat, add_ts)
        if ev is None:
            out.rejected.append((i, "payload is not a JSON object"))
            continue
        out.events.append(ev)
        out.index.append(i)
        out.size += len(ev)
    return out
