"""deploy/logstash: the pipeline files, checked without a Logstash.

Logstash is not installable here (no Elastic downloads; logstash-core is not among the Maven Central packages
listed in /work/.library/env/packages/maven-partial.tsv, and alone it would not run the Ruby plugins). So the
pipeline files are parsed with a grammar of the Logstash config language (tests/deploy/siem_logstash_conf.py),
every plugin and setting is checked against the settings those plugins document, the ports and content types
against what shippers/logstash sends, and the filter is evaluated on real Quarry events (an ECS document, an
osquery results line, a status event, each wrapped by the shipper's own encoder) to show that every one leaves
with the data_stream fields the output routes on. Not run against a real Logstash: stated in the README too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.ecs import AgentFacts, EcsMapper, HostFacts
from collector.ecs_check import load_ecs_flat
from collector.events import Event
from collector.pipeline.api import Record
from collector.watchdog import status_event
from shippers.elasticsearch.template import load_template
from shippers.logstash.encode import encode_events
from tests.conftest import SHARED
from tests.deploy.siem_logstash_conf import ConfigError, parse, parse_files, run_filters

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "logstash"
PIPE = DEPLOY / "pipeline"

# Settings each plugin documents (Logstash 8.13+/9.x names: ssl_enabled, ssl_client_authentication), plus the
# common ones every plugin takes.
COMMON = {"id", "enable_metric", "codec", "add_field", "add_tag", "remove_field", "remove_tag", "tags", "type",
          "periodic_flush"}
KNOWN: dict[str, dict[str, set[str]]] = {
    "input": {
        "beats": {"host", "port", "client_inactivity_timeout", "ssl_enabled", "ssl_certificate", "ssl_key",
                  "ssl_certificate_authorities", "ssl_client_authentication", "ssl_supported_protocols",
                  "ssl_cipher_suites", "ssl_handshake_timeout", "ssl_key_passphrase", "executor_threads",
                  "include_codec_tag", "enrich", "event_loop_threads"},
        "http": {"host", "port", "threads", "additional_codecs", "user", "password", "ssl_enabled",
                 "ssl_certificate", "ssl_key", "ssl_certificate_authorities", "ssl_client_authentication",
                 "max_pending_requests", "response_code", "response_headers", "max_content_length"},
    },
    "filter": {
        "mutate": {"rename", "add_field", "replace", "update", "convert", "copy", "lowercase", "strip", "merge"},
        "date": {"match", "target", "timezone", "locale", "tag_on_failure"},
    },
    "output": {
        "elasticsearch": {"hosts", "api_key", "user", "password", "cloud_id", "ssl_enabled",
                          "ssl_certificate_authorities", "ssl_verification_mode", "data_stream",
                          "data_stream_auto_routing", "data_stream_sync_fields", "data_stream_type",
                          "data_stream_dataset", "data_stream_namespace", "manage_template", "ilm_enabled", "action",
                          "index", "document_id", "pipeline", "http_compression", "timeout"},
    },
}
# settings refused together with data_stream => true (logstash-output-elasticsearch data_stream_support.rb)
NOT_WITH_DATA_STREAM = {"index", "document_id", "ilm_enabled", "template", "template_name"}
ENV_REF = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::[^}]*)?\}")


def pipeline_files() -> list[Path]:
    return sorted(PIPE.glob("*.conf"))


def pipelines() -> dict[str, list[Path]]:
    """pipelines.yml's pipelines -> their files, resolving the brace glob against deploy/logstash/pipeline."""
    out = {}
    for p in yaml.safe_load((DEPLOY / "pipelines.yml").read_text()):
        m = re.fullmatch(r"/etc/logstash/quarry/\{([^}]+)\}\.conf", p["path.config"])
        assert m, p["path.config"]
        out[p["pipeline.id"]] = [PIPE / f"{n}.conf" for n in m.group(1).split(",")]
        assert p["queue.type"] == "persisted"  # the inputs' acknowledgements are worth something only then
    return out


