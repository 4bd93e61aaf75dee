"""Opt-in HTTP endpoint: GET /metrics (Prometheus text format 0.0.4) and GET /healthz.

    server = MetricsServer(publisher.document, host="127.0.0.1", port=9100)
    await server.start()        # --metrics_port=0 (the default) means the daemon never builds one
    await server.stop()

Both answers are made from a fresh status document (collector.status), so they agree with `quarry status`.
/healthz: 200 `ok` when no shipper is failing, else 503 with {"status": "failing", "failing": {name: last
error}}. Any other path or method: 404. A request is read with a timeout and a size bound and the
connection is closed after one answer: this is for a scraper and a probe, not a general web server.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson

log = logging.getLogger("quarry.metrics_http")

MAX_REQUEST = 8 * 1024  # request line + headers; larger is refused with 431
READ_TIMEOUT_S = 5.0
WRITE_TIMEOUT_S = 5.0
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

DocumentFn = Callable[[], Mapping[str, Any]]

# (metric name, kind, help, key in a shipper snapshot); every sample is labelled shipper= and type=.
SHIPPER_METRICS = (
    ("quarry_shipper_up", "gauge", "1 when the shipper is healthy, 0 when it is failing", None),
    ("quarry_shipper_events_queued", "gauge", "Events in the in-memory queue", "queued_events"),
    ("quarry_shipper_queued_bytes", "gauge", "Bytes in the in-memory queue", "queued_bytes"),
    ("quarry_shipper_events_in_flight", "gauge", "Events inside a request right now", "in_flight"),
    ("quarry_shipper_requests_in_flight", "gauge", "Requests in flight right now", "in_flight_requests"),
    ("quarry_shipper_spool_events", "gauge", "Events in the disk spool not yet acknowledged", "spool_events"),
    ("quarry_shipper_spool_bytes", "gauge", "Bytes of the disk spool", "spool_bytes"),
    ("quarry_shipper_oldest_event_age_seconds", "gauge", "Age of the oldest event not yet acknowledged "
     "(0 when none)", "oldest_event_age_s"),
    ("quarry_shipper_events_sent_total", "counter", "Events handed to the destination, every attempt",
     "sent"),
    ("quarry_shipper_requests_total", "counter", "Requests made to the destination", "requests"),
    ("quarry_shipper_events_acked_total", "counter", "Events the destination acknowledged", "acked"),
    ("quarry_shipper_events_retried_total", "counter", "Events sent again after a temporary error",
     "retried"),
    ("quarry_shipper_events_dead_lettered_total", "counter", "Events written to the dead-letter file",
     "dead_lettered"),
    ("quarry_shipper_spool_corrupt_skipped_total", "counter", "Corrupt spool records skipped",
     "spool_corrupt_skipped"),
    ("quarry_shipper_put_wait_seconds_total", "counter", "Time producers waited for room (backpressure)",
     "put_wait_s"),
)

SCHEDULER_METRICS = (
    ("quarry_scheduler_queries", "gauge", "Scheduled queries", "queries"),
    ("quarry_scheduler_denylisted_queries", "gauge", "Scheduled queries denylisted now", "denylisted"),
    ("quarry_scheduler_executions_total", "counter", "Query executions", "executions"),
    ("quarry_scheduler_errors_total", "counter", "Query executions that failed", "errors"),
    ("quarry_scheduler_skipped_total", "counter", "Runs skipped: the previous run was still executing",
     "skipped"),
    ("quarry_scheduler_backpressure_seconds_total", "counter", "Time runs waited because shippers applied "
     "backpressure", "backpressure_s"),
    ("quarry_scheduler_delayed_runs_total", "counter", "Runs held back because shippers applied backpressure",
     "delayed_runs"),
)

PROCESS_METRICS = (
    ("quarry_process_resident_memory_bytes", "gauge", "Resident set size", "rss_bytes"),
    ("quarry_process_cpu_seconds_total", "counter", "User and system CPU time", None),
    ("quarry_process_start_time_seconds", "gauge", "Start time of the process, Unix seconds", "start_time"),
    ("quarry_process_threads", "gauge", "Threads of the process", "threads"),
)


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, Any]) -> str:
    return "{" + ",".join(f'{k}="{_label(v)}"' for k, v in labels.items()) + "}" if labels else ""


def _value(value: Any) -> str:
    v = float(value or 0)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def _family(name: str, kind: str, help_: str, samples: list[tuple[dict[str, Any], Any]]) -> Iterator[str]:
    yield f"# HELP {name} {help_}"
    yield f"# TYPE {name} {kind}"
    for labels, value in samples:
        yield f"{name}{_labels(labels)} {_value(value)}"


def exposition(doc: Mapping[str, Any]) -> str:
    """The status document in Prometheus text format 0.0.4."""
    shippers = doc.get("shippers") or {}
    failing = set(doc.get("failing") or ())
    out: list[str] = []
    ids = {name: {"shipper": name, "type": s.get("type", "")} for name, s in sorted(shippers.items())}
    for name, kind, help_, key in SHIPPER_METRICS:
        samples = [(ids[n], (0 if n in failing else 1) if key is None else s.get(key))
                   for n, s in sorted(shippers.items())]
        out.extend(_family(name, kind, help_, samples))
    dropped = [({**ids[n], "reason": reason}, count) for n, s in sorted(shippers.items())
               for reason, count in sorted((s.get("dropped") or {}).items())]
    out.extend(_family("quarry_shipper_events_dropped_total", "counter", "Events dropped, by reason",
                       dropped))
    sched = doc.get("scheduler") or {}
    for name, kind, help_, key in SCHEDULER_METRICS:
        out.extend(_family(name, kind, help_, [({}, sched.get(key))]))
    proc = doc.get("process") or {}
    for name, kind, help_, key in PROCESS_METRICS:
        value = (float(proc.get("cpu_user_s") or 0) + float(proc.get("cpu_system_s") or 0)) if key is None \
            else proc.get(key)
        out.extend(_family(name, kind, help_, [({}, value)]))
    out.extend(_family("quarry_info", "gauge", "Version of the running Quarry",
                       [({"version": proc.get("version", "")}, 1)]))
    return "\n".join(out) + "\n"


def health(doc: Mapping[str, Any]) -> tuple[int, bytes]:
    """(status code, body) of /healthz."""
    failing = list(doc.get("failing") or ())
    if not failing:
        return 200, b"ok\n"
    shippers = doc.get("shippers") or {}
    body = {"status": "failing",
            "failing": {n: {"health": shippers.get(n, {}).get("health"),
                            "last_error": shippers.get(n, {}).get("last_error") or ""} for n in failing}}
    return 503, orjson.dumps(body) + b"\n"


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 408: "Request Timeout",
           431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable"}


class MetricsServer:
    def __init__(self, document: DocumentFn, *, host: str = "127.0.0.1", port: int = 0,
                 max_request: int = MAX_REQUEST, read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self._document = document
        self.host, self.port = host, port
        self.max_request, self.read_timeout_s = max_request, read_timeout_s
        self._server: asyncio.Server | None = None
        self._sock: socket.socket | None = None
        self._conns: set[asyncio.Task[Any]] = set()

    def bind(self) -> None:
        """Open the listening socket now: the daemon does this before it drops root, so a port below 1024
        (or one a policy reserves for root) still works under --run_as_user. Raises OSError."""
        if self._sock is not None:
            return
        info = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = info[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self.port = sock.getsockname()[1]

    async def start(self) -> None:
        self.bind()
        self._server = await asyncio.start_server(self._handle, sock=self._sock, limit=self.max_request)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics endpoint on http://%s:%d/metrics (and /healthz)", self.host, self.port)

    async def stop(self) -> None:
        if self._server is None:
            if self._sock is not None:  # bound, never started
                self._sock.close()
                self._sock = None
            return
        self._server.close()
        for t in list(self._conns):
            t.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        try:
            async with asyncio.timeout(2.0):
                await self._server.wait_closed()
        except TimeoutError:
            log.warning("metrics endpoint: connections still open at shutdown")
        self._server = None
        self._sock = None  # closed with the server

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            status, ctype, body = await self._answer(reader)
            head = (f"HTTP/1.1 {status} {REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
            writer.write(head.encode() + body)
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await writer.drain()
        except (ConnectionError, TimeoutError):
            pass  # the client went away or does not read: nothing to tell it
        finally:
            writer.close()
            self._conns.discard(task)

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        text = "text/plain; charset=utf-8"
        try:
            async with asyncio.timeout(self.read_timeout_s):
                head = await reader.readuntil(b"\r\n\r\n")
        except TimeoutError:
            return 408, text, b"request not received in time\n"
        except asyncio.LimitOverrunError:
            return 431, text, b"request too large\n"
        except asyncio.IncompleteReadError:
            return 400, text, b"incomplete request\n"
        if len(head) > self.max_request:
            return 431, text, b"request too large\n"
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return 400, text, b"bad request line\n"
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method != "GET" or target not in ("/metrics", "/healthz"):
            return 404, text, b"not found: GET /metrics or GET /healthz\n"
        try:
            doc = self._document()
        except Exception:  # noqa: BLE001 - report the failure to the scraper, keep serving
            log.exception("metrics endpoint: cannot build the status")
            return 500, text, b"status unavailable\n"
        if target == "/metrics":
            return 200, CONTENT_TYPE, exposition(doc).encode()
        code, body = health(doc)
        return code, (text if code == 200 else "application/json"), body
