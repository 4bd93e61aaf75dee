"""Logstash `beats` mode: a lumberjack v2 client over asyncio (TCP, optional TLS).

One window per batch on a long-lived connection: write the window, then wait for ACKs until the last seq.
Lumberjack allows one window in flight per connection, so the shipper keeps `workers` connections (the
pipeline's concurrency, as Filebeat's `worker` setting) and a send takes whichever is free.
An ACK below the window size is progress (Logstash acknowledges as it goes; seq 0 is a keepalive); each wait
is bounded by `ack_timeout_s`, so a silent peer is detected while a busy one that keeps sending keepalives
is given time (the pipeline's request_timeout_s still caps the whole send). Whatever the outcome, a
connection whose window did not finish cleanly is closed, so a late ACK can never be read as the next
window's. Hosts are tried in order, moving to the next one after a failure.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl

from collector.pipeline.api import Delivered, Health, Outcome, Partial, Record, Rejected, Request, Retry

from .config import LogstashConfig
from .encode import Encoded, encode_events
from .protocol import ACK_SIZE, ProtocolError, encode_window, parse_ack

log = logging.getLogger("quarry.shippers.logstash")
THREAD_COMPRESS_BYTES = 64 * 1024  # zlib releases the GIL: big windows compress off the event loop


class _Broken(Exception):
    def __init__(self, reason: str, acked: int) -> None:
        super().__init__(reason)
        self.reason, self.acked = reason, acked


class _Conn:
    """One connection and the lock that keeps a single window in flight on it."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.lock = asyncio.Lock()

    @property
    def up(self) -> bool:
        return self.writer is not None and not self.writer.is_closing()


