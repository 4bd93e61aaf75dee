"""Kafka shipper configuration: validate() errors name the field, sample.conf loads through the real config
reader and validator (README quotes it verbatim), TLS/SASL/options building, and the osquery flags mapping."""

from __future__ import annotations

import re
import ssl
from pathlib import Path

import pytest

from collector.config.text import loads
from collector.errors import ConfigError
from shippers.kafka import create, from_osquery_flags, validate
from shippers.kafka.config import check, default_codec

PKG = Path(__file__).resolve().parents[3] / "shippers" / "kafka"
OK = {"type": "kafka", "brokers": ["k1:9092"], "topic": "t"}


def errors(**raw) -> list[str]:
    return validate({**OK, **raw})


def test_minimal_is_valid_with_safe_defaults():
    cfg, errs = check(OK)
    assert errs == [] and cfg is not None
    assert (cfg.acks, cfg.idempotence, cfg.compression, cfg.key) == ("all", True, default_codec(), "event_id")
    assert cfg.brokers == ("k1:9092",)
    kw = cfg.producer_kwargs()
    assert kw["enable_idempotence"] is True and kw["acks"] == "all" and kw["security_protocol"] == "PLAINTEXT"
    assert "ssl_context" not in kw


@pytest.mark.parametrize("raw, field", [
    ({"brokers": None}, "brokers"),
    ({"brokers": []}, "brokers"),
    ({"brokers": ["k1:notaport"]}, "brokers"),
    ({"brokers": ["ssl://k1:9093"]}, "brokers"),
    ({"bogus": 1}, "bogus"),
    ({"acks": 2}, "acks"),
    ({"acks": 1}, "idempotence"),  # acks 1 with the default... is fine: idempotence defaults false
    ({"acks": 1, "idempotence": True}, "idempotence"),
    ({"compression": "brotli"}, "compression"),
    ({"key": "hostname"}, "key"),
    ({"topic": "has space"}, "topic"),
    ({"status_topic": ".."}, "status_topic"),
    ({"kafka_topics": {"t1": "q1"}}, "kafka_topics.t1"),
    ({"kafka_topics": {"bad/topic": ["q1"]}}, "kafka_topics.bad/topic"),
    ({"linger_ms": -1}, "linger_ms"),
    ({"linger_ms": "20"}, "linger_ms"),
    ({"max_batch_size": 2_000_000}, "max_batch_size"),
    ({"request_timeout_ms": True}, "request_timeout_ms"),
    ({"format": "xml"}, "format"),
    ({"tls": {"server_name": "kafka.example"}}, "tls.server_name"),
    ({"tls": {"ca_file": "/etc/hostname"}}, "tls"),  # not a PEM file
    ({"tls": {}, "security_protocol": "PLAINTEXT"}, "security_protocol"),
    ({"send_timeout_ms": 60000, "request_timeout_s": 60}, "send_timeout_ms"),
    ({"sasl": {"mechanism": "GSSAPI", "username": "u", "password": "p"}}, "sasl.mechanism"),
    ({"sasl": {"mechanism": "PLAIN", "password": "p"}}, "sasl.username"),
    ({"sasl": {"mechanism": "PLAIN", "username": "u"}}, "sasl.password"),
    ({"sasl": {"username": "u", "password_env": "QUARRY_TEST_UNSET_VAR"}}, "sasl.password_env"),
    ({"security_protocol": "SASL_SSL"}, "sasl"),
    ({"security_protocol": "TLS"}, "security_protocol"),
    ({"options": {"metadata_max_age_ms": 1000, "no_such_arg": 1}}, "options.no_such_arg"),
    ({"options": {"acks": 0}}, "options.acks"),
])
def test_validate_names_the_field(raw, field):
    errs = errors(**raw)
    if raw == {"acks": 1}:
        assert errs == []
        return
    assert any(e.startswith(f"{field}:") for e in errs), errs


