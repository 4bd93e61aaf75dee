"""A TCP proxy the chaos tests switch down and up, in front of a real server (or a fake one).

    proxy = FlakyProxy("127.0.0.1", 5044)
    await proxy.start()          # listens on 127.0.0.1:<proxy.port>
    FlakyProxy(host, port, reply_delay_s=1.0)   # a slow destination: every answer comes 1 s late
    await proxy.down()           # stops listening (connect: refused) and cuts every open connection
    await proxy.up()             # listens again on the same port
    task = proxy.flap(up_s=1.5, down_s=1.0)   # down/up in a loop until the task is cancelled
    await proxy.close()

`down()` aborts the connections (RST), in the middle of whatever request is on the wire: the sender sees a
reset or an EOF before its answer, as when a server process dies. Counters: `connections` (accepted),
`cuts` (connections cut by down()), `downs`.

For a sync test (a daemon subprocess), `ThreadedProxy` runs the same proxy on its own loop in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("quarry.tests.chaos.proxy")
CHUNK = 64 * 1024


class FlakyProxy:
    def __init__(self, target_host: str, target_port: int, *, connect_timeout_s: float = 5.0,
                 reply_delay_s: float = 0.0) -> None:
        self.target = (target_host, target_port)
        self.reply_delay_s = reply_delay_s  # each chunk from the server waits this long: a slow destination
        self.connect_timeout_s = connect_timeout_s
        self.port = 0
        self.connections = self.cuts = self.downs = 0
        self._server: asyncio.Server | None = None
        self._live: set[asyncio.Transport] = set()  # both sides of every open connection
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_up(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        await self.up()

    async def up(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
            self.downs += 1
        pairs = len(self._live) // 2
        for t in list(self._live):
            t.abort()
        self._live.clear()
        self.cuts += pairs

    def flap(self, up_s: float, down_s: float) -> asyncio.Task[None]:
        """Down for `down_s`, up for `up_s`, repeatedly (starting with the up phase) until cancelled."""
        async def loop() -> None:
            while True:
                await asyncio.sleep(up_s)
                await self.down()
                await asyncio.sleep(down_s)
                await self.up()
        return asyncio.create_task(loop(), name="proxy-flap")

    async def close(self) -> None:
        await self.down()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                up_reader, up_writer = await asyncio.open_connection(*self.target)
        except (OSError, TimeoutError) as e:
            log.info("proxy: cannot reach %s:%d: %s", *self.target, e)
            writer.transport.abort()
            self._tasks.discard(task)
            return
        pair = {writer.transport, up_writer.transport}
        self._live |= pair  # type: ignore[arg-type]
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer, self.reply_delay_s))
        finally:
            for t in pair:
                t.abort()
            self._live -= pair  # type: ignore[arg-type]
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, delay: float = 0.0) -> None:
        # No timeout here on purpose: an idle kept-alive connection is normal; down() and close() end it.
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await src.read(CHUNK):
                if delay:
                    await asyncio.sleep(delay)
                dst.write(data)
                await dst.drain()
        dst.transport.abort()


class ThreadedProxy:
    """A FlakyProxy on its own event loop in a daemon thread, driven from sync code."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="chaos-proxy", daemon=True)
        self._thread.start()
        self.proxy = FlakyProxy(target_host, target_port)
        self._call(self.proxy.start())

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    @property
    def address(self) -> str:
        return self.proxy.address

    def down(self) -> None:
        self._call(self.proxy.down())

    def up(self) -> None:
        self._call(self.proxy.up())

    def close(self) -> None:
        try:
            self._call(self.proxy.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
