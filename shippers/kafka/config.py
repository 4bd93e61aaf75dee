"""Kafka shipper options: the declarative table, validation of a raw `shippers.<name>` body, and the
aiokafka keyword arguments built from it.

`validate(raw)` returns every problem as "<field>: <what is wrong>" (the caller prefixes the shipper name);
`parse(raw)` returns a frozen `KafkaConfig` or raises `ValueError` with all problems joined.
"""

from __future__ import annotations

import inspect
import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.pipeline.config import COMMON_KEYS, TlsSettings

# Keys every shipper body may carry that belong to the shared pipeline (queue, spool, batch, retry, tls...);
# collector.pipeline.config checks them. This module only adds what is Kafka-specific (see _tls).
PIPELINE_KEYS = COMMON_KEYS

CODECS = ("zstd", "lz4", "gzip", "snappy", "none")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KEYS = ("event_id", "host")
# Kafka's legal topic names (org.apache.kafka.common.internals.Topic): [a-zA-Z0-9._-], 1..249, not "." or "..".
_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
# aiokafka parameters this module sets itself; `options` may not override them (one place per setting).
_MANAGED = frozenset({"bootstrap_servers", "client_id", "acks", "enable_idempotence", "compression_type",
                      "linger_ms", "max_batch_size", "max_request_size", "request_timeout_ms", "security_protocol",
                      "ssl_context", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password", "loop",
                      "key_serializer", "value_serializer", "transactional_id", "api_version"})


def codec_available(codec: str) -> bool:
    """Whether aiokafka can use this codec here (snappy/lz4/zstd need cramjam; gzip is stdlib)."""
    if codec == "none":
        return True
    from aiokafka import codec as kc  # type: ignore[import-untyped]

    check = {"gzip": kc.has_gzip, "snappy": kc.has_snappy, "lz4": kc.has_lz4, "zstd": kc.has_zstd}.get(codec)
    return bool(check and check())


def default_codec() -> str:
    return "zstd" if codec_available("zstd") else "gzip"


# (name, type shown in the README, default, meaning) — the README's options table follows this list.
OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("brokers", "list of strings or comma string", None, "bootstrap brokers, `host` or `host:port` (9092)"),
    ("topic", "string", "", "base topic: results whose query has no `kafka_topics` entry go here"),
    ("kafka_topics", "object {topic: [query names]}", {}, ("osquery's mapping; the config's top-level "
     "`kafka_topics` is used when this is absent")),
    ("status_topic", "string", "", "topic for status events (none: not published, reported as `no topic`)"),
    ("key", "`event_id` or `host`", "event_id", ("message key; with `host` the event id goes in header "
     "`quarry-event-id`")),
    ("host_key", "string", "", ("fixed key for `key: host` (osquery: `<hostname>_<binary>`); empty: the "
     "event's host identifier")),
    ("client_id", "string", "quarry-<name>", "Kafka client id"),
    ("acks", "`0`, `1` or `all`", "all", "acknowledgements the leader waits for"),
    ("idempotence", "bool", True, "idempotent producer (needs `acks: all`; defaults to false otherwise)"),
    ("compression", "`zstd`, `lz4`, `gzip`, `snappy` or `none`", "zstd (gzip without cramjam)",
     "batch compression codec"),
    ("linger_ms", "int", 0, ("how long the last, partly filled partition batch of a request waits before it "
     "is sent; the pipeline has already batched, so more only adds latency")),
    ("max_batch_size", "int (bytes)", 524288, "uncompressed bytes per partition batch"),
    ("producers", "int (1-16)", 1, ("producers (connections) used in turn: aiokafka has one request in flight "
     "per broker connection, so a second one overlaps the next batch's encoding with the broker's work (set it "
     "to the pipeline's `concurrency`); with more than one, two requests in flight may reach a partition out "
     "of order")),
    ("max_request_size", "int (bytes)", 1048576, "largest message; bigger events are truncated with a marker"),
    ("request_timeout_ms", "int", 30000, "per broker request"),
    ("send_timeout_ms", "int", 45000, ("whole send() of one batch (produce and acks); past it: Retry. Keep it "
     "below the pipeline's `request_timeout_s` (60 s)")),
    ("connect_timeout_ms", "int", 10000, "producer start-up and health check"),
    ("close_timeout_ms", "int", 10000, "flush and stop at shutdown; then the producer is torn down"),
    ("security_protocol", "`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`", "derived",
     "derived from `tls` and `sasl` when absent"),
    ("tls", "object", None, ("the pipeline's shared block: `ca_file`, `cert_file`, `key_file`, `verify` "
     "(true; host names are checked too); `server_name` is not supported")),
    ("sasl", "object", None, ("`mechanism` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), `username`, and one of "
     "`password`, `password_env`, `password_file`")),
    ("options", "object", {}, ("other AIOKafkaProducer keyword arguments, passed through (checked against "
     "its signature)")),
)
_KNOWN = frozenset(o[0] for o in OPTIONS)
_SASL_KEYS = frozenset({"mechanism", "username", "password", "password_env", "password_file"})