def test_grammar_accepts_and_rejects() -> None:
    cfg = parse('input { beats { port => 5044 ssl_enabled => true hosts => ["a", "b"] h => { "k" => "v" } } }\n'
                'filter { if [a][b] and ![c] { mutate { rename => { "x" => "[y][z]" } } } else { date { '
                'match => ["t", "UNIX"] } } }')
    (beats,) = cfg.plugins("input")
    assert beats.settings == {"port": 5044, "ssl_enabled": True, "hosts": ["a", "b"], "h": {"k": "v"}}
    assert [p.name for p in cfg.plugins("filter")] == ["mutate", "date"]
    for bad, msg in (("input { beats { port => 5044 }", "unexpected end of file"),
                     ("inputs { }", "expected input, filter or output"),
                     ("input { beats { port 5044 } }", "expected =>"),
                     ("input { beats { port => 1 port => 2 } }", "setting 'port' repeated"),
                     ("filter { if a { } }", "expected selector")):
        with pytest.raises(ConfigError, match=msg):
            parse(bad, "x.conf")


def test_every_file_parses_with_known_plugins_and_settings() -> None:
    files = [p.name for p in pipeline_files()]
    assert files == ["10-input-beats-tls.conf", "10-input-beats.conf", "10-input-http.conf", "50-filter-quarry.conf",
                     "90-output-elasticsearch-idempotent.conf", "90-output-elasticsearch.conf"]
    for path in pipeline_files():
        cfg = parse(path.read_text(), str(path))
        assert cfg.sections, path
        for section, plugins in KNOWN.items():
            for p in cfg.plugins(section):
                assert p.name in plugins, f"{path.name}: unknown {section} plugin {p.name}"
                unknown = set(p.settings) - plugins[p.name] - COMMON
                assert not unknown, f"{path.name}: {p.name} has no setting {sorted(unknown)}"
                assert p.settings.get("id"), f"{path.name}: {p.name} without an id (monitoring names it)"
        for var in ENV_REF.findall(path.read_text()):
            assert var.startswith("QUARRY_"), var


def test_pipelines_combine_one_input_the_filter_and_one_output() -> None:
    pls = pipelines()
    assert sorted(pls) == ["quarry-beats", "quarry-http"]
    for name, files in pls.items():
        cfg = parse_files(files)
        assert len(cfg.plugins("input")) == 1 and len(cfg.plugins("output")) == 1, name
        assert cfg.plugins("filter"), name
    ids = [p.settings["id"] for f in pipeline_files() for s in ("input", "filter", "output")
           for p in parse(f.read_text()).plugins(s)]
    assert len(ids) == len(set(ids))


def test_inputs_match_the_shipper() -> None:
    beats = parse((PIPE / "10-input-beats.conf").read_text()).plugins("input")[0]
    tls = parse((PIPE / "10-input-beats-tls.conf").read_text()).plugins("input")[0]
    http = parse((PIPE / "10-input-http.conf").read_text()).plugins("input")[0]
    # the shipper's README and its hosts error both say 5044 (shippers/logstash/config.py)
    assert "port 5044 by default" in (ROOT / "shippers/logstash/config.py").read_text()
    assert beats.name == tls.name == "beats" and beats.settings["port"] == tls.settings["port"] == 5044
    assert "ssl_enabled" not in beats.settings and tls.settings["ssl_enabled"] is True
    assert tls.settings["ssl_client_authentication"] == "required"
    # the shipper's http mode: application/json for body json_array, application/x-ndjson for ndjson
    src = (ROOT / "shippers/logstash/http.py").read_text()
    assert '"application/json" if cfg.body == "json_array" else "application/x-ndjson"' in src
    assert http.settings["additional_codecs"] == {"application/json": "json", "application/x-ndjson": "json_lines"}
    assert http.settings["port"] == 8080


def test_outputs_route_on_the_data_stream_fields() -> None:
    ds = parse((PIPE / "90-output-elasticsearch.conf").read_text()).plugins("output")[0]
    assert ds.settings["data_stream"] == "true" and ds.settings["data_stream_auto_routing"] is True
    assert not set(ds.settings) & NOT_WITH_DATA_STREAM
    assert ds.settings["data_stream_type"] == "logs"
    idem = parse((PIPE / "90-output-elasticsearch-idempotent.conf").read_text()).plugins("output")[0]
    assert idem.settings["action"] == "create" and idem.settings["data_stream"] == "false"
    assert idem.settings["index"] == "%{[data_stream][type]}-%{[data_stream][dataset]}-%{[data_stream][namespace]}"
    assert idem.settings["document_id"] == "%{[@metadata][_id]}"
    # every stream name these build falls under the index template's pattern
    assert load_template()["index_patterns"] == ["logs-osquery.*-*"]


