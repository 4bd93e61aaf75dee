"""Options of the elasticsearch and opensearch shippers: the declarative table (the README's table follows it),
validation of a raw `shippers.<name>` body, and the frozen `BulkConfig` built from it.

    cfg, errors = check(raw, flavor)     errors are "<field>: problem"; cfg is None when there is any error
"""

from __future__ import annotations

import base64
import os
import re
import ssl
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from collector.pipeline.config import TlsSettings

# dataset/namespace rules of data stream names (ecs.md §5.2): lower case, no '-', none of \/*?"<>|,# or space
_NS_BAD = re.compile(r'[\\/*?"<>|,# A-Z-]')
PLACEHOLDERS = frozenset({"table", "namespace", "kind"})
DEFAULT_INDEX = "logs-osquery.{table}-{namespace}"

# (name, type shown in the README, default, meaning); "es" marks Elasticsearch-only options
OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("hosts", "list of URLs or comma string", '["http://localhost:9200"]', "cluster nodes, `http(s)://host:port`"),
    ("cloud_id", "string", "", "Elastic Cloud deployment id instead of `hosts` (elasticsearch only)"),
    ("api_key", "string", "", "`id:api_key` or its base64 encoding (`Authorization: ApiKey`)"),
    ("api_key_env", "string", "", "environment variable holding the API key"),
    ("username", "string", "", "basic auth user"),
    ("password", "string", "", "basic auth password (or `password_env` / `password_file`)"),
    ("password_env", "string", "", "environment variable holding the password"),
    ("password_file", "string", "", "file holding the password (first line)"),
    ("namespace", "string", "default", "data stream namespace; must equal the ECS documents' data_stream.namespace"),
    ("index", "string", DEFAULT_INDEX, "target name; placeholders `{table}`, `{namespace}`, `{kind}`"),
    ("install_template", "bool", False, "put the composable template `template_name` for `logs-osquery.*-*` at open"),
    ("template_name", "string", "logs-osquery", "name of the installed index template"),
    ("timeout_s", "number", 50, "every HTTP request; keep below the pipeline's `request_timeout_s` (60)"),
    ("healthcheck_timeout_s", "number", 10, "the start-up health probe and template install"),
    ("compression_level", "int 0-9", 1, "gzip level of `_bulk` bodies (0: not compressed)"),
    ("tls", "object", None, "the pipeline's shared block: `ca_file`, `cert_file`, `key_file`, `verify` (true)"),
)
KNOWN = frozenset(o[0] for o in OPTIONS)


@dataclass(frozen=True)
class BulkConfig:
    flavor: str  # "elasticsearch" | "opensearch"
    hosts: tuple[str, ...] = ()
    cloud_id: str = ""
    api_key: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    namespace: str = "default"
    index: str = DEFAULT_INDEX
    install_template: bool = False
    template_name: str = "logs-osquery"
    timeout_s: float = 50.0
    healthcheck_timeout_s: float = 10.0
    compression_level: int = 1
    tls: TlsSettings | None = None

    def ssl_context(self) -> ssl.SSLContext | None:
        """None for plain http; verification stays on unless `tls.verify: false`."""
        if self.tls is None and not any(h.startswith("https:") for h in self.hosts) and not self.cloud_id:
            return None
        return (self.tls or TlsSettings()).context()


def valid_name_part(s: str) -> bool:
    return bool(s) and len(s) <= 100 and not _NS_BAD.search(s)


class _C:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw, self.errors = raw, []  # type: ignore[var-annotated]

    def err(self, fld: str, msg: str) -> None:
        self.errors.append(f"{fld}: {msg}")

    def s(self, key: str, default: str = "") -> str:
        v = self.raw.get(key, default)
        if not isinstance(v, str):
            self.err(key, f"expected a string, got {v!r}")
            return default
        return v

    def num(self, key: str, default: float, lo: float, hi: float) -> float:
        v = self.raw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            self.err(key, f"expected a number between {lo:g} and {hi:g}, got {v!r}")
            return default
        return float(v)


def _hosts(c: _C) -> tuple[str, ...]:
    v = c.raw.get("hosts")
    if v is None:
        return ()
    items = [h.strip() for h in v.split(",")] if isinstance(v, str) else v
    if not isinstance(items, list) or not items or not all(isinstance(h, str) and h.strip() for h in items):
        c.err("hosts", f"expected a non-empty list of URLs, got {v!r}")
        return ()
    out = []
    for h in items:
        u = urlsplit(h.strip())
        if u.scheme not in ("http", "https") or not u.hostname:
            c.err("hosts", f"{h!r} is not an http(s)://host[:port] URL")
            continue
        out.append(h.strip().rstrip("/"))
    return tuple(out)


