"""Kafka shipper classification: aiokafka exceptions → verdicts, per-message tallies → one Outcome, and
send() driven through a scripted stand-in producer (the transport seam) for every error path."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import errors as ke
from aiokafka.producer.message_accumulator import BatchBuilder

from collector.pipeline.api import Delivered, Partial, Record, Rejected, Retry, TooLarge
from shippers.kafka import create
from shippers.kafka.classify import Tally, verdict


@pytest.mark.parametrize("exc, action, restart", [
    (ke.KafkaConnectionError("Unable to bootstrap"), "retry", False),
    (ke.RequestTimedOutError(), "retry", False),
    (ke.NotEnoughReplicasError(), "retry", False),
    (ke.NotEnoughReplicasAfterAppendError(), "retry", False),
    (ke.LeaderNotAvailableError(), "retry", False),
    (ke.NotLeaderForPartitionError(), "retry", False),
    (ke.KafkaTimeoutError(), "retry", False),
    (TimeoutError(), "retry", False),
    (ConnectionResetError(104, "reset"), "retry", False),
    (ke.UnknownTopicOrPartitionError(), "retry", False),  # cluster state unknown
    (ke.MessageSizeTooLargeError(), "too_large", False),
    (ke.RecordListTooLargeError(), "too_large", False),
    (ke.TopicAuthorizationFailedError("secret"), "reject", False),
    (ke.InvalidTopicError(), "reject", False),
    (ke.CorruptRecordException(), "reject", False),
    (ke.PolicyViolationError(), "reject", False),
    (ke.SaslAuthenticationFailed(), "retry", True),
    (ke.ClusterAuthorizationFailedError(), "retry", True),
    (ke.OutOfOrderSequenceNumber(), "retry", True),
    (ke.ProducerClosed(), "retry", True),
    (ke.UnknownError(), "retry", True),
    (RuntimeError("boom"), "retry", True),
])
def test_verdict_table(exc, action, restart):
    v = verdict(exc)
    assert (v.action, v.restart) == (action, restart)
    assert type(exc).__name__ in v.reason


def test_unknown_topic_confirmed_absent_is_rejected():
    v = verdict(ke.UnknownTopicOrPartitionError(), topic_exists=False)
    assert v.action == "reject" and "auto-create" in v.reason
    assert verdict(ke.UnknownTopicOrPartitionError(), topic_exists=True).action == "retry"


def test_tally_outcomes():
    t = Tally(3)
    t.ok([0, 1, 2])
    assert t.outcome() == Delivered()
    t = Tally(2)
    t.add([0, 1], verdict(ke.RequestTimedOutError()))
    assert isinstance(t.outcome(), Retry) and "RequestTimedOutError" in t.outcome().reason
    t = Tally(2)
    t.reject(0, "no topic: x")
    t.reject(1, "no topic: x")
    assert t.outcome() == Rejected("no topic: x")
    t = Tally(4)
    t.ok([0])
    t.reject(1, "no topic: q")
    t.add([2], verdict(ke.LeaderNotAvailableError()))
    out = t.outcome("timeout!")  # index 3 never settled
    assert out == Partial(retry=(2, 3), rejected=((1, "no topic: q"),), retry_reason=out.retry_reason)
    assert "LeaderNotAvailable" in out.retry_reason


def test_too_large_splits_batches_and_rejects_single_records():
    t = Tally(2)
    t.ok([0])
    t.add([1], verdict(ke.MessageSizeTooLargeError()))
    assert isinstance(t.outcome(), TooLarge)
    t = Tally(1)
    t.add([0], verdict(ke.MessageSizeTooLargeError("big")))
    out = t.outcome()
    assert isinstance(out, Rejected) and "MessageSizeTooLargeError" in out.reason


# --- send() through a scripted producer ------------------------------------------------------------
class FakeProducer:
    """Stands in for AIOKafkaProducer's batch API. script[topic] is one of: "ok", ("meta", exc),
    ("submit", exc), ("future", exc), "hang"."""

    def __init__(self, script: dict[str, Any], partitions: dict[str, list[int]] | None = None) -> None:
        self.script = script
        self.partitions = partitions or {}
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes, list]]]] = []

    async def partitions_for(self, topic: str) -> set[int]:
        s = self.script.get(topic, "ok")
        if isinstance(s, tuple) and s[0] == "meta":
            raise s[1]
        return set(self.partitions.get(topic, [0]))

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(200, 0)  # tiny, so a request spans several batches

    async def send_batch(self, builder: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future:
        s = self.script.get(topic, "ok")
        if isinstance(s, tuple) and s[0] == "submit":
            raise s[1]
        fut = asyncio.get_running_loop().create_future()
        self.sent.append((topic, partition, builder.record_count()))
        if s == "ok":
            fut.set_result(None)
        elif isinstance(s, tuple) and s[0] == "future":
            fut.set_exception(s[1])
        return fut  # "hang": never resolves

    async def stop(self) -> None:
        pass


def recs(names: list[str]) -> list[Record]:
    return [Record(id=f"e{i}", payload=b'{"x":%d}' % i, name=n) for i, n in enumerate(names)]


async def run(script: dict[str, Any], names: list[str], **raw: Any):
    s = create("k", None, {"type": "kafka", "brokers": ["127.0.0.1:9"], "kafka_topics": {"ta": ["a"], "tb": ["b"]},
                           "send_timeout_ms": 300, **raw})
    fake = FakeProducer(script)
    s._producer = fake  # type: ignore[assignment]
    out = await s.send(s.encode(recs(names)))
    return out, fake, s


async def test_send_all_delivered_in_several_batches():
    out, fake, _ = await run({}, ["a"] * 10)
    assert out == Delivered()
    assert sum(n for _, _, n in fake.sent) == 10 and len(fake.sent) > 1


async def test_send_partial_retry_for_one_failing_topic():
    out, _, _ = await run({"tb": ("future", ke.NotEnoughReplicasError())}, ["a", "b", "a", "b", "c"])
    # "c" has no topic (no base topic): rejected; "b" retried; "a" delivered
    assert isinstance(out, Partial)
    assert out.retry == (1, 3) and "NotEnoughReplicas" in out.retry_reason
    assert [i for i, _ in out.rejected] == [4] and out.rejected[0][1].startswith("no topic")


async def test_send_topic_authorization_rejected():
    out, _, _ = await run({"ta": ("meta", ke.TopicAuthorizationFailedError("ta"))}, ["a", "a"])
    assert isinstance(out, Rejected) and "TopicAuthorizationFailed" in out.reason


async def test_send_submit_timeout_retried():
    out, _, _ = await run({"ta": ("submit", ke.KafkaTimeoutError())}, ["a", "a", "a"])
    assert isinstance(out, Retry) and "KafkaTimeoutError" in out.reason


async def test_send_hang_is_bounded_and_retried():
    out, _, s = await run({"tb": "hang"}, ["a", "b"])
    assert out == Partial(retry=(1,), rejected=(), retry_reason=out.retry_reason)
    assert "send_timeout_ms" in out.retry_reason and s.stats["timeouts"] == 1


async def test_send_broker_too_large_splits():
    out, _, _ = await run({"ta": ("future", ke.MessageSizeTooLargeError())}, ["a", "a"])
    assert isinstance(out, TooLarge)


async def test_send_fatal_producer_error_restarts_producer():
    out, _, s = await run({"ta": ("future", ke.OutOfOrderSequenceNumber())}, ["a"])
    assert isinstance(out, Retry)
    assert s._producer is None and s.stats["producer_restarts"] == 1


async def test_send_multi_partition_routes_by_key():
    s = create("k", None, {"type": "kafka", "brokers": ["127.0.0.1:9"], "topic": "t"})
    fake = FakeProducer({}, {"t": [0, 1, 2]})
    s._producer = fake  # type: ignore[assignment]
    out = await s.send(s.encode(recs(["q"] * 30)))
    assert out == Delivered()
    assert {p for _, p, _ in fake.sent} == {0, 1, 2}
    assert sum(n for _, _, n in fake.sent) == 30


async def test_send_unreachable_cluster_is_retry_never_delivered():
    s = create("k", None, {"type": "kafka", "brokers": ["127.0.0.1:1"], "topic": "t", "connect_timeout_ms": 1500})
    await s.open()  # logs, does not raise
    out = await s.send(s.encode(recs(["q", "q"])))
    assert isinstance(out, Retry) and "not reachable" in out.reason
    assert not (await s.healthcheck()).ok
    await s.close()
