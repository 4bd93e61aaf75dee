"""Indexer acknowledgement: one poller per shipper coalesces every pending ackId into one
`POST /services/collector/ack` per round (ackIds are per channel, and the shipper has one channel).

    poller = AckPoller(post, max_interval=10.0); poller.start()
    ok = await poller.wait(ack_id, timeout=300.0)     # True: indexed; False: not within timeout
    await poller.stop()

`post(ids) -> dict[str, bool] | None` does the HTTP round trip (None: that poll failed; tried again later).
Polls start 50 ms after a new id and back off ×2 up to `max_interval`, so a fast HEC acks within a
round trip or two while a slow one (Splunk can hold a small tail ~2 min) costs one request per interval.
The pending map is bounded by the requests in flight (one ackId per send()).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("quarry.shippers.splunk_hec")
PostFn = Callable[[list[int]], Awaitable["dict[str, bool] | None"]]
FIRST_POLL_S = 0.05


class AckDisabled(Exception):
    """The token has acknowledgement off (HEC code 14): stop waiting, treat accepted data as delivered."""


class AckPoller:
    def __init__(self, post: PostFn, max_interval: float = 10.0) -> None:
        self._post, self.max_interval = post, max_interval
        self._pending: dict[int, asyncio.Future[bool]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.polls = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="hec-ack-poller")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for fut in self._pending.values():
            if not fut.done():
                fut.cancel()
        self._pending.clear()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def wait(self, ack_id: int, timeout: float) -> bool:
        """True once HEC reports the id indexed; False after `timeout` (the id is then forgotten).
        Raises AckDisabled when HEC says acknowledgement is off for the token."""
        self.start()
        fut = self._pending.get(ack_id)
        if fut is None:
            fut = self._pending[ack_id] = asyncio.get_running_loop().create_future()
        self._wake.set()
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(fut)
        except TimeoutError:
            return False
        finally:
            if self._pending.get(ack_id) is fut:
                del self._pending[ack_id]

    async def _run(self) -> None:
        interval = FIRST_POLL_S
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                interval = FIRST_POLL_S
            self._wake.clear()
            try:  # a new id shortens the pause: its request may ack at once
                async with asyncio.timeout(interval):
                    await self._wake.wait()
                    interval = FIRST_POLL_S
                    await asyncio.sleep(FIRST_POLL_S)
            except TimeoutError:
                pass
            ids = sorted(self._pending)
            if not ids:
                continue
            self.polls += 1
            try:
                answer = await self._post(ids)
            except AckDisabled as e:
                for i in ids:
                    fut = self._pending.get(i)
                    if fut is not None and not fut.done():
                        fut.set_exception(AckDisabled(str(e)))
                continue
            except Exception as e:  # noqa: BLE001 - owned task: a failed poll is retried, never fatal
                log.warning("HEC ack poll failed: %s", e)
                answer = None
            progressed = False
            for key, done in (answer or {}).items():
                fut = self._pending.get(int(key)) if str(key).isdigit() else None
                if done is True and fut is not None and not fut.done():
                    fut.set_result(True)
                    progressed = True
            interval = FIRST_POLL_S if progressed else min(self.max_interval, interval * 2)