@pytest.mark.parametrize("tls, field", [
    ({"ca_file": "/nonexistent/ca.pem"}, "tls.ca_file"),
    ({"verfy": False}, "tls.verfy"),
    ({"key_file": "/etc/hostname"}, "tls.key_file"),
    ({"verify": "yes"}, "tls.verify"),
])
def test_shared_tls_block_is_checked_once_by_the_pipeline(tls, field):
    from collector.pipeline import validate_shipper

    errs = validate_shipper("kafka_main", {**OK, "tls": tls})
    hits = [e for e in errs if f"{field}:" in e]
    assert len(hits) == 1, errs  # reported once, naming the shipper and the field
    assert hits[0].startswith(f"shippers.kafka_main.{field}:")


def test_pipeline_validates_and_creates_through_the_registry():
    from collector.pipeline import create_shipper, parse_settings, validate_shipper

    raw = {**OK, "format": "ecs", "acks": "most", "batch": {"max_events": 10}}
    assert validate_shipper("kafka_main", raw) == ['shippers.kafka_main: acks: must be 0, 1 or "all", got \'most\'']
    raw["acks"] = "all"
    settings, errs = parse_settings("kafka_main", raw)
    assert errs == [] and validate_shipper("kafka_main", raw) == []
    s = create_shipper("kafka_main", settings, raw)
    assert (s.name, s.type, s.format) == ("kafka_main", "kafka", "ecs")
    assert parse_settings("k", OK)[0].batch.max_events == 2000  # the shipper's BATCH defaults


def test_unavailable_codec_is_a_clear_error(monkeypatch):
    from aiokafka import codec

    monkeypatch.setattr(codec, "has_zstd", lambda: False)
    (err,) = errors(compression="zstd")
    assert err.startswith("compression: zstd is not available") and "cramjam" in err
    assert default_codec() == "gzip"


def test_create_raises_config_error_naming_shipper_and_field():
    with pytest.raises(ConfigError) as e:
        create("kafka_main", None, {**OK, "acks": "most"})
    assert "shippers.kafka_main.acks:" in str(e.value)
    assert e.value.field == "shippers.kafka_main.acks"


def test_pipeline_keys_are_left_to_the_pipeline():
    assert errors(queue={"max_events": 10}, batch={}, retry={}, spool={}, format="ecs", concurrency=2,
                  drain_rate=100, request_timeout_s=60, dead_letter={}) == []


