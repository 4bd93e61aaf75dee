"""deploy/elasticsearch: the lifecycle policies, the component template and the installer.

The offline tests pin the files' structure and that the installer puts exactly the shipper's template (one file,
schemas/elasticsearch/index_template.json). The realserver test installs everything on the harness's
Elasticsearch, ships ECS documents through the elasticsearch shipper and reads back the data stream, its backing
index and the settings that came from the component template. The harness's Elasticsearch (the integ-test zip) has
no ILM module: there the installer must leave the lifecycle setting out (and --ilm require must fail), and the
test says which branch it checked; on a full build it checks index.lifecycle.name on the backing index.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from collector.pipeline.api import Delivered
from shippers.elasticsearch.template import CUSTOM_COMPONENT, load_template

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "elasticsearch"


def _installer() -> ModuleType:
    # deploy/ is not a package (operators run the script by path); load it the same way
    spec = importlib.util.spec_from_file_location("quarry_deploy_es_install", DEPLOY / "install.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


inst = _installer()


def test_installer_puts_the_shippers_template_unchanged() -> None:
    assert inst.TEMPLATE_FILE == ROOT / "schemas" / "elasticsearch" / "index_template.json"
    assert inst.index_template("elasticsearch") == load_template("elasticsearch")
    assert inst.index_template("opensearch") == load_template("opensearch")
    es = inst.index_template("elasticsearch")
    assert es["composed_of"] == [CUSTOM_COMPONENT] == [inst.COMPONENT]
    assert es["ignore_missing_component_templates"] == [CUSTOM_COMPONENT]
    assert "composed_of" not in inst.index_template("opensearch")


def test_ilm_policy_rolls_over_and_deletes() -> None:
    body = json.loads((DEPLOY / "ilm_policy.json").read_text())
    phases = body["policy"]["phases"]
    assert sorted(phases) == ["delete", "hot"]
    assert phases["hot"]["actions"]["rollover"] == {"max_primary_shard_size": "50gb", "max_age": "7d"}
    assert phases["delete"] == {"min_age": "30d", "actions": {"delete": {}}}
    tuned = inst.ilm_policy(retention_days=14, rollover_age="1d", rollover_size="10gb")["policy"]["phases"]
    assert tuned["hot"]["actions"]["rollover"] == {"max_primary_shard_size": "10gb", "max_age": "1d"}
    assert tuned["delete"]["min_age"] == "14d"


def test_component_template_names_the_policy() -> None:
    comp = inst.component_template()
    assert comp["template"]["settings"]["index"] == {"lifecycle": {"name": inst.POLICY}, "codec": "best_compression"}
    assert inst.component_template(with_lifecycle=False)["template"]["settings"]["index"] == {
        "codec": "best_compression"}


def test_ism_policy_matches_the_template_pattern() -> None:
    pol = inst.ism_policy(retention_days=7)["policy"]
    assert pol["default_state"] == "hot"
    states = {s["name"]: s for s in pol["states"]}
    assert states["hot"]["actions"] == [{"rollover": {"min_primary_shard_size": "50gb", "min_index_age": "7d"}}]
    assert states["hot"]["transitions"] == [{"state_name": "delete", "conditions": {"min_rollover_age": "7d"}}]
    assert states["delete"]["actions"] == [{"delete": {}}]
    assert pol["ism_template"][0]["index_patterns"] == load_template("opensearch")["index_patterns"]


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--retention-days", "0"], ["--rollover-age", "7 days"], ["--rollover-size", "big"]):
        with pytest.raises(SystemExit) as e:
            inst.main(argv)
        assert e.value.code == 2
    assert inst.main(["--api-key-env", "QUARRY_TEST_SURELY_UNSET_VAR", "--url", "http://127.0.0.1:9"]) == 2
    assert "QUARRY_TEST_SURELY_UNSET_VAR" in capsys.readouterr().err


def test_unreachable_cluster_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert inst.main(["--url", "http://127.0.0.1:9", "--timeout", "2"]) == 1
    assert "GET http://127.0.0.1:9/_ilm/status" in capsys.readouterr().err


def test_dry_run_prints_the_three_bodies(capsys: pytest.CaptureFixture[str]) -> None:
    assert inst.main(["--dry-run", "--retention-days", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sorted(out) == ["component_template", "ilm_policy", "index_template"]
    assert out["ilm_policy"]["policy"]["phases"]["delete"]["min_age"] == "3d"
    assert out["index_template"] == load_template("elasticsearch")


def test_install_and_ship_into_a_data_stream(elasticsearch_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.shippers.elasticsearch import realserver as rs

    url = elasticsearch_server.url
    client = inst.Client(url, headers={}, context=None, timeout=30)
    ilm = inst.has_ilm(client)
    assert inst.main(["--url", url]) == 0
    out = capsys.readouterr().out
    assert f"ok   component template: PUT /_component_template/{inst.COMPONENT}" in out
    assert f"ok   index template: PUT /_index_template/{inst.TEMPLATE}" in out
    if not ilm:
        assert "warn ILM policy: this cluster has no ILM" in out
        assert inst.main(["--url", url, "--ilm", "require"]) == 2

    ns = rs.namespace()
    recs = rs.ecs_records(ns, 20)

    async def go() -> Any:
        # install_template: true as well: the shipper's PUT is the same body, so the installation survives it
        sh = rs.make("elasticsearch", url, ns)
        try:
            await sh.open()
            return await rs.ship(sh, recs)
        finally:
            await sh.close()

    assert asyncio.run(go()) == Delivered()
    stream = f"logs-osquery.processes-{ns}"
    assert rs.count(url, stream) == 20
    resolved = rs.http(f"{url}/_resolve/index/{stream}")
    assert resolved["indices"] == []
    (ds,) = resolved["data_streams"]
    assert ds["name"] == stream and ds["timestamp_field"] == "@timestamp"
    (backing,) = ds["backing_indices"]
    assert backing.startswith(f".ds-{stream}-")

    tpl = rs.http(f"{url}/_index_template/{inst.TEMPLATE}")["index_templates"][0]["index_template"]
    assert tpl["composed_of"] == [inst.COMPONENT] and tpl["index_patterns"] == ["logs-osquery.*-*"]
    sim = rs.http(f"{url}/_index_template/_simulate_index/{stream}", "POST")
    assert sim["template"]["settings"]["index"]["codec"] == "best_compression"
    assert sim["template"]["mappings"]["properties"]["process"]["properties"]["pid"] == {"type": "long"}
    settings = rs.http(f"{url}/{backing}/_settings")[backing]["settings"]["index"]
    assert settings["codec"] == "best_compression"  # from the component template
    assert settings["mapping"]["total_fields"]["limit"] == "5000"  # from the index template
    props = rs.http(f"{url}/{backing}/_mapping")[backing]["mappings"]["properties"]
    assert props["process"]["properties"]["pid"]["type"] == "long"
    if ilm:  # a full Elasticsearch build: the policy is on the stream's backing index
        assert settings["lifecycle"]["name"] == inst.POLICY
        policy = rs.http(f"{url}/_ilm/policy/{inst.POLICY}")[inst.POLICY]["policy"]
        assert policy["phases"]["delete"]["min_age"] == "30d"
        ds_info = rs.http(f"{url}/_data_stream/{stream}")["data_streams"][0]
        assert ds_info["template"] == inst.TEMPLATE and ds_info["ilm_policy"] == inst.POLICY
    else:
        assert "lifecycle" not in settings
        comp = rs.http(f"{url}/_component_template/{inst.COMPONENT}")["component_templates"][0]
        assert comp["component_template"]["template"]["settings"]["index"] == {"codec": "best_compression"}
