"""kcat (Debian, librdkafka 2.0.x) against the harness's Kafka 4.x broker: the C client used by the
comparison benchmarks must be able to produce and consume there too."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from aiokafka import AIOKafkaConsumer

from tests.servers.plugin import IN_CI

pytestmark = pytest.mark.realserver
N = 1000


@pytest.fixture
def kcat() -> str:
    path = shutil.which("kcat")
    if not path:
        msg = "kcat is missing; install with: tests/servers/setup.sh apt (apt-get install -y kcat)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


async def test_kcat_produce_then_consume(kcat, kafka_server, kafka_topic):
    lines = "".join(f"kcat-{i}\n" for i in range(N))
    subprocess.run([kcat, "-b", kafka_server.bootstrap_servers, "-P", "-t", kafka_topic, "-z", "zstd",
                    "-X", "acks=all", "-X", "enable.idempotence=true"],
                   input=lines, text=True, check=True, timeout=60, capture_output=True)
    c = AIOKafkaConsumer(kafka_topic, bootstrap_servers=kafka_server.bootstrap_servers,
                         auto_offset_reset="earliest", enable_auto_commit=False)
    await c.start()
    got = []
    try:
        while len(got) < N:
            batch = await c.getmany(timeout_ms=5000)
            if not batch:
                break
            for recs in batch.values():
                got.extend(r.value.decode() for r in recs)
    finally:
        await c.stop()
    assert got == [f"kcat-{i}" for i in range(N)]
    out = subprocess.run([kcat, "-b", kafka_server.bootstrap_servers, "-C", "-t", kafka_topic, "-o", "beginning",
                          "-e", "-q"], text=True, check=True, timeout=60, capture_output=True).stdout
    assert out.splitlines() == got