@dataclass(frozen=True)
class SaslConfig:
    mechanism: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class KafkaConfig:
    brokers: tuple[str, ...]
    topic: str = ""
    kafka_topics: dict[str, tuple[str, ...]] | None = None  # None: take the config's top-level mapping
    status_topic: str = ""
    key: str = "event_id"
    host_key: str = ""
    client_id: str = ""
    acks: int | str = "all"
    idempotence: bool = True
    compression: str = "zstd"
    linger_ms: int = 0
    max_batch_size: int = 524288
    producers: int = 1
    max_request_size: int = 1048576
    request_timeout_ms: int = 30000
    send_timeout_ms: int = 45000
    connect_timeout_ms: int = 10000
    close_timeout_ms: int = 10000
    security_protocol: str = "PLAINTEXT"
    tls: TlsSettings | None = None
    sasl: SaslConfig | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def producer_kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {
            "bootstrap_servers": list(self.brokers), "acks": self.acks, "enable_idempotence": self.idempotence,
            "compression_type": None if self.compression == "none" else self.compression,
            "linger_ms": self.linger_ms, "max_batch_size": self.max_batch_size, "max_request_size": self.max_request_size,
            "request_timeout_ms": self.request_timeout_ms, "security_protocol": self.security_protocol,
        }
        if self.client_id:
            kw["client_id"] = self.client_id
        if self.security_protocol in ("SSL", "SASL_SSL"):
            kw["ssl_context"] = (self.tls or TlsSettings()).context()
        if self.sasl:
            kw.update(sasl_mechanism=self.sasl.mechanism, sasl_plain_username=self.sasl.username,
                      sasl_plain_password=self.sasl.password)
        kw.update(self.options)
        return kw


def valid_topic(name: str) -> bool:
    return bool(_TOPIC_RE.match(name)) and name not in (".", "..")


def _producer_params() -> dict[str, inspect.Parameter]:
    from aiokafka import AIOKafkaProducer

    return dict(inspect.signature(AIOKafkaProducer.__init__).parameters)


