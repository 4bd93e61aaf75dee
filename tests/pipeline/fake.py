"""A programmable shipper for the pipeline tests: succeed, fail N times, Partial, TooLarge, Rejected, hang, slow."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import orjson

from collector.pipeline.api import Delivered, Health, Outcome, Record, Request, Retry
from collector.pipeline.config import (
    BatchSettings,
    QueueSettings,
    RetrySettings,
    ShipperSettings,
    SpoolSettings,
)


def rec(i: int, name: str = "pack_q", size: int = 0, host: str = "h1") -> Record:
    payload = orjson.dumps({"i": i, "pad": "x" * size})
    return Record(id=f"id-{i}", payload=payload, name=name, table="processes", time=1767225600.0 + i, host=host)


def ids_of(records: list[Record]) -> list[int]:
    return [orjson.loads(r.payload)["i"] for r in records]


class FakeShipper:
    type = "fake"
    format = "osquery"

    def __init__(self, name: str = "fake", *, answer: Callable[[Request, int], Outcome] | None = None,
                 fail_times: int = 0, delay: float = 0.0, max_records: int | None = None) -> None:
        self.name = name
        self.answer = answer
        self.fail_times = fail_times
        self.delay = delay
        self.max_records = max_records
        self.dead = False
        self.hang = False
        self.delivered: list[Record] = []
        self.requests: list[list[int]] = []  # ids per send() call
        self.calls = 0
        self.health_calls = 0
        self.opened = self.closed = 0
        self.report = None  # set by the pipeline

    async def open(self) -> None:
        self.opened += 1

    async def healthcheck(self) -> Health:
        self.health_calls += 1
        return Health(not self.dead, "connection refused" if self.dead else "")

    def encode(self, batch: list[Record]) -> Request:
        return Request(records=list(batch), body=b"".join(r.payload for r in batch),
                       size=sum(r.size for r in batch))

    async def send(self, request: Request) -> Outcome:
        self.calls += 1
        self.requests.append(ids_of(request.records))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hang:
            await asyncio.Event().wait()
        if self.dead:
            return Retry("connection refused")
        if self.fail_times > 0:
            self.fail_times -= 1
            return Retry("503 busy")
        if self.answer is not None:
            out = self.answer(request, self.calls)
            if not isinstance(out, Delivered):
                if hasattr(out, "retry"):  # Partial: the caller's answer records what it delivered
                    bad = set(out.retry) | {i for i, _ in out.rejected}
                    self.delivered += [r for i, r in enumerate(request.records) if i not in bad]
                return out
        self.delivered += request.records
        return Delivered()

    async def close(self) -> None:
        self.closed += 1


def settings(name: str = "fake", *, spool: bool | dict | None = True, type: str = "fake",
             **kw) -> ShipperSettings:
    """Fast settings for tests: short linger, short backoff, frequent fsync. A dict `spool` turns it on."""
    spool_kw = {"enabled": True, **spool} if isinstance(spool, dict) else {"enabled": spool}
    s = ShipperSettings(name=name, type=type,
                        queue=QueueSettings(max_events=1000), spool=SpoolSettings(**{"fsync_ms": 20, **spool_kw}),
                        batch=BatchSettings(max_events=100, max_bytes=1_000_000, linger_ms=5),
                        retry=RetrySettings(initial_s=0.01, max_s=0.05))
    for key, value in kw.items():
        if isinstance(value, dict):
            value = replace(getattr(s, key), **value)
        s = replace(s, **{key: value})
    return s


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll until cond() (the pipeline works in background tasks)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)