# ------------------------------------------------------------------------------------------------- the filter
def _as_received(payload: bytes, rec_id: str, fmt: str, t: float = 1795773600.25) -> dict[str, Any]:
    """What Logstash's json decoding of the shipper's event gives (the same bytes for beats and http)."""
    enc = encode_events([Record(id=rec_id, payload=payload, name="q", time=t)], "quarry", fmt)
    assert enc.rejected == []
    event: dict[str, Any] = json.loads(enc.events[0])
    assert event["@metadata"]["_id"] == rec_id
    return event


def _flat(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if isinstance(v, dict) and k != "@metadata":
            out.update(_flat(v, f"{prefix}{k}."))
        elif k != "@metadata":
            out[f"{prefix}{k}"] = v
    return out


@pytest.fixture(scope="module")
def filt() -> Any:
    return parse_files([PIPE / "50-filter-quarry.conf"])


@pytest.fixture(scope="module")
def ecs_flat() -> dict[str, Any]:
    return load_ecs_flat(SHARED / "ecs" / "ecs_flat.yml")


def _check_routable(out: dict[str, Any], dataset: str, ecs_flat: dict[str, Any]) -> None:
    assert out["data_stream"] == {"type": "logs", "dataset": dataset, "namespace": "default"}
    assert out["event"]["dataset"] == dataset  # = data_stream.dataset, as ECS wants
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", out["@timestamp"])
    for key in _flat(out):
        if key.split(".")[0] not in ("osquery", "labels", "@timestamp"):
            assert key in ecs_flat, f"{key} is not an ECS field"
    assert set(out) <= {"@timestamp", "@metadata", "osquery", "host", "event", "data_stream", "ecs", "log",
                        "agent", "process", "labels", "related", "user", "message", "tags"}


def test_ecs_document_passes_unchanged(filt: Any) -> None:
    doc = EcsMapper(namespace="default").document(
        {"pid": "42", "name": "sshd", "path": "/usr/sbin/sshd", "cmdline": "sshd -D"}, table="processes",
        action="snapshot", query_name="procs", unix_time=1795773600.0, event_id="e1", reason="first run",
        host=HostFacts(hostname="web-1", id="h1"), agent=AgentFacts(id="a1", name="quarry"))
    received = _as_received(json.dumps(doc).encode(), "e1", "ecs")
    out = run_filters(filt, json.loads(json.dumps(received)))
    assert out == received
    assert out["data_stream"] == {"type": "logs", "dataset": "osquery.processes", "namespace": "default"}


def test_osquery_line_gets_routed(filt: Any, ecs_flat: dict[str, Any]) -> None:
    ev = Event(name="pack_ir_procs", action="added", columns={"pid": "42", "name": "sshd"}, host_identifier="web-1",
               unix_time=1795773600, calendar_time="Fri Nov 27 10:00:00 2026 UTC", epoch=0, counter=7,
               decorations={"username": "root"})
    out = run_filters(filt, _as_received(ev.osquery_line(), ev.event_id, "osquery"))
    _check_routable(out, "osquery.result", ecs_flat)
    assert out["@timestamp"] == "2026-11-27T10:00:00.000Z"
    assert out["host"] == {"hostname": "web-1", "name": "web-1"}
    assert out["event"]["action"] == "added"
    assert out["osquery"]["result"]["columns"] == {"pid": "42", "name": "sshd"}
    assert out["osquery"]["query"]["name"] == "pack_ir_procs" and out["osquery"]["counter"] == 7
    assert out["@metadata"]["_id"] == ev.event_id
    # the mapped osquery.* fields keep the types of the index template (epoch/counter long)
    props = load_template()["template"]["mappings"]["properties"]["osquery"]["properties"]
    assert props["counter"]["type"] == props["epoch"]["type"] == "long"


def test_status_event_gets_routed(filt: Any, ecs_flat: dict[str, Any]) -> None:
    st = {"host": "web-1", **status_event(action="stopped", query="q1", cause="memory", value=3.0, limit=2.0,
                                          unit="bytes", stopped=True, expiry=None, now=1795773600.0,
                                          message="query q1 stopped")}
    out = run_filters(filt, _as_received(json.dumps(st).encode(), "s1", "osquery", t=0))
    _check_routable(out, "osquery.status", ecs_flat)
    assert out["host"] == {"name": "web-1"} and out["log"]["level"] == "warning"
    assert out["osquery"]["status"]["source"] == "watchdog" and out["osquery"]["query"]["name"] == "q1"
    assert out["message"] == "query q1 stopped" and "time" not in out
