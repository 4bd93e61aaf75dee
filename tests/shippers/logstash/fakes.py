"""In-test peers: an asyncio lumberjack v2 server with scripted ACK behaviour, and a stdlib HTTP server."""

from __future__ import annotations

import asyncio
import json
import struct
import threading
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


async def read_window(r: asyncio.StreamReader) -> list[tuple[int, dict[str, Any]]]:
    """One window from the client: [(seq, event)]; handles a '2C' compressed frame."""
    head = await r.readexactly(6)
    assert head[:2] == b"2W", head
    (n,) = struct.unpack(">I", head[2:])
    out: list[tuple[int, dict[str, Any]]] = []
    buf = b""
    while len(out) < n:
        if not buf:
            kind = await r.readexactly(2)
            if kind == b"2C":
                (ln,) = struct.unpack(">I", await r.readexactly(4))
                buf = zlib.decompress(await r.readexactly(ln))
                continue
            assert kind == b"2J", kind
            seq, ln = struct.unpack(">II", await r.readexactly(8))
            out.append((seq, json.loads(await r.readexactly(ln))))
        else:
            assert buf[:2] == b"2J"
            seq, ln = struct.unpack(">II", buf[2:10])
            out.append((seq, json.loads(buf[10:10 + ln])))
            buf = buf[10 + ln:]
    return out


# (window number, size) -> ACK seqs to send (negative: be silent that many seconds; "close": hang up there);
# None = hang up without answering
Script = Callable[[int, int], list[Any] | None]


class FakeLumberjack:
    def __init__(self, script: Script | None = None, ssl_ctx: Any = None) -> None:
        self.ssl_ctx = ssl_ctx
        self.script = script or (lambda k, n: [n])
        self.windows: list[list[tuple[int, dict[str, Any]]]] = []
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ssl_ctx)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                win = await read_window(r)
                self.windows.append(win)
                acks = self.script(len(self.windows), len(win))
                if acks is None:
                    break
                if "close" in acks:
                    acks = acks[:acks.index("close")]
                    hang_up = True
                else:
                    hang_up = False
                for seq in acks:
                    if seq < 0:  # negative: stay silent for that many seconds
                        await asyncio.sleep(-seq)
                        continue
                    w.write(b"2A" + struct.pack(">I", seq))
                    await w.drain()
                if hang_up:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            w.close()


class FakeHttp:
    """A stdlib HTTP server answering POSTs from a list of (status, headers, body); records the requests."""

    def __init__(self, answers: list[tuple[int, dict[str, str], bytes]]) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake.requests.append((self.path, dict(self.headers), body))
                status, headers, reply = fake.answers.pop(0) if fake.answers else (200, {}, b"ok")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self._t = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> Self:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._t.join(5)
