"""Smoke tests: aiokafka (>= 0.13) against the real Kafka 4.x broker (KRaft) started by the harness."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

pytestmark = pytest.mark.realserver
N = 10_000


def _msg(i: int) -> tuple[bytes, bytes]:
    return f"key-{i % 97}".encode(), f'{{"seq":{i},"payload":"{"x" * (i % 50)}"}}'.encode()


async def _roundtrip(topic: str, codec: str | None, client_kw: dict, group: str) -> None:
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, compression_type=codec,
                                linger_ms=5, **client_kw)
    await producer.start()
    try:
        futs = []
        for i in range(N):
            k, v = _msg(i)
            futs.append(await producer.send(topic, v, key=k, headers=[("h", str(i).encode())]))
        await producer.flush()
        metas = [await f for f in futs]
    finally:
        await producer.stop()
    assert len(metas) == N
    assert [m.offset for m in metas] == list(range(N))  # one partition, in order, no duplicates

    consumer = AIOKafkaConsumer(topic, group_id=group, auto_offset_reset="earliest", enable_auto_commit=False,
                                **client_kw)
    await consumer.start()
    got = []
    try:
        while len(got) < N:
            batch = await consumer.getmany(timeout_ms=5000)
            if not batch:
                break
            for records in batch.values():
                got.extend(records)
        await consumer.commit()
        committed = await consumer.committed(next(iter(consumer.assignment())))
    finally:
        await consumer.stop()
    assert len(got) == N
    assert [(r.key, r.value) for r in got] == [_msg(i) for i in range(N)]
    assert [dict(r.headers)["h"] for r in got] == [str(i).encode() for i in range(N)]
    assert committed == N


@pytest.mark.parametrize("codec", [None, "gzip", "snappy", "lz4", "zstd"])
async def test_produce_consume_10k(kafka_server, kafka_topic, codec):
    await _roundtrip(kafka_topic, codec, {"bootstrap_servers": kafka_server.bootstrap_servers}, f"g-{kafka_topic}")


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
async def test_sasl_ssl(kafka_sasl_server, kafka_topic, mechanism):
    await _roundtrip(kafka_topic, "zstd", kafka_sasl_server.client_kwargs(mechanism), f"g-{kafka_topic}")


async def test_sasl_ssl_rejects_bad_password(kafka_sasl_server, kafka_topic):
    kw = kafka_sasl_server.client_kwargs("SCRAM-SHA-512")
    kw["sasl_plain_password"] = "wrong"
    producer = AIOKafkaProducer(request_timeout_ms=5000, **kw)
    with pytest.raises(Exception):
        await producer.start()
    await producer.stop()
