"""A TCP proxy on 127.0.0.1 in front of one real search server: a second (or third) "node" for the clients'
pools, which records the HTTP status of every answer it relays, so a test sees which node served what and when.

    async with NodeProxy(port) as p:    p.url is the node's URL; p.accepted() are the times of 2xx answers
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Self


class NodeProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host, self.upstream_port = host, upstream_port
        self.answers: list[tuple[float, int]] = []  # (time.monotonic(), HTTP status) of relayed answers
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.host}:{self._server.sockets[0].getsockname()[1]}"

    def accepted(self, since: float = 0.0) -> list[float]:
        return [t for t, status in self.answers if t >= since and 200 <= status < 300]

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._conns):
            t.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            try:
                up_r, up_w = await asyncio.open_connection(self.host, self.upstream_port)
            except OSError:  # the server is down: the client sees the connection closed, as with a dead node
                return
            try:
                await asyncio.gather(self._pipe(reader, up_w, None), self._pipe(up_r, writer, self.answers))
            finally:
                up_w.close()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._conns.discard(task)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    answers: list[tuple[float, int]] | None) -> None:
        try:
            while data := await src.read(65536):
                # the clients wait for each answer before the next request on a connection, so an answer
                # starts a read; a status line split across reads would only go uncounted
                if answers is not None and data.startswith(b"HTTP/1.") and data[9:12].isdigit():
                    answers.append((time.monotonic(), int(data[9:12])))
                dst.write(data)
                await dst.drain()
        finally:
            with contextlib.suppress(Exception):
                dst.write_eof()
