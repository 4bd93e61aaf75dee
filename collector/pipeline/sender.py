"""Delivering one batch: encode, send, act on the Outcome, until every record is finished.

A record is finished when the destination acknowledged it (Delivered, or the delivered part of a Partial)
or when it went to the dead-letter file (Rejected, the rejected part of a Partial, a single record that is
TooLarge, an encode failure of a single record, or max_elapsed_s passed). Temporary errors (Retry, a send()
that raised or timed out) are retried with exponential backoff and full jitter — sleep a random time in
[0, min(max_s, initial_s * 2**attempt)] — and never less than the `after` the destination asked for.
Before the first encode, every event larger than the shipper's declared `max_event_bytes` is cut to it with
a marker (pipeline/truncate.py), reported once as a truncation however often the batch is then retried.
TooLarge splits the request in halves, recursively; a single event still too large (a destination that only
says so in its answer) is cut the same way and sent once more.
Cancellation (shutdown) leaves the unfinished records unfinished: with a spool they are sent again on the
next start. A shipper that probes its destination between sends gets `on_health`: while its probe fails the
lane's health reads "unreachable" (a failing send still reads "retrying").
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable

from collector.pipeline.api import (
    Delivered,
    Health,
    Outcome,
    Partial,
    Record,
    Rejected,
    Retry,
    Shipper,
    TooLarge,
)
from collector.pipeline.config import ShipperSettings
from collector.pipeline.metrics import ShipperMetrics
from collector.pipeline.truncate import fit_record

log = logging.getLogger("quarry.pipeline.sender")
Item = tuple[int, Record]
DoneFn = Callable[[list[Item]], None]
DeadFn = Callable[[list[tuple[Item, str]]], None]
NoticeFn = Callable[[str, str, list[Record]], None]  # (event, reason, records): Runner.report


class RateLimiter:
    """A token bucket in events/s (0 = unlimited) with one second of burst; a large batch borrows ahead."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = rate
        self._last = time.monotonic()
        self.waited_s = 0.0

    async def acquire(self, n: int) -> None:
        if self.rate <= 0:
            return
        now = time.monotonic()
        self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= n
        if self._tokens < 0:
            delay = -self._tokens / self.rate
            self.waited_s += delay
            await asyncio.sleep(delay)


