"""Drop-in osquery flags → a Kafka shipper body, so an osquery.flags file with `kafka_producer` works unchanged.

osquery's kafka_producer (plugins/logger/kafka_producer.cpp): brokers `host`, `host:port` (9092) or
`ssl://host:port` (then TLS with --tls_server_certs / --tls_client_cert / --tls_client_key), base topic
--logger_kafka_topic, acks --logger_kafka_acks (0, 1, all), codec --logger_kafka_compression (none, gzip),
topic per query from the config's `kafka_topics`, key and client id from the host name
(key "<hostname>_<binary>", client id "<hostname>"). Status logs are not published by osquery, so no
status topic is set.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


def _text(flags: Mapping[str, Any], name: str, default: str = "") -> str:
    v = flags.get(name)
    if v is None:
        return default
    return str(v).strip()


def plugins(flags: Mapping[str, Any]) -> list[str]:
    return [p.strip() for p in _text(flags, "logger_plugin", "filesystem").split(",") if p.strip()]


def from_osquery_flags(flags: Mapping[str, Any], kafka_topics: Mapping[str, Iterable[str]] | None = None, *,
                       hostname: str | None = None, binary: str | None = None) -> dict[str, Any] | None:
    """The raw `shippers` body for osquery's kafka_producer flags, or None when it is not enabled.

    `flags`: flag name → value (strings as in a flag file, or typed values). `kafka_topics`: the config's
    top-level mapping (it may also be given as flags["kafka_topics"]). The result goes through validate()
    like any configured shipper, so a bad flag value is reported with the field it maps to.
    """
    if "kafka_producer" not in plugins(flags):
        return None
    host = hostname or socket.gethostname()
    exe = binary or Path(sys.argv[0] or "quarry").name or "quarry"
    brokers: list[str] = []
    tls = False
    for item in _text(flags, "logger_kafka_brokers", "localhost").split(",") or ["localhost"]:
        item = item.strip()
        if not item:
            continue
        if item.lower().startswith("ssl://"):
            tls, item = True, item[len("ssl://"):]
        brokers.append(item if ":" in item else f"{item}:9092")
    body: dict[str, Any] = {
        "type": "kafka",
        "format": "osquery",
        "brokers": brokers or ["localhost:9092"],
        "topic": _text(flags, "logger_kafka_topic"),
        "key": "host",
        "host_key": f"{host}_{exe}",
        "client_id": host,
        "acks": _text(flags, "logger_kafka_acks", "all") or "all",
    }
    codec = _text(flags, "logger_kafka_compression", "none") or "none"
    body["compression"] = codec
    topics = kafka_topics if kafka_topics is not None else flags.get("kafka_topics")
    if topics:
        body["kafka_topics"] = {t: list(names) for t, names in topics.items()}
    if body["acks"] != "all":
        body["idempotence"] = False  # osquery's librdkafka producer is not idempotent below acks=all
    if tls:
        block: dict[str, Any] = {}
        for key, flag in (("ca_file", "tls_server_certs"), ("cert_file", "tls_client_cert"),
                          ("key_file", "tls_client_key")):
            if _text(flags, flag):
                block[key] = _text(flags, flag)
        body["tls"] = block
        body["security_protocol"] = "SSL"
    return body