def test_tls_and_sasl_build_producer_kwargs(tmp_path, monkeypatch):
    ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("QUARRY_TEST_KAFKA_PW", "s3cret")
    cfg, errs = check({**OK, "tls": {"ca_file": str(ca)},
                       "sasl": {"mechanism": "SCRAM-SHA-512", "username": "u", "password_env": "QUARRY_TEST_KAFKA_PW"}})
    assert errs == [] and cfg is not None
    kw = cfg.producer_kwargs()
    assert kw["security_protocol"] == "SASL_SSL" and kw["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kw["sasl_plain_password"] == "s3cret" and "s3cret" not in repr(cfg)
    ctx = kw["ssl_context"]
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    pw = tmp_path / "pw"
    pw.write_text("from-file\n")
    cfg, _ = check({**OK, "sasl": {"username": "u", "password_file": str(pw)}, "options": {"retry_backoff_ms": 50}})
    assert cfg.security_protocol == "SASL_PLAINTEXT" and cfg.sasl.password == "from-file"
    assert cfg.sasl.mechanism == "PLAIN" and cfg.producer_kwargs()["retry_backoff_ms"] == 50
    cfg, _ = check({**OK, "tls": {"verify": False}})
    assert cfg.producer_kwargs()["ssl_context"].verify_mode == ssl.CERT_NONE


def test_brokers_forms():
    cfg, _ = check({**OK, "brokers": "a, b:9093,[::1]:9094"})
    assert cfg.brokers == ("a:9092", "b:9093", "[::1]:9094")


# --- sample.conf and README ------------------------------------------------------------------------
def sample_text() -> str:
    return (PKG / "sample.conf").read_text()


def test_sample_conf_loads_and_validates():
    doc = loads(sample_text(), "sample.conf")
    (name, body), = doc["shippers"].items()
    assert body["type"] == "kafka"
    assert validate(body) == []
    create(name, None, body)


def test_sample_conf_commented_defaults_are_the_defaults():
    # Uncomment every one-line option except the examples that need local files/secrets; the result must
    # validate and equal the minimal body's config apart from the example kafka_topics.
    lines = []
    for line in sample_text().splitlines():
        m = re.match(r'^(\s*)// ("[a-z_]+": .*)$', line)
        if m and not re.match(r'"(tls|sasl|security_protocol|kafka_topics|options)"', m.group(2)):
            line = m.group(1) + m.group(2)
        lines.append(line)
    doc = loads("\n".join(lines))
    body = doc["shippers"]["kafka_main"]
    assert len(body) > 15
    full, errs = check(body)
    assert errs == []
    minimal, _ = check(loads(sample_text())["shippers"]["kafka_main"])
    from dataclasses import replace
    assert replace(full, client_id="") == minimal


def test_readme_quotes_sample_conf_verbatim_and_lists_every_option():
    readme = (PKG / "README.md").read_text()
    assert sample_text().strip() in readme
    from shippers.kafka.config import OPTIONS
    for name, *_ in OPTIONS:
        assert f"| `{name}` |" in readme, name


# --- osquery flags -------------------------------------------------------------------------------
def test_flags_without_kafka_producer():
    assert from_osquery_flags({"logger_plugin": "filesystem"}) is None
    assert from_osquery_flags({}) is None


def test_flags_mapping_like_osquery():
    raw = from_osquery_flags({"logger_plugin": "filesystem,kafka_producer",
                              "logger_kafka_brokers": "k1,k2:9093", "logger_kafka_topic": "osquery_base",
                              "logger_kafka_acks": "1", "logger_kafka_compression": "gzip"},
                             {"t_procs": ["procs"]}, hostname="web-1", binary="osqueryd")
    assert raw == {"type": "kafka", "format": "osquery", "brokers": ["k1:9092", "k2:9093"], "topic": "osquery_base",
                   "key": "host", "host_key": "web-1_osqueryd", "client_id": "web-1", "acks": "1",
                   "compression": "gzip", "kafka_topics": {"t_procs": ["procs"]}, "idempotence": False}
    assert validate(raw) == []
    s = create("kafka_producer", None, raw)
    cfg = s.cfg
    assert (cfg.acks, cfg.idempotence, cfg.compression, cfg.security_protocol) == (1, False, "gzip", "PLAINTEXT")
    assert s.router.by_name == {"procs": "t_procs"}


def test_flags_defaults_and_ssl(tmp_path):
    raw = from_osquery_flags({"logger_plugin": "kafka_producer"}, hostname="h", binary="osqueryd")
    assert raw["brokers"] == ["localhost:9092"] and raw["acks"] == "all" and raw["compression"] == "none"
    assert raw["topic"] == "" and "idempotence" not in raw and "tls" not in raw
    ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    raw = from_osquery_flags({"logger_plugin": "kafka_producer", "logger_kafka_brokers": "ssl://k1:9093,SSL://k2",
                              "tls_server_certs": str(ca), "logger_kafka_topic": "b"}, hostname="h")
    assert raw["brokers"] == ["k1:9093", "k2:9092"]
    assert raw["security_protocol"] == "SSL" and raw["tls"] == {"ca_file": str(ca)}
    assert validate(raw) == []
    bad = from_osquery_flags({"logger_plugin": "kafka_producer", "logger_kafka_acks": "2",
                              "logger_kafka_compression": "snappy2"})
    assert {e.split(":")[0] for e in validate(bad)} == {"acks", "compression"}
