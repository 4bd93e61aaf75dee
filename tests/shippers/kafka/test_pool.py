"""The producer pool: aiokafka has one produce request in flight per connection, so concurrent send() calls
each take an idle producer; a lone send() always uses the first one (the others start only when needed)."""

from __future__ import annotations

import asyncio
from typing import Any

from collector.pipeline.api import Delivered
from shippers.kafka import create, validate
from tests.shippers.kafka.test_classify import FakeProducer, recs


class GatedProducer(FakeProducer):
    """Acknowledges each batch only once the test opens the gate."""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__({})
        self.gate = gate

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> asyncio.Future:
        self.sent.append((topic, partition, builder.record_count()))
        fut = asyncio.get_running_loop().create_future()

        async def later() -> None:
            await self.gate.wait()
            fut.set_result(None)

        asyncio.get_running_loop().create_task(later())
        return fut


def shipper(**raw: Any):
    return create("k", None, {"type": "kafka", "brokers": ["127.0.0.1:9"], "topic": "t", **raw})


async def test_concurrent_sends_use_different_producers_and_a_lone_send_the_first():
    gate = asyncio.Event()
    s = shipper(producers=2)
    fakes = [GatedProducer(gate), GatedProducer(gate)]
    s._producers = list(fakes)  # type: ignore[assignment]
    a = asyncio.create_task(s.send(s.encode(recs(["q"] * 3))))
    b = asyncio.create_task(s.send(s.encode(recs(["q"] * 4))))
    await asyncio.sleep(0.05)
    assert not a.done() and not b.done()
    assert [sum(n for *_, n in f.sent) for f in fakes] == [3, 4]
    gate.set()
    assert await a == Delivered() and await b == Delivered()
    assert s._busy == [0, 0]
    for _ in range(3):  # one at a time: always the first producer
        assert await s.send(s.encode(recs(["q"] * 2))) == Delivered()
    assert [sum(n for *_, n in f.sent) for f in fakes] == [9, 4]


async def test_more_sends_than_producers_share_the_least_busy():
    gate = asyncio.Event()
    s = shipper(producers=1)
    fake = GatedProducer(gate)
    s._producers = [fake]  # type: ignore[assignment]
    tasks = [asyncio.create_task(s.send(s.encode(recs(["q"] * 2)))) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert s._busy == [3]
    gate.set()
    assert await asyncio.gather(*tasks) == [Delivered()] * 3 and s._busy == [0]


def test_producers_option_is_validated():
    assert validate({"brokers": ["k:9092"], "topic": "t", "producers": 4}) == []
    assert validate({"brokers": ["k:9092"], "topic": "t", "producers": 0}) == [
        "producers: must be between 1 and 16, got 0"]
    assert shipper()._busy == [0]  # default: one producer, so a partition keeps the pipeline's order