class BeatsShipper:
    type = "logstash"

    def __init__(self, name: str, cfg: LogstashConfig, *, format: str = "osquery",
                 tls: ssl.SSLContext | None = None, server_name: str | None = None, workers: int = 1) -> None:
        self.name, self.format, self.cfg = name, format, cfg
        self._tls, self._server_name = tls, server_name
        self.conns = [_Conn() for _ in range(max(1, workers))]
        self._host = 0  # index into cfg.hosts of the next connection
        self.stats: dict[str, int] = {"connects": 0, "windows": 0, "events": 0, "partial_acks": 0,
                                      "keepalives": 0}

    # --- life cycle ---------------------------------------------------------------------------------
    async def open(self) -> None:
        # One connection up front proves the peer; the others open on first use.
        conn = self.conns[0]
        async with conn.lock:
            try:
                await self._connect(conn)
            except (TimeoutError, OSError) as e:
                log.warning("logstash shipper %s: cannot connect at start (%s); will retry on send",
                            self.name, self._describe(e))

    async def healthcheck(self) -> Health:
        conn = self.conns[0]
        async with conn.lock:
            if conn.up:
                return Health(True, "connected")
            try:
                await self._connect(conn)
            except (TimeoutError, OSError) as e:
                return Health(False, self._describe(e))
            return Health(True, "connected")

    async def close(self) -> None:
        for conn in self.conns:
            async with conn.lock:
                await self._drop(conn)

    def _free(self) -> _Conn:
        """An idle connection, preferring one already open; else the first (its lock queues the send)."""
        idle = [c for c in self.conns if not c.lock.locked()]
        return next((c for c in idle if c.up), idle[0] if idle else self.conns[0])

    # --- encode / send --------------------------------------------------------------------------------
    def encode(self, batch: list[Record]) -> Request:
        enc = encode_events(batch, self.cfg.beat, self.format)
        return Request(records=list(batch), body=enc, size=enc.size)

    async def send(self, request: Request) -> Outcome:
        enc: Encoded = request.body
        if not enc.events:
            return _outcome(enc, len(request.records), 0, "")
        level = self.cfg.compression_level
        if level and enc.size >= THREAD_COMPRESS_BYTES:
            wire = await asyncio.to_thread(encode_window, enc.events, level)
        else:
            wire = encode_window(enc.events, level)
        conn = self._free()
        async with conn.lock:
            reused = conn.writer is not None
            try:
                acked = await self._window(conn, wire, len(enc.events))
            except _Broken as e:
                if reused and e.acked == 0 and e.reason.startswith("connection"):
                    # Logstash closes idle connections (client_inactivity_timeout 60 s): one fresh try.
                    log.debug("logstash shipper %s: reused connection was closed (%s), reconnecting",
                              self.name, e.reason)
                    try:
                        acked = await self._window(conn, wire, len(enc.events))
                    except _Broken as e2:
                        return _outcome(enc, len(request.records), e2.acked, e2.reason)
                else:
                    return _outcome(enc, len(request.records), e.acked, e.reason)
        self.stats["windows"] += 1
        self.stats["events"] += acked
        return _outcome(enc, len(request.records), acked, "")

    async def _window(self, conn: _Conn, wire: bytes, n: int) -> int:
        """Send one window and wait for its last ACK; _Broken(reason, acked) on any failure (connection closed)."""
        acked = 0
        done = False
        try:
            if not conn.up:
                await self._connect(conn)
            assert conn.reader is not None and conn.writer is not None
            conn.writer.write(wire)
            await asyncio.wait_for(conn.writer.drain(), self.cfg.ack_timeout_s)
            while acked < n:
                frame = await asyncio.wait_for(conn.reader.readexactly(ACK_SIZE), self.cfg.ack_timeout_s)
                seq = parse_ack(frame)
                if seq > n:
                    raise ProtocolError(f"ACK {seq} beyond the window of {n}")
                if seq <= acked:
                    self.stats["keepalives"] += 1
                    continue
                acked = seq
            done = True
            return acked
        except TimeoutError:
            raise _Broken(f"timeout: no ACK within {self.cfg.ack_timeout_s:g} s ({acked}/{n} acked)",
                          acked) from None
        except asyncio.IncompleteReadError:
            raise _Broken(f"connection closed by the peer ({acked}/{n} acked)", acked) from None
        except ProtocolError as e:
            raise _Broken(f"protocol error: {e}", acked) from None
        except (OSError, ssl.SSLError) as e:
            raise _Broken(f"connection error: {self._describe(e)} ({acked}/{n} acked)", acked) from None
        finally:
            if not done:  # also on cancellation: the connection may still carry this window's ACKs
                if acked:
                    self.stats["partial_acks"] += 1
                await self._drop(conn)

    async def _connect(self, conn: _Conn) -> None:
        await self._drop(conn)
        hosts = self.cfg.hosts
        host, port = hosts[self._host % len(hosts)]
        self._host += 1  # the next connection goes to the next host; a good one is kept until it fails
        tls = self._tls is not None
        try:
            conn.reader, conn.writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=1 << 16, ssl=self._tls,
                                        server_hostname=(self._server_name or host) if tls else None),
                self.cfg.connect_timeout_s)
        except TimeoutError:
            raise OSError(f"connect to {host}:{port} timed out after {self.cfg.connect_timeout_s:g} s") from None
        except OSError as e:
            raise OSError(f"connect to {host}:{port}: {self._describe(e)}") from e
        self._host -= 1  # connected: stay on this host
        sock = conn.writer.get_extra_info("socket") if conn.writer is not None else None
        if sock is not None:  # a window ends in a short segment: Nagle would hold it for the peer's delayed ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stats["connects"] += 1
        log.info("logstash shipper %s: connected to %s:%d%s", self.name, host, port, " (TLS)" if tls else "")

    async def _drop(self, conn: _Conn) -> None:
        w, conn.reader, conn.writer = conn.writer, None, None
        if w is None:
            return
        w.close()
        try:
            await asyncio.wait_for(w.wait_closed(), 2.0)
        except (TimeoutError, OSError, ssl.SSLError):
            pass  # closing a broken connection: nothing left to save

    @staticmethod
    def _describe(e: BaseException) -> str:
        return str(e) or type(e).__name__


def _outcome(enc: Encoded, total: int, acked: int, reason: str) -> Outcome:
    """Events [0, acked) delivered; the rest retried with `reason`; encode-time rejections dead-lettered."""
    retry = tuple(enc.index[acked:])
    if not retry and not enc.rejected:
        return Delivered()
    if not retry and len(enc.rejected) == total:
        return Rejected("; ".join(sorted({r for _, r in enc.rejected})))
    if len(retry) == total:
        return Retry(reason)
    return Partial(retry=retry, rejected=tuple(enc.rejected), retry_reason=reason)
