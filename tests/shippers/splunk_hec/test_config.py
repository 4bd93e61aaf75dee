"""sample.conf loads through the real config reader and validates; its commented options are the defaults;
README quotes it verbatim and documents every option."""

from __future__ import annotations

import re
from pathlib import Path

from collector.config.text import loads
from collector.pipeline.config import validate_shipper
from shippers.splunk_hec import KEYS, create, validate
from shippers.splunk_hec.config import HecConfig, check

PKG = Path(__file__).resolve().parents[3] / "shippers" / "splunk_hec"
EXAMPLES = ("token", "token_file", "host", "sourcetype", "index", "fields", "channel", "state_dir", "tls",
            "request_timeout_s", "format", "batch")


def sample() -> str:
    return (PKG / "sample.conf").read_text()


def test_sample_conf_loads_validates_and_creates(monkeypatch):
    doc = loads(sample(), "sample.conf")
    (name, body), = doc["shippers"].items()
    assert validate(body) == [] and validate_shipper(name, body) == []
    monkeypatch.setenv(body["token_env"], "tok")
    s = create(name, None, body)
    assert s.cfg.url == "https://splunk.example.net:8088" and s._token == "tok"


def test_sample_commented_options_are_the_defaults():
    lines = []
    for line in sample().splitlines():
        m = re.match(r'^(\s*)// ("([a-z_]+)": .*)$', line)
        if m and m.group(3) not in EXAMPLES:
            line = m.group(1) + m.group(2)
        lines.append(line)
    body = loads("\n".join(lines))["shippers"]["splunk_main"]
    assert len(body) >= 14
    full, errs = check(body)
    assert errs == []
    minimal, _ = check(loads(sample())["shippers"]["splunk_main"])
    assert full == minimal == HecConfig(url="https://splunk.example.net:8088", token_env="QUARRY_HEC_TOKEN")
    # the example lines validate too
    everything = loads("\n".join(re.sub(r"^(\s*)// (\"[a-z_]+\": )", r"\1\2", x) for x in sample().splitlines()
                                 if not re.match(r'^\s*// "token(_file)?":', x)))
    assert validate_shipper("s", everything["shippers"]["splunk_main"]) == [
        "shippers.s.tls.ca_file: no such file: /etc/quarry/splunk-ca.pem"]  # the only example needing a file


def test_readme_quotes_sample_verbatim_and_lists_every_option():
    readme = (PKG / "README.md").read_text()
    assert sample().strip() in readme
    for key in KEYS:
        assert re.search(rf"\| `{key}`( / `[a-z_]+`)* \||\| `token` / `token_env` / `token_file` \|", readme), key
        assert f"`{key}`" in readme, key