def _secret(c: _C, key: str, env_key: str, file_key: str | None) -> str:
    sources = [k for k in (key, env_key, file_key) if k and k in c.raw]
    if len(sources) > 1:
        c.err(sources[1], f"give only one of {', '.join(sources)}")
    if key in c.raw:
        return c.s(key)
    if env_key in c.raw:
        name = c.s(env_key)
        val = os.environ.get(name, "") if name else ""
        if not val:
            c.err(env_key, f"environment variable {name!r} is not set or empty")
        return val
    if file_key and file_key in c.raw:
        path = c.s(file_key)
        try:
            return Path(path).read_text().splitlines()[0].strip()
        except (OSError, IndexError) as e:
            c.err(file_key, f"cannot read a password from {path!r}: {e}")
    return ""


def _tls(c: _C) -> TlsSettings | None:
    """The shared `tls` block (types and unknown keys are the pipeline's to report); the files must load."""
    v = c.raw.get("tls")
    if not isinstance(v, dict):
        return None
    files = {k: v.get(k) for k in ("ca_file", "cert_file", "key_file") if isinstance(v.get(k), str) and v.get(k)}
    verify = v.get("verify", True)
    cfg = TlsSettings(files.get("ca_file"), files.get("cert_file"), files.get("key_file"),
                      verify if isinstance(verify, bool) else True)
    if v.get("server_name") is not None:
        c.err("tls.server_name", "not supported: each host is checked against the name in its URL")
    if all(Path(p).is_file() for p in files.values()) and not (cfg.key_file and not cfg.cert_file):
        try:
            cfg.context()
        except (ssl.SSLError, OSError) as e:
            c.err("tls", f"cannot build a TLS context from these files: {e}")
    return cfg


def _index(c: _C, namespace: str) -> str:
    tpl = c.s("index", DEFAULT_INDEX)
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(tpl) if f is not None}
    except ValueError as e:
        c.err("index", f"bad template {tpl!r}: {e}")
        return DEFAULT_INDEX
    unknown = names - PLACEHOLDERS
    if unknown:
        c.err("index", f"unknown placeholder(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(PLACEHOLDERS))})")
        return DEFAULT_INDEX
    sample = tpl.format(table="processes", namespace=namespace if valid_name_part(namespace) else "default",
                        kind="result")
    if not sample or sample != sample.lower() or sample.startswith(("-", "_", "+")) or re.search(r'[\\/*?"<>|,# ]', sample):
        c.err("index", f"{tpl!r} does not give a valid index name (lower case, no \\/*?\"<>|,# or space)")
    return tpl


def check(raw: dict[str, Any], flavor: str) -> tuple[BulkConfig | None, list[str]]:
    c = _C(raw)
    hosts = _hosts(c)
    cloud_id = c.s("cloud_id")
    if cloud_id and flavor != "elasticsearch":
        c.err("cloud_id", "only for the elasticsearch shipper")
    if cloud_id and hosts:
        c.err("cloud_id", "give either hosts or cloud_id")
    if not hosts and not cloud_id and "hosts" not in raw:
        hosts = ("http://localhost:9200",)
    api_key = _secret(c, "api_key", "api_key_env", None)
    if api_key and ":" in api_key:
        api_key = base64.b64encode(api_key.encode()).decode()
    username = c.s("username")
    password = _secret(c, "password", "password_env", "password_file")
    if password and not username:
        c.err("username", "required with a password")
    if api_key and username:
        c.err("api_key", "give either api_key or username/password")
    namespace = c.s("namespace", "default")
    if not valid_name_part(namespace):
        c.err("namespace", f"{namespace!r}: 1-100 lower-case characters, no '-', space or \\/*?\"<>|,#")
    index = _index(c, namespace)
    install = raw.get("install_template", False)
    if not isinstance(install, bool):
        c.err("install_template", f"expected true or false, got {install!r}")
    tname = c.s("template_name", "logs-osquery")
    if not tname or tname != tname.lower() or re.search(r'[\\/*?"<>|,# ]', tname):
        c.err("template_name", f"{tname!r} is not a valid template name")
    level = raw.get("compression_level", 1)
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 9:
        c.err("compression_level", f"expected an integer 0-9, got {level!r}")
        level = 1
    cfg = BulkConfig(flavor=flavor, hosts=hosts, cloud_id=cloud_id, api_key=api_key, username=username,
                     password=password, namespace=namespace, index=index, install_template=install is True,
                     template_name=tname, timeout_s=c.num("timeout_s", 50, 0.1, 3600),
                     healthcheck_timeout_s=c.num("healthcheck_timeout_s", 10, 0.1, 600),
                     compression_level=level, tls=_tls(c))
    return (None if c.errors else cfg), c.errors
