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

The same issue keeps a send() waiting until send_timeout_ms while the cluster is gone, so a send cannot tell
the pipeline quickly that the broker is unreachable. From open() to close() a watcher therefore asks producer
0 for the cluster metadata every HEALTH_INTERVAL_S unless a send was acknowledged meanwhile (one small
request per interval, nothing per event), bounded by HEALTH_TIMEOUT_S, and hands each change of the answer
to `on_health` (set by the pipeline): the shipper shows as unreachable within seconds, and as healthy again
when the broker answers.
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

from .classify import Tally, Verdict, describe, verdict
from .config import KafkaConfig
from .encode import Encoded, Router, encode, max_event_bytes, partition_for

log = logging.getLogger("quarry.shippers.kafka")
HEALTH_INTERVAL_S = 5.0  # between two probes of the watcher
HEALTH_TIMEOUT_S = 5.0  # one probe's metadata request (connect_timeout_ms when shorter)


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
        # The pipeline cuts larger events to this before the first encode (pipeline/sender.py).
        self.max_event_bytes = max_event_bytes(cfg.max_request_size, cfg.key, cfg.host_key, cfg.compression)
        # Counters this shipper adds to the pipeline's per-shipper metrics.
        self.stats: dict[str, int] = {"producer_starts": 0, "producer_restarts": 0, "no_topic": 0,
                                      "too_large": 0, "timeouts": 0}
        # Set by the pipeline's lane: told each time the watcher's answer changes (ok ↔ unreachable).
        self.on_health: Callable[[Health], None] | None = None
        self.health: Health | None = None  # the last probe's answer; None before the first
        # loop time the broker's state was last learnt: an acknowledged send, or any probe's answer
        self._known_at = float("-inf")
        self._watcher: asyncio.Task[None] | None = None

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
            self._set_health(Health(False, f"cannot start producer: {err}"))
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(), name=f"kafka-health-{self.name}")

    async def close(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        stopping = []
        for i, lock in enumerate(self._locks):
            async with lock:
                p, self._producers[i] = self._producers[i], None
            if p is not None:
                stopping.append(self._stop(p, self.cfg.close_timeout_ms / 1000))
        await asyncio.gather(*stopping)  # together: the close timeout bounds the whole close

    async def healthcheck(self) -> Health:
        """One metadata round-trip, bounded by connect_timeout_ms."""
        health = await self._probe(self.cfg.connect_timeout_ms / 1000)
        if health is not None:
            self._set_health(health)
            return health
        return Health(False, "producer restarted during the health check")

    async def _watch(self) -> None:
        """Probe every HEALTH_INTERVAL_S until close(); an acknowledged send or another probe meanwhile (the
        pipeline calls healthcheck() while it backs off) counts as one."""
        loop = asyncio.get_running_loop()
        timeout = min(HEALTH_TIMEOUT_S, self.cfg.connect_timeout_ms / 1000)
        while True:
            await asyncio.sleep(HEALTH_INTERVAL_S)
            if loop.time() - self._known_at < HEALTH_INTERVAL_S:
                continue  # the broker's state is known from less than an interval ago
            try:
                health = await self._probe(timeout)
            except Exception as e:  # noqa: BLE001 - the watcher must outlive a surprise from aiokafka
                health = Health(False, f"health probe failed: {type(e).__name__}: {e}")
            if health is not None:
                self._set_health(health)

    def _set_health(self, health: Health) -> None:
        self._known_at = asyncio.get_running_loop().time()
        before, self.health = self.health, health
        if self.on_health is not None and (before is None or before.ok != health.ok):
            self.on_health(health)

    async def _probe(self, timeout: float) -> Health | None:
        """Cluster metadata from producer 0 within `timeout` (starting it within connect_timeout_ms if it does
        not run); None when the producer was replaced meanwhile, so its failure says nothing."""
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
            if self._producer is not p:
                return None
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
            except asyncio.CancelledError:  # close() stopping the watcher, shutdown: leave no client behind
                await self._stop(p, 1.0)
                raise
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
        body = encode(batch, self.router, self.cfg.key, self.cfg.host_key, self.cfg.max_request_size)
        return Request(records=batch, body=body, size=sum(r.size for r in batch))

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
        if tally.delivered:  # the broker answers: no probe needed this interval, and health is ok at once
            self._known_at = asyncio.get_running_loop().time()
            if self.health is not None and not self.health.ok:
                self._set_health(Health(True, "a send was acknowledged"))
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
