from __future__ import annotations

import sys
import textwrap

import pytest

import shippers
from collector.pipeline.config import (
    ShipperSettings,
    create_shipper,
    parse_settings,
    shipper_types,
    validate_shipper,
)


def test_defaults_and_spool_on_for_network_shippers_only():
    s, errors = parse_settings("k", {"type": "kafka"})
    assert errors == [] and isinstance(s, ShipperSettings)
    assert (s.queue.max_events, s.queue.max_bytes, s.queue.when_full) == (10_000, 64 << 20, "block")
    assert (s.spool.segment_bytes, s.spool.max_bytes, s.spool.fsync_ms) == (64 << 20, 1 << 30, 1000)
    assert (s.retry.initial_s, s.retry.max_s, s.retry.max_elapsed_s) == (1.0, 30.0, None)
    assert s.concurrency == 2 and s.drain_rate == 0 and s.tls is None and s.spool_enabled
    f, _ = parse_settings("f", {"type": "file"})
    assert not f.spool_enabled
    f, _ = parse_settings("f", {"type": "file", "spool": {"enabled": True}})
    assert f.spool_enabled


def test_values_are_typed():
    s, errors = parse_settings("h", {
        "type": "splunk_hec", "format": "ecs", "concurrency": 4, "drain_rate": 2000,
        "queue": {"max_events": 500, "when_full": "drop_oldest"},
        "spool": {"max_bytes": 1 << 20, "segment_bytes": 65536, "when_full": "drop_newest", "fsync_ms": 500},
        "batch": {"max_events": 500, "max_bytes": 900_000, "linger_ms": 200},
        "retry": {"initial_s": 0.5, "max_s": 60, "max_elapsed_s": 300},
        "tls": {"verify": False, "server_name": "splunk.local"}})
    assert errors == []
    assert s.format == "ecs" and s.concurrency == 4 and s.drain_rate == 2000.0
    assert s.queue.when_full == "drop_oldest" and s.spool.when_full == "drop_newest"
    assert s.batch.linger_ms == 200 and s.retry.max_s == 60.0 and s.retry.max_elapsed_s == 300.0
    assert s.tls is not None and s.tls.verify is False and s.tls.server_name == "splunk.local"
    assert s.tls.context().verify_mode.name == "CERT_NONE"


def test_errors_name_the_shipper_and_the_field(tmp_path):
    _, errors = parse_settings("kafka_main", {
        "format": "xml", "concurrency": 20, "drain_rate": "fast",
        "queue": {"max_events": 0, "when_full": "explode", "colour": "red"},
        "spool": {"enabled": "yes", "segment_bytes": 1 << 30, "max_bytes": 1 << 20},
        "batch": "big", "retry": {"initial_s": 5, "max_s": 1},
        "tls": {"ca_file": str(tmp_path / "missing.pem"), "verify": 1}})
    text = "\n".join(errors)
    for expected in [
        "shippers.kafka_main.type: required",
        "shippers.kafka_main.format: expected one of osquery, ecs, got 'xml'",
        "shippers.kafka_main.concurrency: at most 8, got 20",
        "shippers.kafka_main.drain_rate: expected a number, got 'fast'",
        "shippers.kafka_main.queue.max_events: must be at least 1, got 0",
        "shippers.kafka_main.queue.when_full: expected one of block, drop_newest, drop_oldest, got 'explode'",
        "shippers.kafka_main.queue.colour: unknown key",
        "shippers.kafka_main.spool.enabled: expected true or false, got 'yes'",
        "shippers.kafka_main.spool.segment_bytes: must not exceed spool.max_bytes",
        "shippers.kafka_main.batch: expected an object",
        "shippers.kafka_main.retry.max_s: must be at least retry.initial_s",
        "shippers.kafka_main.tls.ca_file: no such file",
        "shippers.kafka_main.tls.verify: expected true or false, got 1",
    ]:
        assert expected in text, expected
    assert len(errors) == 13


@pytest.fixture
def demo_type(tmp_path, monkeypatch):
    """A shipper package dropped into shippers/ (the registry finds it by package scan)."""
    pkg = tmp_path / "demo"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent('''
        from tests.pipeline.fake import FakeShipper
        KEYS = {"endpoint"}
        BATCH = {"max_events": 500, "max_bytes": 900000}
        def validate(raw):
            return [] if raw.get("endpoint") else ["shippers.%s.endpoint: required" % raw.get("_name", "?")]
        def create(name, settings, raw):
            sh = FakeShipper(name)
            sh.endpoint = raw["endpoint"]
            return sh
    '''))
    monkeypatch.setattr(shippers, "__path__", [*shippers.__path__, str(tmp_path)])
    yield "demo"
    sys.modules.pop("shippers.demo", None)


def test_registry_scans_shipper_packages(demo_type):
    assert demo_type in shipper_types()
    s, errors = parse_settings("d", {"type": "demo", "endpoint": "x"})
    assert errors == [] and s.batch.max_events == 500 and s.batch.max_bytes == 900_000
    assert validate_shipper("d", {"type": "demo", "endpoint": "x"}) == []
    errs = validate_shipper("d", {"type": "demo", "endpont": "x"})
    assert "shippers.d.endpont: unknown key for a demo shipper" in errs
    assert any(e.endswith("endpoint: required") for e in errs)
    sh = create_shipper("d", s, {"type": "demo", "endpoint": "x"})
    assert sh.name == "d" and sh.endpoint == "x"


def test_unknown_type_lists_the_known_ones(demo_type):
    errs = validate_shipper("x", {"type": "carrier_pigeon"})
    assert errs and errs[0].startswith("shippers.x.type: unknown shipper type 'carrier_pigeon' (known: ")
    assert "demo" in errs[0]
