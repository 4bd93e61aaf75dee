"""A small, protocol-faithful Splunk HTTP Event Collector server for tests.

It stands in **only** for the Splunk behaviours that the real-server harness's OpenTelemetry
Collector ``splunkhec`` receiver does not reproduce:

* the HEC JSON status bodies ``{"text": ..., "code": n}`` with Splunk's HTTP statuses for codes 0-22
  (token disabled/required/invalid, invalid authorization, query-string auth, no data, invalid data
  format with ``invalid-event-number``, incorrect index, internal error, server busy, channel
  missing/invalid, event required/blank, ACK disabled, indexed-field errors, health codes 17-22);
* indexer acknowledgement: per-channel ``ackId`` in the reply to every request on an ack-enabled
  token, and ``POST /services/collector/ack`` answering ``{"acks": {"<id>": bool}}`` where ``true`` is
  reported once and then forgotten, ``false`` means still pending (the test decides when ids become
  indexed, or they are indexed at once);
* ``503 {"text":"Server is busy","code":9}`` (and health 18/19/20) on demand.

Everything else (real event storage, search, metrics events) is out of scope: use the OTel receiver
(``hec_receiver`` fixture) for "what did the server receive" tests. Behaviour follows the tables in
``shared/reference/shipping.md`` section 2. Standard library only (``http.server`` in a thread).

Usage::

    with FakeHec(tokens={"t1": HecToken(ack=True)}) as hec:
        hec.url  # http://127.0.0.1:<port>
        hec.busy = True                # next requests get 503 code 9
        hec.fail_next(2, code=8)       # two 500 code 8 replies
        hec.auto_ack = False           # acks stay pending until hec.index_pending()
        hec.events                     # list of ReceivedEvent
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# code -> (HTTP status, text), from Splunk's "possible error codes" table (shipping.md 2.6)
HEC_CODES: dict[int, tuple[int, str]] = {
    0: (200, "Success"),
    1: (403, "Token disabled"),
    2: (401, "Token is required"),
    3: (401, "Invalid authorization"),
    4: (403, "Invalid token"),
    5: (400, "No data"),
    6: (400, "Invalid data format"),
    7: (400, "Incorrect index"),
    8: (500, "Internal server error"),
    9: (503, "Server is busy"),
    10: (400, "Data channel is missing"),
    11: (400, "Invalid data channel"),
    12: (400, "Event field is required"),
    13: (400, "Event field cannot be blank"),
    14: (400, "ACK is disabled"),
    15: (400, "Error in handling indexed fields"),
    16: (400, "Query string authorization is not enabled"),
    17: (200, "HEC is healthy"),
    18: (503, "HEC is unhealthy, queues are full"),
    19: (503, "HEC is unhealthy, ack service unavailable"),
    20: (503, "HEC is unhealthy, queues are full, ack service unavailable"),
    21: (400, "Invalid token"),
    22: (400, "Token disabled"),
}

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
EVENT_PATHS = {"/services/collector", "/services/collector/event", "/services/collector/event/1.0"}
RAW_PATHS = {"/services/collector/raw", "/services/collector/raw/1.0"}
HEALTH_PATHS = {"/services/collector/health", "/services/collector/health/1.0"}
ACK_PATH = "/services/collector/ack"


@dataclass
class HecToken:
    enabled: bool = True
    ack: bool = False  # indexer acknowledgement (useACK) on this token
    indexes: set[str] | None = None  # allowed indexes; None = any
    query_auth: bool = False  # allow ?token=


@dataclass
class ReceivedEvent:
    token: str
    channel: str | None
    envelope: dict[str, Any]  # the decoded HEC event object (raw: {"event": line, ...query metadata})
    ack_id: int | None


@dataclass
class _Channel:
    next_id: int = 0
    pending: set[int] = field(default_factory=set)
    indexed: set[int] = field(default_factory=set)


class _HecError(Exception):
    def __init__(self, code: int, **extra: Any) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra


def hec_body(code: int, **extra: Any) -> dict[str, Any]:
    return {"text": HEC_CODES[code][1], "code": code, **extra}


def _split_events(body: bytes) -> list[Any]:
    """Concatenated JSON objects (``{..}{..}`` or newline-separated). Raises _HecError(6) with
    ``invalid-event-number`` at the first one that does not parse; returns those before it too."""
    dec = json.JSONDecoder()
    text = body.decode("utf-8")
    out: list[Any] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            return out
        try:
            obj, i = dec.raw_decode(text, i)
        except ValueError:
            raise _HecError(6, **{"invalid-event-number": len(out)}) from None
        out.append(obj)


class FakeHec:
    def __init__(
        self,
        tokens: dict[str, HecToken] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_content_length: int = 800 * 1024 * 1024,
    ) -> None:
        self.tokens = tokens if tokens is not None else {"00000000-0000-0000-0000-000000000000": HecToken()}
        self.max_content_length = max_content_length
        self.busy = False  # 503 code 9 on data endpoints, 18 on health
        self.ack_unavailable = False  # health 19 (20 with busy)
        self.auto_ack = True  # acks become indexed as soon as the request is accepted
        self.events: list[ReceivedEvent] = []
        self.requests: list[tuple[str, str, int, int]] = []  # (method, path, http status, code)
        self._fail: list[int] = []
        self._channels: dict[tuple[str, str], _Channel] = {}
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle
    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self) -> "FakeHec":
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-hec", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(5)

    def __enter__(self) -> "FakeHec":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- test controls
    def fail_next(self, n: int = 1, code: int = 9) -> None:
        """The next n data requests (event/raw) fail with the given HEC code (8 or 9 typically)."""
        with self._lock:
            self._fail.extend([code] * n)

    def index_pending(self, channel: str | None = None) -> None:
        """Mark pending ackIds (of one channel, or all) as indexed."""
        with self._lock:
            for (_, ch), st in self._channels.items():
                if channel is None or ch == channel:
                    st.indexed |= st.pending
                    st.pending.clear()

    def drop_pending(self, channel: str | None = None) -> None:
        """Forget pending ackIds: they will stay ``false`` forever (a lost batch)."""
        with self._lock:
            for (_, ch), st in self._channels.items():
                if channel is None or ch == channel:
                    st.pending.clear()

    # -- protocol
    def _auth(self, headers: Any, query: dict[str, list[str]]) -> str:
        auth = headers.get("Authorization")
        if auth is None:
            if "token" in query:
                tok = query["token"][0]
                cfg = self.tokens.get(tok)
                if cfg is None:
                    raise _HecError(4)
                if not cfg.query_auth:
                    raise _HecError(16)
                if not cfg.enabled:
                    raise _HecError(1)
                return tok
            raise _HecError(2)
        scheme, _, value = auth.strip().partition(" ")
        value = value.strip()
        if scheme == "Splunk" and value:
            tok = value
        elif scheme.lower() == "basic" and value:
            try:
                _, _, tok = base64.b64decode(value).decode().partition(":")
            except Exception:
                raise _HecError(3) from None
        else:
            raise _HecError(3)
        cfg = self.tokens.get(tok)
        if cfg is None:
            raise _HecError(4)
        if not cfg.enabled:
            raise _HecError(1)
        return tok

    def _channel(self, headers: Any, query: dict[str, list[str]]) -> str | None:
        ch = headers.get("X-Splunk-Request-Channel") or (query.get("channel") or [None])[0]
        if ch is not None and not _GUID.match(ch):
            raise _HecError(11)
        return ch

    def _validate(self, token: str, ev: Any, number: int) -> dict[str, Any]:
        if not isinstance(ev, dict):
            raise _HecError(6, **{"invalid-event-number": number})
        if "event" not in ev:
            raise _HecError(12, **{"invalid-event-number": number})
        if ev["event"] is None or ev["event"] == "" or ev["event"] == {}:
            raise _HecError(13, **{"invalid-event-number": number})
        if "time" in ev:
            t = ev["time"]
            ok = isinstance(t, (int, float)) and not isinstance(t, bool)
            if isinstance(t, str):
                ok = re.fullmatch(r"\d+(\.\d+)?", t) is not None  # no exponent: Splunk rejects 1.7E9
            if not ok:
                raise _HecError(6, **{"invalid-event-number": number})
        if "fields" in ev:
            f = ev["fields"]
            scalar = (str, int, float)
            if not isinstance(f, dict) or not all(
                isinstance(v, scalar) or (isinstance(v, list) and all(isinstance(x, scalar) for x in v))
                for v in f.values()
            ):
                raise _HecError(15, **{"invalid-event-number": number})
        allowed = self.tokens[token].indexes
        if allowed is not None and "index" in ev and ev["index"] not in allowed:
            raise _HecError(7, **{"invalid-event-number": number})
        return ev

    def _ack_id(self, token: str, channel: str | None) -> int | None:
        if not self.tokens[token].ack:
            return None
        assert channel is not None
        st = self._channels.setdefault((token, channel), _Channel())
        ack_id = st.next_id
        st.next_id += 1
        (st.indexed if self.auto_ack else st.pending).add(ack_id)
        return ack_id

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, Any] | str]:
        """Protocol core, independent of the HTTP plumbing: returns (status, JSON body or text)."""
        url = urlsplit(path)
        query = parse_qs(url.query)
        p = url.path.rstrip("/") or "/"
        with self._lock:
            try:
                if p in HEALTH_PATHS:
                    if method != "GET":
                        return 405, "Method Not Allowed"
                    if headers.get("Authorization") or "token" in query:
                        try:
                            self._auth(headers, query)
                        except _HecError as e:
                            return self._reply(22 if e.code == 1 else 21)
                    if self.busy and self.ack_unavailable:
                        return self._reply(20)
                    if self.busy:
                        return self._reply(18)
                    if self.ack_unavailable:
                        return self._reply(19)
                    return self._reply(17)
                if p not in EVENT_PATHS and p not in RAW_PATHS and p != ACK_PATH:
                    return 404, "Not Found"
                if method != "POST":
                    return 405, "Method Not Allowed"
                token = self._auth(headers, query)
                if p == ACK_PATH:
                    return self._handle_ack(token, headers, query, body)
                if self.busy:
                    raise _HecError(9)
                if self._fail:
                    raise _HecError(self._fail.pop(0))
                if len(body) > self.max_content_length:
                    return 413, "Content-Length of request exceeds limit"
                enc = (headers.get("Content-Encoding") or "").strip().lower()
                if enc == "gzip":
                    try:
                        body = gzip.decompress(body)
                    except (OSError, EOFError, zlib.error):
                        raise _HecError(6, **{"invalid-event-number": 0}) from None
                elif enc not in ("", "identity"):
                    return 415, "Unsupported Content-Encoding"
                channel = self._channel(headers, query)
                if channel is None and (self.tokens[token].ack or p in RAW_PATHS):
                    raise _HecError(10)
                if not body.strip():
                    raise _HecError(5)
                if p in RAW_PATHS:
                    meta = {k: query[k][0] for k in ("host", "source", "sourcetype", "index") if k in query}
                    envs = [{"event": line, **meta} for line in body.decode("utf-8", "replace").splitlines() if line]
                    for i, ev in enumerate(envs):
                        self._validate(token, ev, i)
                    ack_id = self._ack_id(token, channel)
                    self.events.extend(ReceivedEvent(token, channel, ev, ack_id) for ev in envs)
                else:
                    ack_id = self._ingest(token, channel, body)
                return self._reply(0, **({} if ack_id is None else {"ackId": ack_id}))
            except _HecError as e:
                return self._reply(e.code, **e.extra)

    def _ingest(self, token: str, channel: str | None, body: bytes) -> int | None:
        # Like Splunk, events before the first bad one are indexed; the reply names the bad one.
        try:
            objs = _split_events(body)
            bad: _HecError | None = None
        except _HecError as e:
            bad = e
            objs = []  # nothing decoded reliably: Splunk rejects the request
        good = []
        for i, ev in enumerate(objs):
            try:
                good.append(self._validate(token, ev, i))
            except _HecError as e:
                bad = e
                break
        ack_id = self._ack_id(token, channel) if good else None
        self.events.extend(ReceivedEvent(token, channel, ev, ack_id) for ev in good)
        if bad is not None:
            raise bad
        return ack_id

    def _handle_ack(self, token: str, headers: Any, query: dict[str, list[str]], body: bytes):
        if not self.tokens[token].ack:
            raise _HecError(14)
        channel = self._channel(headers, query)
        if channel is None:
            raise _HecError(10)
        try:
            req = json.loads(body or b"null")
            ids = req["acks"]
            if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise _HecError(6) from None
        st = self._channels.setdefault((token, channel), _Channel())
        result = {}
        for i in ids:
            if i in st.indexed:
                result[str(i)] = True
                st.indexed.discard(i)  # reported once, then forgotten
            else:
                result[str(i)] = False
        return 200, {"acks": result}

    def _reply(self, code: int, **extra: Any) -> tuple[int, dict[str, Any]]:
        return HEC_CODES[code][0], hec_body(code, **extra)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _serve(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                status, payload = fake.handle(self.command, self.path, self.headers, body)
                code = payload.get("code", -1) if isinstance(payload, dict) else -1
                with fake._lock:
                    fake.requests.append((self.command, self.path, status, code))
                if isinstance(payload, dict):
                    data, ctype = json.dumps(payload).encode(), "application/json; charset=UTF-8"
                else:
                    data, ctype = payload.encode(), "text/plain; charset=UTF-8"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                if status == 503:
                    self.send_header("Retry-After", "1")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler
