"""The Kafka shipper: aiokafka's AIOKafkaProducer driven with explicit record batches.

encode() groups a pipeline batch by topic; send() picks each message's partition (the Java client's murmur2
of the key, so a key always lands on the same partition), fills aiokafka batch builders, hands them to
`send_batch()` and gathers their futures, all under one `send_timeout_ms` deadline. Explicit batches avoid
aiokafka's per-message `send()` coroutine, which caps out near 20k messages/s. Every message is then
classified (classify.py) into one Outcome; the pipeline retries, splits or dead-letters.

aiokafka sends one produce request per broker at a time and waits for its answer before the next, even
with idempotence (the protocol allows 5 in flight per connection): the broker idles while Python builds and
compresses the next batch. So the shipper can keep a small pool of producers (`producers`, default 1;
set it to the pipeline's concurrency for throughput): each has its own connection and idempotent producer id,
and a send() takes the first idle one, so two requests overlap. With one producer, the messages of a
partition keep the order in which the pipeline sent its requests; with several, two requests in flight at
once may reach a partition in either order, which is why the pool is opt-in.

Producer 0 is started in open() when the cluster answers, the others and any stopped one lazily by the next
send() that needs it; start, stop and every produce wait is bounded, because an idempotent aiokafka producer
never expires batches while the cluster is down (aio-libs/aiokafka#1101) and its stop() would wait forever.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka import errors as ke

from collector.pipeline.api import Health, Outcome, Record, Request
from collector.pipeline.truncate import fit_record

from .classify import Tally, Verdict, describe, verdict
from .config import KafkaConfig
from .encode import Encoded, Router, encode, partition_for

log = logging.getLogger("quarry.shippers.kafka")


def _consume(fut: asyncio.Future[Any]) -> None:
    # Futures we stop waiting for (timeout) may fail later; reading the exception keeps asyncio quiet.
    if not fut.cancelled():
        fut.exception()


class KafkaShipper:
    type = "kafka"

    def __init__(self, name: str, cfg: KafkaConfig, *, format: str = "osquery",
                 kafka_topics: Mapping[str, Iterable[str]] | None = None) -> None:
        self.name = name
        self.format = format
        self.cfg = cfg
        topics = cfg.kafka_topics if cfg.kafka_topics is not None else kafka_topics
        self.router = Router(cfg.topic, topics, cfg.status_topic)
        n = max(1, cfg.producers)
        self._producers: list[AIOKafkaProducer | None] = [None] * n
        self._busy = [0] * n  # send() calls using each producer right now
        self._locks = [asyncio.Lock() for _ in range(n)]
        self._last_error = ""
        # Counters this shipper adds to the pipeline's per-shipper metrics.
        self.stats: dict[str, int] = {"producer_starts": 0, "producer_restarts": 0, "no_topic": 0,
                                      "too_large": 0, "truncated": 0, "timeouts": 0}
        # Set by the pipeline's lane: how a truncated event is counted and reported as a status event.
        self.report: Callable[[str, str, list[Record]], None] | None = None

    @property
    def _producer(self) -> AIOKafkaProducer | None:
        """The first producer (health checks use it; tests look at it)."""
        return self._producers[0]

    @_producer.setter
    def _producer(self, p: AIOKafkaProducer | None) -> None:
        self._producers[0] = p

    # --- life cycle ---------------------------------------------------------------------------------
    async def open(self) -> None:
        """Start the producer; a cluster that does not answer is logged, not raised (never blocks start-up)."""
        err = await self._start()
        if err:
            log.warning("kafka shipper %s: cluster not reachable at start (%s); will retry on first send",
                        self.name, err)

    async def close(self) -> None:
        stopping = []
        for i, lock in enumerate(self._locks):
            async with lock:
                p, self._producers[i] = self._producers[i], None
            if p is not None:
                stopping.append(self._stop(p, self.cfg.close_timeout_ms / 1000))
        await asyncio.gather(*stopping)  # together: the close timeout bounds the whole close

    async def healthcheck(self) -> Health:
        """One metadata round-trip, bounded by connect_timeout_ms."""
        timeout = self.cfg.connect_timeout_ms / 1000
        p = self._producer
        if p is None:
            err = await self._start()
            if err:
                return Health(False, f"cannot start producer: {err}")
            p = self._producer
        if p is None:
            return Health(False, self._last_error or "producer not running")
        try:
            md = await asyncio.wait_for(p.client.fetch_all_metadata(), timeout)
        except (TimeoutError, ke.KafkaError, OSError) as e:
            return Health(False, f"metadata request failed: {describe(e)}")
        topics = md.topics()
        missing = [t for t in self._configured_topics() if t not in topics]
        detail = f"{len(md.brokers())} broker(s), {len(topics)} topic(s)"
        if missing:
            detail += f"; not yet present (auto-created on first write if the broker allows): {', '.join(missing)}"
        return Health(True, detail)

    def _configured_topics(self) -> list[str]:
        names = {self.cfg.topic, self.cfg.status_topic, *self.router.by_name.values()}
        return sorted(t for t in names if t)

    async def _start(self, slot: int = 0) -> str:
        """Start producer `slot` if it does not run; '' on success, else the reason."""
        async with self._locks[slot]:
            if self._producers[slot] is not None:
                return ""
            p = AIOKafkaProducer(**self.cfg.producer_kwargs())
            try:
                await asyncio.wait_for(p.start(), self.cfg.connect_timeout_ms / 1000)
            except (TimeoutError, ke.KafkaError, OSError) as e:
                self._last_error = describe(e) + await self._tls_problem()
                await self._stop(p, 1.0)
                return self._last_error
            self._producers[slot] = p
            self.stats["producer_starts"] += 1
            return ""

    async def _tls_problem(self) -> str:
        """aiokafka only logs why a TLS handshake failed and raises "Unable to bootstrap": find the reason."""
        ctx = self.cfg.producer_kwargs().get("ssl_context")
        if ctx is None:
            return ""
        for broker in self.cfg.brokers:
            host, _, port = broker.rpartition(":") if ":" in broker else (broker, "", "9092")
            try:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(host.strip("[]"), int(port), ssl=ctx, server_hostname=host.strip("[]")),
                    self.cfg.connect_timeout_ms / 1000)
            except ssl.SSLError as e:
                return f" (TLS with {broker}: {e})"
            except (TimeoutError, OSError, ValueError):
                continue
            writer.close()
        return ""

    async def _restart(self, slot: int, why: str) -> None:
        async with self._locks[slot]:
            p, self._producers[slot] = self._producers[slot], None
        if p is not None:
            log.warning("kafka shipper %s: restarting the producer: %s", self.name, why)
            self.stats["producer_restarts"] += 1
            await self._stop(p, 1.0)

    async def _stop(self, p: AIOKafkaProducer, timeout: float) -> None:
        try:
            await asyncio.wait_for(p.stop(), timeout)
            return
        except (TimeoutError, ke.KafkaError, OSError) as e:
            log.warning("kafka shipper %s: producer did not stop within %.1fs (%s); tearing it down "
                        "(unacknowledged events stay with the pipeline)", self.name, timeout, describe(e))
        # aiokafka has no abort: fail the pending batches, cancel the sender task, close the sockets.
        # These are private attributes of aiokafka 0.13/0.14; guarded so a change degrades to a leak warning.
        acc = getattr(p, "_message_accumulator", None)
        if acc is not None:
            acc.fail_all(ke.ProducerClosed())
        sender = getattr(p, "_sender", None)
        task = getattr(sender, "sender_task", None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        try:
            await asyncio.wait_for(p.client.close(), 2.0)
        except (TimeoutError, ke.KafkaError, OSError):
            pass

    # --- encode / send ------------------------------------------------------------------------------
    def encode(self, batch: list[Record]) -> Request:
        body = encode(batch, self.router, self.cfg.key, self.cfg.host_key, self.cfg.max_request_size, self._fit)
        return Request(records=batch, body=body, size=sum(r.size for r in batch))

    def _fit(self, record: Record, limit: int) -> bytes | None:
        """An event above max_request_size cut to `limit` bytes with a marker (reported), or None."""
        got = fit_record(record, limit, self.format)
        if got is None:
            return None
        smaller, cut = got
        self.stats["truncated"] += 1
        if self.report is not None:
            self.report("truncation", f"event of {record.size} bytes cut to {smaller.size} to fit "
                        f"max_request_size {self.cfg.max_request_size} ({', '.join(cut)})", [record])
        return smaller.payload

    async def send(self, request: Request) -> Outcome:
        body: Encoded = request.body
        tally = Tally(len(request.records))
        for i, reason in body.rejected:
            tally.reject(i, reason)
            self.stats["no_topic" if reason.startswith("no topic") else "too_large"] += 1
        if not body.groups:
            return tally.outcome()
        busy = self._busy
        slot = busy.index(0) if 0 in busy else busy.index(min(busy))  # an idle producer, else the least busy
        busy[slot] += 1
        try:
            return await self._send_with(slot, body, tally)
        finally:
            busy[slot] -= 1

    async def _send_with(self, slot: int, body: Encoded, tally: Tally) -> Outcome:
        if self._producers[slot] is None:
            err = await self._start(slot)
            if err:
                for g in body.groups:
                    tally.add(g.indices, Verdict("retry", f"kafka not reachable: {err}"))
                return tally.outcome()
        p = self._producers[slot]
        assert p is not None
        restart: list[str] = []
        try:
            await asyncio.wait_for(self._produce(p, body, tally, restart), self.cfg.send_timeout_ms / 1000)
        except TimeoutError:
            self.stats["timeouts"] += 1
        if restart and self._producers[slot] is p:
            await self._restart(slot, restart[0])
        return tally.outcome(f"no acknowledgement within send_timeout_ms ({self.cfg.send_timeout_ms} ms)")

    async def _produce(self, p: AIOKafkaProducer, body: Encoded, tally: Tally, restart: list[str]) -> None:
        def fail(indices: list[int], exc: BaseException, **kw: Any) -> None:
            v = verdict(exc, **kw)
            tally.add(indices, v)
            if v.restart:
                restart.append(v.reason)

        waiting: list[tuple[asyncio.Future[Any], list[int]]] = []
        for g in body.groups:
            try:
                partitions = sorted(await p.partitions_for(g.topic))
            except ke.UnknownTopicOrPartitionError as e:
                fail(g.indices, e, topic_exists=await self._topic_exists(p, g.topic))
                continue
            except (ke.KafkaError, OSError) as e:
                fail(g.indices, e)
                continue
            for part, rows in _by_partition(g.keys, partitions):
                builder = p.create_batch()
                members: list[int] = []
                for j in rows:
                    if builder.append(timestamp=g.timestamps[j], key=g.keys[j], value=g.values[j],
                                      headers=g.headers[j]) is None:
                        waiting.append(await self._submit(p, builder, g.topic, part, members, fail))
                        builder, members = p.create_batch(), []
                        builder.append(timestamp=g.timestamps[j], key=g.keys[j], value=g.values[j],
                                       headers=g.headers[j])
                    members.append(g.indices[j])
                if not self.cfg.linger_ms:
                    builder.close()  # complete: drained at once instead of lingering (full ones close themselves)
                waiting.append(await self._submit(p, builder, g.topic, part, members, fail))
        for fut, members in waiting:
            if not members:
                continue
            try:
                await fut
            except (ke.KafkaError, OSError) as e:
                fail(members, e)
            else:
                tally.ok(members)

    @staticmethod
    async def _submit(p: AIOKafkaProducer, builder: Any, topic: str, part: int, members: list[int],
                      fail: Any) -> tuple[asyncio.Future[Any], list[int]]:
        try:
            fut: asyncio.Future[Any] = await p.send_batch(builder, topic, partition=part)
        except (ke.KafkaError, OSError) as e:
            fail(members, e)
            done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done, []
        fut.add_done_callback(_consume)
        return fut, members

    async def _topic_exists(self, p: AIOKafkaProducer, topic: str) -> bool | None:
        """After a metadata wait gave up: does the cluster answer, and without this topic? None: unknown."""
        try:
            md = await asyncio.wait_for(p.client.fetch_all_metadata(), self.cfg.connect_timeout_ms / 1000)
        except (TimeoutError, ke.KafkaError, OSError):
            return None
        return topic in md.topics()


def _by_partition(keys: list[bytes], partitions: list[int]) -> list[tuple[int, list[int]]]:
    """Row positions per partition, in order; the hash is computed once per distinct key (host keys repeat)."""
    if len(partitions) == 1:
        return [(partitions[0], list(range(len(keys))))]
    out: dict[int, list[int]] = {}
    cache: dict[bytes, int] = {}
    for j, k in enumerate(keys):
        part = cache.get(k)
        if part is None:
            part = cache[k] = partition_for(k, partitions)
        out.setdefault(part, []).append(j)
    return list(out.items())