def backoff(attempt: int, initial_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [0, min(max_s, initial_s * 2**(attempt-1))] for attempt 1, 2, ..."""
    ceiling = min(max_s, initial_s * (2 ** min(attempt - 1, 62)))
    return (rng or random).uniform(0, ceiling)


class Sender:
    def __init__(self, shipper: Shipper, settings: ShipperSettings, metrics: ShipperMetrics,
                 on_done: DoneFn, on_dead: DeadFn, rate: RateLimiter, rng: random.Random | None = None,
                 on_notice: NoticeFn | None = None) -> None:
        self.shipper, self.settings, self.metrics = shipper, settings, metrics
        self._done, self._dead, self._rate = on_done, on_dead, rate
        self._notice = on_notice
        self._answered = asyncio.Event()  # set (and replaced) when the destination answers after failures
        self._probing = False  # a batch in backoff is asking the health check (see _backoff)
        self._rng = rng or random.Random()
        if hasattr(shipper, "on_health"):  # a shipper that watches its destination between sends tells us here
            shipper.on_health = self._health

    async def deliver(self, items: list[Item]) -> None:
        """Until each item is finished; the halves of a split go in order, one request at a time."""
        stack = [self._prefit(items)]
        while stack:
            part = stack.pop()
            halves = await self._deliver_part(part)
            if halves:
                stack.extend(reversed(halves))

    async def _deliver_part(self, items: list[Item]) -> list[list[Item]] | None:
        """Finish `items`, or return the halves to deliver instead."""
        retry = self.settings.retry
        attempt = 0
        started = time.monotonic()
        truncated = False
        while items:
            records = [r for _, r in items]
            try:
                request = self.shipper.encode(records)
            except Exception as e:  # a shipper bug on one record must not stall the rest: isolate it
                log.exception("shipper %s: encode failed for %d record(s)", self.shipper.name, len(items))
                if len(items) > 1:
                    self.metrics.splits += 1
                    return _halves(items)
                self._dead([(items[0], f"encode failed: {type(e).__name__}: {e}")])
                return None
            await self._rate.acquire(len(items))
            outcome = await self._send(request, len(items), attempt)
            reason, after = "", None
            if isinstance(outcome, Delivered):
                self._ok(items)
                return None
            if isinstance(outcome, Rejected):
                self._ok([])
                self._dead([(it, outcome.reason) for it in items])
                return None
            if isinstance(outcome, TooLarge):
                self._ok([])
                if len(items) == 1:
                    fitted = None if truncated else self._truncate(items[0], outcome.reason)
                    if fitted is not None:
                        items, truncated = [fitted], True
                        continue
                    self._dead([(items[0], f"too large for the destination: {outcome.reason}")])
                    return None
                self.metrics.splits += 1
                return _halves(items)
            if isinstance(outcome, Partial):
                items, reason, after = self._partial(items, outcome)
                if not items:
                    return None
            else:  # Retry
                reason, after = outcome.reason, outcome.after
                self._failed(reason)
            attempt += 1
            self.metrics.retried += len(items)
            if retry.max_elapsed_s is not None and time.monotonic() - started >= retry.max_elapsed_s:
                self._dead([(it, f"gave up after {retry.max_elapsed_s:g}s of retries: {reason}")
                            for it in items])
                return None
            delay = backoff(attempt, retry.initial_s, retry.max_s, self._rng)
            if after is not None:
                delay = max(delay, min(after, 3600.0))  # honour Retry-After, within reason
                await asyncio.sleep(delay)
            else:
                await self._backoff(delay)
        return None

    async def _backoff(self, delay: float) -> None:
        """Sleep `delay`, or less when another request of this lane got through meanwhile: after an outage a
        batch that drew a long backoff must not sit out the drain (and a graceful stop) while the rest flows.

        One sleeping batch of the lane (the first whose delay is longer than retry.probe_s) asks the shipper's
        health check every probe_s and retries as soon as it passes; its success wakes the others. Without it
        the drain after an outage starts only when the shortest backoff ends (up to max_s, 30 s). A health
        check is lighter than a batch, and a healthy answer releases one batch, not all: a destination that
        is up but refuses batches (429, 503) is not stormed."""
        answered = self._answered
        every = self.settings.retry.probe_s
        lead = 0 < every < delay and not self._probing
        try:
            async with asyncio.timeout(delay):
                if lead:
                    self._probing = True
                    await self._probe_until(answered, every)
                else:
                    await answered.wait()
        except TimeoutError:
            pass
        finally:
            if lead:
                self._probing = False

    async def _probe_until(self, answered: asyncio.Event, every: float) -> None:
        while True:
            try:
                async with asyncio.timeout(every):
                    await answered.wait()
                return
            except TimeoutError:
                pass
            try:
                async with asyncio.timeout(min(every, self.settings.request_timeout_s)):
                    health = await self.shipper.healthcheck()
            except Exception as e:  # noqa: BLE001 - a failing probe is a "no", the batch keeps its backoff
                log.debug("shipper %s: health probe raised %s: %s", self.shipper.name, type(e).__name__, e)
                continue
            if health.ok:
                self.metrics.probes_ok += 1
                log.info("shipper %s: destination passes its health check; retrying now", self.shipper.name)
                return

    def _limit(self) -> int:
        """The shipper's max_event_bytes, or 0 when it declares none or truncation cannot be reported."""
        if self._notice is None:
            return 0
        return int(getattr(self.shipper, "max_event_bytes", 0) or 0)

    def _prefit(self, items: list[Item]) -> list[Item]:
        """`items` with every event above max_event_bytes cut to fit, once per batch: encode() runs again on
        every retry and split, so cutting (and reporting) there would count one event once per attempt.

        The comparison is on Record.size (payload bytes), not on the encoded size: a shipper declares
        max_event_bytes as the payload its largest request or message holds after its own per-event
        overhead (Kafka framing, key and headers; the HEC envelope), which is what fit() measures and cuts.
        The encoded size would need a shipper-specific encode per event, the cost this step avoids.
        An event that cannot be cut to fit is sent as it is: the shipper's exact check or the destination
        then refuses it and it is dead-lettered with that reason, while one that only just exceeds the
        margin still gets through.
        """
        limit = self._limit()
        if limit <= 0 or not _any_above(items, limit):
            return items
        out = []
        for it in items:
            if it[1].size > limit:
                it = self._fit(it, limit, "larger than the destination accepts") or it
            out.append(it)
        return out

    def _truncate(self, item: Item, reason: str) -> Item | None:
        """One event too large for the destination, cut to the shipper's max_event_bytes (reported), or None."""
        limit = self._limit()
        return self._fit(item, limit, reason) if limit > 0 else None

    def _fit(self, item: Item, limit: int, why: str) -> Item | None:
        assert self._notice is not None
        got = fit_record(item[1], limit, self.shipper.format)
        if got is None:
            return None
        record, cut = got
        self._notice("truncation", f"event of {item[1].size} bytes cut to {record.size} (limit {limit}; "
                     f"{', '.join(cut)}): {why}", [item[1]])
        return (item[0], record)

    async def _send(self, request: object, n: int, attempt: int) -> Outcome:
        m = self.metrics
        m.sent += n
        m.requests += 1
        m.in_flight += n
        m.in_flight_requests += 1
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the result and drops a
            # cancellation that arrives as send() completes, and shutdown would then sleep on in backoff
            async with asyncio.timeout(self.settings.request_timeout_s):
                outcome = await self.shipper.send(request)  # type: ignore[arg-type]
            if not isinstance(outcome, Delivered | Retry | Rejected | Partial | TooLarge):
                return Retry(f"send returned {outcome!r}, not an Outcome")
            return outcome
        except TimeoutError:
            return Retry(f"send timed out after {self.settings.request_timeout_s:g}s")
        except Exception as e:  # noqa: BLE001 - a shipper should classify; if send raised, it is temporary
            log.warning("shipper %s: send raised %s: %s (retrying)", self.shipper.name, type(e).__name__, e)
            return Retry(f"send raised {type(e).__name__}: {e}")
        finally:
            m.in_flight -= n
            m.in_flight_requests -= 1

    def _partial(self, items: list[Item], p: Partial) -> tuple[list[Item], str, float | None]:
        n = len(items)
        retry_idx = sorted({i for i in p.retry if 0 <= i < n})
        rejected = {i: reason for i, reason in p.rejected if 0 <= i < n and i not in retry_idx}
        delivered = [it for i, it in enumerate(items) if i not in rejected and i not in set(retry_idx)]
        self._ok(delivered)
        if rejected:
            self._dead([(items[i], reason) for i, reason in sorted(rejected.items())])
        again = [items[i] for i in retry_idx]
        if again:
            self._failed(p.retry_reason or "partial failure")
        return again, p.retry_reason or "partial failure", p.after

    def _ok(self, items: list[Item]) -> None:
        if self.metrics.consecutive_failures:
            log.info("shipper %s: destination answers again after %d failed attempt(s); draining",
                     self.shipper.name, self.metrics.consecutive_failures)
            answered, self._answered = self._answered, asyncio.Event()
            answered.set()  # wake the batches waiting in backoff
        self.metrics.consecutive_failures = 0
        if items:
            self.metrics.acked += len(items)
            self._done(items)

    def _health(self, health: Health) -> None:
        """The shipper's own probe changed its answer: an unreachable destination shows in the status at once,
        not only when a send has failed (a Kafka send waits send_timeout_ms before it does)."""
        m = self.metrics
        if health.ok:
            if m.unreachable:
                log.info("shipper %s: destination reachable again", self.shipper.name)
            m.unreachable = ""
            return
        m.unreachable = health.detail or "unreachable"
        log.warning("shipper %s: destination unreachable: %s", self.shipper.name, m.unreachable)
        m.error(f"health check: {m.unreachable}")

    def _failed(self, reason: str) -> None:
        # An outage must show in the status log when it starts, not only in the periodic summary.
        if not self.metrics.consecutive_failures:
            log.warning("shipper %s: retrying (events stay spooled until acknowledged): %s", self.shipper.name,
                        reason)
        self.metrics.consecutive_failures += 1
        self.metrics.error(reason)


def _any_above(items: list[Item], limit: int) -> bool:
    # Once per event on the hot path: a plain loop is about twice as fast as any() over a generator.
    for it in items:
        if len(it[1].payload) > limit:
            return True
    return False


def _halves(items: list[Item]) -> list[list[Item]]:
    mid = len(items) // 2
    return [items[:mid], items[mid:]]
