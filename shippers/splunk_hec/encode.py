"""A batch of Records → one HEC `/services/collector/event` body: concatenated JSON envelopes, gzip'd.

One envelope per record, in order, so HEC's `invalid-event-number` is also the index into request.records:

    {"time":1795773600.250,"host":"web-1","source":"quarry","sourcetype":"osquery:results","index":"osquery",
     "fields":{"quarry_event_id":"<id>","query_name":"<name>","quarry_kind":"result"},"event":{...payload...}}

`time` is written as fixed-point seconds with milliseconds (HEC rejects scientific notation with code 15) and
left out when the record has no time (HEC then uses the arrival time). `index` only when configured or routed.
The payload (an osquery results line or an ECS document) is spliced in as the `event` object after a parse
check; a payload that is not a JSON object is sent as a JSON string instead, never dropped, and counted.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

from collector.pipeline.api import Record

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_loads = json.loads


def compress(raw: bytes, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 31)  # wbits 31: gzip container
    return c.compress(raw) + c.flush()


@dataclass
class Encoded:
    raw: bytes  # the uncompressed body
    count: int
    gzip: bool
    too_large: str | None = None  # set when the body exceeds max_request_bytes: send() answers TooLarge
    not_objects: int = 0  # payloads sent as a JSON string because they were not a JSON object
    wire: bytes | None = None  # the gzip'd body, made once by send() (in a thread: zlib releases the GIL)

    @property
    def raw_size(self) -> int:
        return len(self.raw)


class Envelopes:
    """Caches the constant JSON fragments (host, source/sourcetype/index) between batches."""

    def __init__(self, *, source: str, sourcetype: str, status_sourcetype: str, index: str | None,
                 host: str | None, fields: Mapping[str, str], gzip: bool, gzip_level: int,
                 max_request_bytes: int) -> None:
        self.source, self.sourcetype, self.status_sourcetype = source, sourcetype, status_sourcetype
        self.index, self.host = index, host
        self.static_fields = "".join(f",{_dumps(k)}:{_dumps(v)}" for k, v in fields.items())
        self.gzip, self.gzip_level, self.max_request_bytes = gzip, gzip_level, max_request_bytes
        self._meta: dict[tuple[str, str, str | None], str] = {}
        self._hosts: dict[str, str] = {}

    def _meta_json(self, host: str, sourcetype: str, index: str | None) -> str:
        key = (host, sourcetype, index)
        s = self._meta.get(key)
        if s is None:
            s = f'"host":{_dumps(host)},"source":{_dumps(self.source)},"sourcetype":{_dumps(sourcetype)}'
            if index:
                s += f',"index":{_dumps(index)}'
            if len(self._meta) > 1024:  # bounded: hosts/routes vary little, but never grow without limit
                self._meta.clear()
            self._meta[key] = s
        return s

    def envelope(self, r: Record) -> tuple[bytes, bool]:
        """One envelope; the flag says whether the payload was a JSON object."""
        route = r.route
        st = route.get("sourcetype") or (self.status_sourcetype if r.kind == "status" else self.sourcetype)
        meta = self._meta_json(self.host or r.host or "unknown", st, route.get("index") or self.index)
        head = f'{{"time":{r.time:.3f},{meta}' if r.time > 0 else f"{{{meta}"
        fields = (f',"fields":{{"quarry_event_id":{_dumps(r.id)},"query_name":{_dumps(r.name)},'
                  f'"quarry_kind":"{r.kind}"{self.static_fields}}},"event":')
        payload = r.payload
        try:
            ok = payload[:1] == b"{" and isinstance(_loads(payload), dict)
        except ValueError:
            ok = False
        if not ok:
            payload = _dumps(payload.decode("utf-8", "replace")).encode()
        return b"".join((head.encode(), fields.encode(), payload, b"}")), ok

    def encode(self, batch: list[Record]) -> Encoded:
        parts = []
        bad = 0
        for r in batch:
            env, ok = self.envelope(r)
            parts.append(env)
            bad += not ok
        raw = b"\n".join(parts)  # newline-separated concatenated objects: valid HEC, readable in captures
        too_large = None
        if len(raw) > self.max_request_bytes:
            too_large = (f"request of {len(batch)} event(s) is {len(raw)} bytes, more than max_request_bytes "
                         f"({self.max_request_bytes})")
        return Encoded(raw, len(batch), self.gzip, too_large, bad)
