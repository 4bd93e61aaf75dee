"""End to end: `quarry run` with a `shippers` section delivers every row to a real Kafka broker."""

from __future__ import annotations

import asyncio
import json
import time

import orjson
import pytest

from tests.daemon.test_daemon import Daemon, write_config


async def consume(bootstrap: str, topic: str, want: int, timeout: float = 60.0) -> list:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    got = []
    try:
        async with asyncio.timeout(timeout):
            while len(got) < want:
                batch = await consumer.getmany(timeout_ms=1000)
                for msgs in batch.values():
                    got.extend(msgs)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return got


@pytest.mark.realserver
def test_every_row_reaches_kafka_as_osquery_lines_and_ecs(tmp_path, kafka_server, kafka_topic):
    n = 250
    schedule = {"numbers": {"query": f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                                     f"WHERE x < {n}) SELECT x AS pid, 'p' || x AS name FROM c",
                            "interval": 3600, "run_at_start": True}}
    shippers = {
        "k_osquery": {"type": "kafka", "brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic,
                      "format": "osquery", "compression": "gzip"},
        "k_ecs": {"type": "kafka", "brokers": [kafka_server.bootstrap_servers], "topic": kafka_topic + "-ecs",
                  "format": "ecs"},
        "broken": {"type": "kafka", "brokers": [kafka_server.bootstrap_servers], "acks": "sometimes"},
    }
    conf = tmp_path / "quarry.conf"
    write_config(conf, schedule, shippers=shippers)
    d = Daemon(tmp_path, conf)
    try:
        d.wait_for(lambda x: x["name"] == "numbers")
        lines = asyncio.run(consume(kafka_server.bootstrap_servers, kafka_topic, n))
        docs = asyncio.run(consume(kafka_server.bootstrap_servers, kafka_topic + "-ecs", n))
    finally:
        assert d.stop() == 0
    assert "shippers.broken" in d.stderr.read_text()  # the bad shipper is reported, the others run
    values = sorted(json.loads(m.value)["columns"]["pid"] for m in lines)
    assert len(lines) == n and values == sorted(str(i) for i in range(1, n + 1))
    assert len({m.key for m in lines}) == n  # one stable event id per row
    ecs = [orjson.loads(m.value) for m in docs]
    assert len(ecs) == n and all(doc["ecs"]["version"] == "9.4.0" and doc["event"]["reason"] for doc in ecs)
    assert {doc["event"]["id"] for doc in ecs} == {m.key.decode() for m in lines}
    # the same rows went to the results log too
    assert len([x for x in d.lines() if x["name"] == "numbers"]) == n


def _count(url: str, name: str) -> int:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/logs-osquery.*/_refresh", method="POST"), timeout=30)
    body = json.dumps({"query": {"term": {"osquery.query.name": name}}}).encode()
    req = urllib.request.Request(f"{url}/logs-osquery.*/_count", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return int(json.loads(r.read())["count"])


@pytest.mark.realserver
def test_one_run_reaches_files_lumberjack_hec_elasticsearch_and_opensearch(
        tmp_path, elasticsearch_server, opensearch_server, lumberjack_server, lumberjack_output, hec_target):
    import uuid

    n = 300
    name = f"numbers_{uuid.uuid4().hex[:8]}"
    schedule = {name: {"query": f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
                                "SELECT x AS pid, 'p' || x AS name FROM c",
                       "interval": 3600, "run_at_start": True}}
    shippers = {
        "files": {"type": "file", "format": "ecs", "dir": str(tmp_path / "ecs")},
        "beats": {"type": "logstash", "hosts": [f"{lumberjack_server.host}:{lumberjack_server.port}"]},
        "es": {"type": "elasticsearch", "hosts": [elasticsearch_server.url], "install_template": True},
        "os": {"type": "opensearch", "hosts": [opensearch_server.url], "install_template": True},
        "hec": {"type": "splunk_hec", "url": hec_target.url, "token": hec_target.token},
    }
    conf = tmp_path / "quarry.conf"
    write_config(conf, schedule, shippers=shippers)
    d = Daemon(tmp_path, conf)
    try:
        d.wait_for(lambda x: x["name"] == name)
        deadline = time.monotonic() + 90
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            ecs_file = tmp_path / "ecs" / "quarry.ecs.ndjson"
            counts = {
                "files": len(ecs_file.read_text().splitlines()) if ecs_file.exists() else 0,
                "beats": len(lumberjack_output.read_text().splitlines()) if lumberjack_output.exists() else 0,
                "es": _count(elasticsearch_server.url, name),
                "os": _count(opensearch_server.url, name),
            }
            if all(v >= n for v in counts.values()):
                break
            time.sleep(1)
    finally:
        assert d.stop() == 0
    assert counts == {"files": n, "beats": n, "es": n, "os": n}, d.stderr.read_text()[-3000:]
    docs = [json.loads(x) for x in (tmp_path / "ecs" / "quarry.ecs.ndjson").read_text().splitlines()]
    assert {doc["osquery"]["query"]["name"] for doc in docs} == {name}
    assert len({doc["event"]["id"] for doc in docs}) == n
    beats = [json.loads(x) for x in lumberjack_output.read_text().splitlines()]
    assert {b["@metadata"]["_id"] for b in beats} == {doc["event"]["id"] for doc in docs}
    hec = hec_target.read_events(expected=n)
    assert len(hec) == n, f"{len(hec)} events reached the HEC receiver"
    assert {json.dumps(e, sort_keys=True).count(name) > 0 for e in hec} == {True}
