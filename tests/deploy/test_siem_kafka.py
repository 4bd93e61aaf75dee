"""deploy/kafka: topics.properties and create-topics.sh.

Offline: the properties are consistent with the kafka shipper (its default topic, max_request_size) and Kafka's
allowed values, and the script's --dry-run prints exactly the kafka-topics.sh/kafka-configs.sh calls.
Realserver: the script creates the topics on the harness broker through the real kafka-topics.sh and
kafka-configs.sh classes (org.apache.kafka.tools from kafka-tools, fetched by tests/servers/setup.sh kafka), a
describe reads every setting back, a second run with a changed property converges the topic, and the kafka
shipper delivers a 1,000,000-byte uncompressed event into it.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from collector.pipeline.api import Delivered, Record
from shippers.kafka.config import KafkaConfig

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kafka"
SCRIPT = DEPLOY / "create-topics.sh"
PROPS = DEPLOY / "topics.properties"
CACHE = Path(os.environ.get("QUARRY_SERVERS_CACHE") or Path.home() / ".cache/quarry/servers")
JAVA17 = Path(os.environ.get("QUARRY_JAVA17_HOME", "/usr/lib/jvm/java-17-openjdk-amd64"))
# topic-level configs this file may set (Kafka 4.x TopicConfig names used here)
KNOWN_CONFIGS = {"min.insync.replicas", "compression.type", "max.message.bytes", "cleanup.policy", "retention.ms",
                 "retention.bytes", "segment.bytes"}


def parse(text: str) -> dict[str, str]:
    out = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9._-]+)=(.*)", line)
        assert m, f"topics.properties line {n}: {line!r}"
        out[m.group(1)] = m.group(2)
    return out


def topic_settings(props: dict[str, str], topic: str) -> tuple[int, int, dict[str, str]]:
    def get(key: str) -> str:
        return props.get(f"topic.{topic}.{key}", props[key])

    configs = {k[len("config."):]: v for k, v in props.items() if k.startswith("config.")}
    pre = f"topic.{topic}.config."
    configs.update({k[len(pre):]: v for k, v in props.items() if k.startswith(pre)})
    return int(get("partitions")), int(get("replication.factor")), configs


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_properties_match_the_shipper_and_kafka() -> None:
    props = parse(PROPS.read_text())
    topics = props["topics"].split(",")
    assert topics == ["osquery_results", "osquery_status"]
    assert '"topic": "osquery_results"' in (ROOT / "shippers" / "kafka" / "sample.conf").read_text()
    for key in props:
        if key.startswith("config."):
            assert key[len("config."):] in KNOWN_CONFIGS, key
        elif key.startswith("topic."):
            name = next(t for t in topics if key.startswith(f"topic.{t}."))
            rest = key[len(f"topic.{name}."):]
            assert rest in ("partitions", "replication.factor") or rest[len("config."):] in KNOWN_CONFIGS, key
        else:
            assert key in ("topics", "partitions", "replication.factor"), key
    shipper = KafkaConfig(brokers=("x:9092",))
    for t in topics:
        parts, rf, cfg = topic_settings(props, t)
        assert parts >= 1 and rf == 3 and int(cfg["min.insync.replicas"]) == 2 <= rf
        # the broker must take any batch the shipper may send: one event up to max_request_size
        assert int(cfg["max.message.bytes"]) >= shipper.max_request_size >= shipper.max_batch_size
        assert cfg["compression.type"] == "producer"
        assert cfg["cleanup.policy"] == "delete"
        assert int(cfg["retention.ms"]) >= 86400000
    assert topic_settings(props, "osquery_status")[0] == 1
    assert topic_settings(props, "osquery_results")[2]["retention.ms"] == "604800000"
    assert topic_settings(props, "osquery_status")[2]["retention.ms"] == "2592000000"


def test_dry_run_prints_the_commands() -> None:
    r = run("--bootstrap-server", "k1:9092", "--dry-run", env={"KAFKA_BIN": "/opt/kafka/bin"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0] == ("+ /opt/kafka/bin/kafka-topics.sh --bootstrap-server k1:9092 --create --if-not-exists "
                        "--topic osquery_results --partitions 6 --replication-factor 3 "
                        "--config cleanup.policy=delete --config compression.type=producer "
                        "--config max.message.bytes=1048588 --config min.insync.replicas=2 "
                        "--config retention.bytes=53687091200 --config retention.ms=604800000 "
                        "--config segment.bytes=268435456")
    assert lines[1] == ("+ /opt/kafka/bin/kafka-configs.sh --bootstrap-server k1:9092 --alter --entity-type topics "
                        "--entity-name osquery_results --add-config cleanup.policy=delete,compression.type=producer,"
                        "max.message.bytes=1048588,min.insync.replicas=2,retention.bytes=53687091200,"
                        "retention.ms=604800000,segment.bytes=268435456")
    assert "--topic osquery_status --partitions 1 --replication-factor 3" in lines[2]
    assert "retention.ms=2592000000" in lines[3]


def test_bad_input_exits_2_naming_the_problem(tmp_path: Path) -> None:
    r = run("--dry-run")
    assert r.returncode == 2 and "--bootstrap-server HOST:PORT is required" in r.stderr
    bad = tmp_path / "t.properties"
    bad.write_text("topics=a\npartitions = 3\n")
    r = run("--bootstrap-server", "k:1", "--dry-run", "--properties", str(bad))
    assert r.returncode == 2 and f"{bad} line 2: expected key=value" in r.stderr
    r = run("--bootstrap-server", "k:1", "--dry-run", "--replication-factor", "1")
    assert r.returncode == 2
    assert "osquery_results: min.insync.replicas (2) > replication factor (1)" in r.stderr
    bad.write_text("topics=a b\npartitions=1\nreplication.factor=1\n")
    r = run("--bootstrap-server", "k:1", "--dry-run", "--properties", str(bad))
    assert r.returncode == 0 and "--topic ab " in r.stdout  # spaces inside a name are stripped, as Kafka has none


# ------------------------------------------------------------------------------------------------- real broker
def _kafka_bin(tmp: Path) -> Path:
    """kafka-topics.sh / kafka-configs.sh as Kafka's bin/ scripts run them, on the harness's jars."""
    version = re.search(r"^KAFKA_VERSION=(\S+)", (ROOT / "tests/servers/versions.sh").read_text(), re.M)
    assert version
    home = CACHE / f"kafka-{version.group(1)}"
    tools = home / "tools" / f"kafka-tools-{version.group(1)}.jar"
    if not tools.is_file():
        pytest.skip(f"{tools} missing: run tests/servers/setup.sh kafka")
    bin_ = tmp / "bin"
    bin_.mkdir()
    for script, cls in (("kafka-topics.sh", "TopicCommand"), ("kafka-configs.sh", "ConfigCommand")):
        p = bin_ / script
        p.write_text(f'#!/bin/sh\nexec "{JAVA17}/bin/java" -Xmx256m -XX:TieredStopAtLevel=1 '
                     f'-cp "{tools}:{home}/lib/*" org.apache.kafka.tools.{cls} "$@"\n')
        p.chmod(0o755)
    return bin_


def _describe(bin_: Path, bootstrap: str, prefix: str) -> dict[str, tuple[int, int, dict[str, str]]]:
    """topic -> (partitions, replication factor, configs) for every topic whose name starts with prefix."""
    r = subprocess.run([str(bin_ / "kafka-topics.sh"), "--bootstrap-server", bootstrap, "--describe", "--topic",
                        f"{prefix}.*"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    out = {}
    for head in r.stdout.splitlines():
        m = re.match(r"Topic: (\S+)\s.*PartitionCount: *(\d+)\s+ReplicationFactor: *(\d+)\s+Configs: *(\S*)", head)
        if m:
            configs = dict(kv.split("=", 1) for kv in m.group(4).split(",") if kv)
            out[m.group(1)] = (int(m.group(2)), int(m.group(3)), configs)
    return out


def test_create_describe_converge_and_ship(kafka_server: Any, tmp_path: Path) -> None:
    bin_ = _kafka_bin(tmp_path)
    u = "siem_" + uuid.uuid4().hex[:10]
    text = PROPS.read_text().replace("osquery_results", f"{u}_results").replace("osquery_status", f"{u}_status")
    props_file = tmp_path / "topics.properties"
    props_file.write_text(text)
    props = parse(text)
    args = ("--bootstrap-server", kafka_server.bootstrap_servers, "--properties", str(props_file),
            "--replication-factor", "1", "--min-insync-replicas", "1")
    r = run(*args, env={"KAFKA_BIN": str(bin_)})
    assert r.returncode == 0, r.stdout + r.stderr
    described = _describe(bin_, kafka_server.bootstrap_servers, u)
    assert sorted(described) == [f"{u}_results", f"{u}_status"]
    for t in (f"{u}_results", f"{u}_status"):
        parts, _, want = topic_settings(props, t)
        want["min.insync.replicas"] = "1"
        assert f"ok   {t}: {parts} partitions, replication factor 1, {len(want)} configs" in r.stdout
        got_parts, got_rf, got = described[t]
        assert (got_parts, got_rf) == (parts, 1)
        assert {k: got.get(k) for k in want} == want

    # a second run converges an existing topic (create is skipped, configs are altered) and never shrinks it
    props_file.write_text(text.replace("config.retention.ms=604800000", "config.retention.ms=86400000")
                          .replace(f"topic.{u}_status.partitions=1", f"topic.{u}_status.partitions=2"))
    r = run(*args, env={"KAFKA_BIN": str(bin_)})
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"warn {u}_status has 1 partitions, 2 asked: not changed" in r.stdout
    assert "warn" not in r.stdout.replace(f"warn {u}_status", "")
    described = _describe(bin_, kafka_server.bootstrap_servers, u)
    parts, _, got = described[f"{u}_results"]
    assert parts == 6 and got["retention.ms"] == "86400000"
    parts, _, got = described[f"{u}_status"]
    assert parts == 1 and got["retention.ms"] == "2592000000"

    # the largest event the shipper sends by default goes into the topic as it is (no compression to hide it)
    from shippers.kafka import create

    payload = b'{"pad":"' + b"x" * (1_000_000 - 10) + b'"}'
    rec = Record(id="big-1", payload=payload, name="q", kind="result", host="h", time=1795773600.0)

    async def go() -> Any:
        s = create("siem", None, {"type": "kafka", "brokers": [kafka_server.bootstrap_servers],
                                  "topic": f"{u}_results", "compression": "none"})
        await s.open()
        try:
            return await s.send(s.encode([rec]))
        finally:
            await s.close()

    assert len(payload) == 1_000_000
    assert asyncio.run(go()) == Delivered()