class _Checker:
    """Collects "<field>: problem" messages while reading a raw body."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.errors: list[str] = []

    def err(self, fld: str, msg: str) -> None:
        self.errors.append(f"{fld}: {msg}")

    def string(self, body: dict[str, Any], key: str, fld: str, default: str = "") -> str:
        v = body.get(key, default)
        if not isinstance(v, str):
            self.err(fld, f"expected a string, got {type(v).__name__}")
            return default
        return v

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        v = self.raw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int):
            self.err(key, f"expected an integer, got {v!r}")
            return default
        if not lo <= v <= hi:
            self.err(key, f"must be between {lo} and {hi}, got {v}")
            return default
        return v

    def boolean(self, body: dict[str, Any], key: str, fld: str, default: bool) -> bool:
        v = body.get(key, default)
        if not isinstance(v, bool):
            self.err(fld, f"expected true or false, got {v!r}")
            return default
        return v

    def topic(self, fld: str, name: str, allow_empty: bool = True) -> None:
        if name == "" and allow_empty:
            return
        if not valid_topic(name):
            self.err(fld, f"invalid Kafka topic name {name!r} (1-249 of [a-zA-Z0-9._-], not '.' or '..')")


def _brokers(c: _Checker) -> tuple[str, ...]:
    v = c.raw.get("brokers")
    if v is None:
        c.err("brokers", "required (e.g. [\"kafka1:9092\"])")
        return ()
    items = [s.strip() for s in v.split(",")] if isinstance(v, str) else v
    if not isinstance(items, list) or not items or not all(isinstance(s, str) and s.strip() for s in items):
        c.err("brokers", f"expected a non-empty list of \"host[:port]\" strings, got {v!r}")
        return ()
    out = []
    for s in (s.strip() for s in items):
        host, sep, port = s.rpartition(":") if not s.endswith("]") else (s, "", "")
        if not sep:
            host, port = s, "9092"
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or "://" in s:
            c.err("brokers", f"{s!r} is not host or host:port")
            continue
        out.append(f"{host}:{port}")
    return tuple(out)


def _kafka_topics(c: _Checker) -> dict[str, tuple[str, ...]] | None:
    if "kafka_topics" not in c.raw:
        return None
    v = c.raw["kafka_topics"]
    if not isinstance(v, dict):
        c.err("kafka_topics", f"expected an object {{topic: [query names]}}, got {type(v).__name__}")
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for topic, names in v.items():
        c.topic(f"kafka_topics.{topic}", topic, allow_empty=False)
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            c.err(f"kafka_topics.{topic}", "expected a list of query names")
            continue
        out[topic] = tuple(names)
    return out


def _tls(c: _Checker) -> TlsSettings | None:
    """The shared `tls` block as the pipeline reads it (types, unknown keys and missing files are reported by
    collector.pipeline.config); here only what matters to Kafka: the PEM files must load, no server_name."""
    v = c.raw.get("tls")
    if not isinstance(v, dict):
        return None
    fields = {k: v.get(k) for k in ("ca_file", "cert_file", "key_file")}
    files = {k: p for k, p in fields.items() if isinstance(p, str) and p}
    verify = v.get("verify", True)
    cfg = TlsSettings(files.get("ca_file"), files.get("cert_file"), files.get("key_file"),
                      verify if isinstance(verify, bool) else True)
    if v.get("server_name") is not None:
        c.err("tls.server_name", "not supported by the kafka shipper: each broker is checked against its own "
                                 "advertised host name")
    if all(Path(p).is_file() for p in files.values()) and not (cfg.key_file and not cfg.cert_file):
        try:  # load the files now so a bad PEM is a config error, not a send-time failure
            cfg.context()
        except (ssl.SSLError, OSError) as e:
            c.err("tls", f"cannot build a TLS context from these files: {e}")
    return cfg


def _sasl(c: _Checker) -> SaslConfig | None:
    v = c.raw.get("sasl")
    if v is None:
        return None
    if not isinstance(v, dict):
        c.err("sasl", f"expected an object, got {type(v).__name__}")
        return None
    for k in sorted(set(v) - _SASL_KEYS):
        c.err(f"sasl.{k}", f"unknown option (known: {', '.join(sorted(_SASL_KEYS))})")
    mech = c.string(v, "mechanism", "sasl.mechanism", "PLAIN")
    if mech not in SASL_MECHANISMS:
        c.err("sasl.mechanism", f"must be one of {', '.join(SASL_MECHANISMS)}, got {mech!r}")
    user = c.string(v, "username", "sasl.username")
    if not user:
        c.err("sasl.username", "required")
    sources = [k for k in ("password", "password_env", "password_file") if k in v]
    password = ""
    if len(sources) != 1:
        c.err("sasl.password", "give exactly one of password, password_env, password_file")
    elif sources[0] == "password":
        password = c.string(v, "password", "sasl.password")
    elif sources[0] == "password_env":
        env = c.string(v, "password_env", "sasl.password_env")
        password = os.environ.get(env, "")
        if not password:
            c.err("sasl.password_env", f"environment variable {env!r} is unset or empty")
    else:
        path = c.string(v, "password_file", "sasl.password_file")
        try:
            password = Path(path).read_text().strip()
        except OSError as e:
            c.err("sasl.password_file", f"cannot read {path!r}: {e.strerror}")
    return SaslConfig(mech, user, password)


def _options(c: _Checker) -> dict[str, Any]:
    v = c.raw.get("options", {})
    if not isinstance(v, dict):
        c.err("options", f"expected an object, got {type(v).__name__}")
        return {}
    params = _producer_params()
    for k in sorted(v):
        if k in _MANAGED:
            c.err(f"options.{k}", "is set by this shipper's own option; use that instead")
        elif k not in params or k == "self":
            c.err(f"options.{k}", "not an AIOKafkaProducer argument")
    return dict(v)


def check(raw: dict[str, Any]) -> tuple[KafkaConfig | None, list[str]]:
    """Read a raw body: (config, []) when valid, else (None, problems)."""
    c = _Checker(raw)
    for k in sorted(set(raw) - _KNOWN - PIPELINE_KEYS):
        c.err(k, "unknown option")
    if raw.get("format", "osquery") not in ("osquery", "ecs"):
        c.err("format", f"must be osquery or ecs, got {raw.get('format')!r}")
    brokers = _brokers(c)
    topic = c.string(raw, "topic", "topic")
    c.topic("topic", topic)
    status_topic = c.string(raw, "status_topic", "status_topic")
    c.topic("status_topic", status_topic)
    key = c.string(raw, "key", "key", "event_id")
    if key not in KEYS:
        c.err("key", f"must be event_id or host, got {key!r}")
    acks: int | str = raw.get("acks", "all")
    if acks in ("0", "1"):
        acks = int(acks)
    if isinstance(acks, bool) or acks not in (0, 1, "all", -1):
        c.err("acks", f"must be 0, 1 or \"all\", got {raw.get('acks')!r}")
        acks = "all"
    acks = "all" if acks == -1 else acks
    idem = c.boolean(raw, "idempotence", "idempotence", acks == "all")
    if idem and acks != "all":
        c.err("idempotence", f"needs acks \"all\" (acks is {acks!r}); set idempotence: false")
    codec = c.string(raw, "compression", "compression", default_codec())
    if codec not in CODECS:
        c.err("compression", f"must be one of {', '.join(CODECS)}, got {codec!r}")
    elif not codec_available(codec):
        c.err("compression", f"{codec} is not available here: aiokafka needs the cramjam package for it "
                             "(pip install cramjam); gzip and none always work")
    ints = {k: c.integer(k, d, lo, hi) for k, d, lo, hi in (
        ("linger_ms", 0, 0, 60000), ("max_batch_size", 524288, 1024, 64 << 20),
        ("max_request_size", 1048576, 1024, 1 << 30), ("request_timeout_ms", 30000, 100, 3600000),
        ("send_timeout_ms", 45000, 100, 3600000), ("connect_timeout_ms", 10000, 100, 600000),
        ("close_timeout_ms", 10000, 0, 600000), ("producers", 1, 1, 16))}
    limit = raw.get("request_timeout_s")
    if isinstance(limit, int | float) and not isinstance(limit, bool) and ints["send_timeout_ms"] >= limit * 1000:
        c.err("send_timeout_ms", f"must be below the pipeline's request_timeout_s ({limit:g} s), so that a slow "
                                 "send is classified here rather than cut off there")
    if ints["max_batch_size"] > ints["max_request_size"]:
        c.err("max_batch_size", f"must not exceed max_request_size ({ints['max_request_size']})")
    tls, sasl = _tls(c), _sasl(c)
    proto = c.string(raw, "security_protocol", "security_protocol",
                     ("SASL_" if sasl else "") + ("SSL" if tls else "PLAINTEXT"))
    if proto not in PROTOCOLS:
        c.err("security_protocol", f"must be one of {', '.join(PROTOCOLS)}, got {proto!r}")
    elif proto.startswith("SASL") and not sasl:
        c.err("sasl", f"required with security_protocol {proto}")
    elif sasl and not proto.startswith("SASL"):
        c.err("security_protocol", f"{proto} does not use SASL; the sasl block would be ignored")
    elif tls and not proto.endswith("SSL"):
        c.err("security_protocol", f"{proto} does not use TLS; the tls block would be ignored")
    cfg = KafkaConfig(
        brokers=brokers, topic=topic, kafka_topics=_kafka_topics(c), status_topic=status_topic, key=key,
        host_key=c.string(raw, "host_key", "host_key"), client_id=c.string(raw, "client_id", "client_id"),
        acks=acks, idempotence=idem, compression=codec, security_protocol=proto, tls=tls, sasl=sasl,
        options=_options(c), **ints)
    return (None, c.errors) if c.errors else (cfg, [])
