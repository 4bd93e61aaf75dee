from __future__ import annotations

import json

from collector.pipeline.api import Record
from shippers.elasticsearch import validate
from shippers.elasticsearch.bulk import Router, dataset_table, encode_batch
from shippers.elasticsearch.template import TEMPLATE_FILE, build_template


def _lines(body: bytes) -> list[dict]:
    assert body.endswith(b"\n")
    return [json.loads(x) for x in body.split(b"\n")[:-1]]


def test_action_lines_ids_and_data_streams() -> None:
    recs = [Record(id="id-1", payload=b'{"@timestamp":"2026-01-01T00:00:00.000Z","a":1}', name="q", table="processes"),
            Record(id='we"ird', payload=b'{"b":2}', name="q", table=None),
            Record(id="id-3", payload=b'{"c":3}', name="q", table="Weird Table-Name/x"),
            Record(id="id-4", payload=b'{"d":4}', name="q", table="processes", route={"index": "custom-idx"})]
    lines = _lines(encode_batch(recs, Router("logs-osquery.{table}-{namespace}", "prod"), "ecs"))
    assert len(lines) == 8
    assert lines[0] == {"create": {"_index": "logs-osquery.processes-prod", "_id": "id-1"}}
    assert lines[1] == {"@timestamp": "2026-01-01T00:00:00.000Z", "a": 1}
    assert lines[2] == {"create": {"_index": "logs-osquery.result-prod", "_id": 'we"ird'}}
    assert lines[4] == {"create": {"_index": "logs-osquery.weird_table_name_x-prod", "_id": "id-3"}}
    assert lines[6] == {"create": {"_index": "custom-idx", "_id": "id-4"}}
    assert lines[7] == {"d": 4}


def test_dataset_sanitising() -> None:
    assert dataset_table("Processes") == "processes"
    assert dataset_table("") == "result"
    assert dataset_table("__") == "result"
    assert len(dataset_table("x" * 300)) == 92


def test_osquery_format_is_wrapped_with_timestamp() -> None:
    line = b'{"name":"q","hostIdentifier":"h","columns":{"pid":"1"},"action":"added"}'
    recs = [Record(id="e1", payload=line, name="q", table="processes", time=1767225600.5)]
    lines = _lines(encode_batch(recs, Router("logs-osquery.{table}-{namespace}", "default"), "osquery"))
    assert lines[1] == {"@timestamp": "2026-01-01T00:00:00.500Z", "event": {"id": "e1"},
                        "osquery": json.loads(line)}


def test_index_template_string_and_kind() -> None:
    r = Router("quarry-{kind}-{table}", "default")
    assert r.index(Record(id="x", payload=b"{}", name="s", kind="status")) == b"quarry-status-result"


def test_validate_errors_name_the_field() -> None:
    assert validate({"type": "elasticsearch", "hosts": ["ftp://x"]}) == ["hosts: 'ftp://x' is not an http(s)://host[:port] URL"]
    errs = validate({"type": "elasticsearch", "index": "logs-{nope}", "compression_level": 12, "password": "p"})
    assert any(e.startswith("index: unknown placeholder") for e in errs)
    assert any(e.startswith("compression_level:") for e in errs)
    assert "username: required with a password" in errs
    assert validate({"type": "elasticsearch", "hosts": "http://a:9200,https://b:9200", "install_template": True}) == []


def test_template_file_is_generated_from_the_ecs_mapping() -> None:
    on_disk = json.loads(TEMPLATE_FILE.read_text())
    assert on_disk == build_template()
    props = on_disk["template"]["mappings"]["properties"]
    assert props["process"]["properties"]["pid"] == {"type": "long"}
    assert props["@timestamp"] == {"type": "date"}
    assert props["osquery"]["dynamic"] is True
    assert on_disk["priority"] > 100 and on_disk["data_stream"] == {}
