#!/usr/bin/env python3
"""Install Quarry's index template, lifecycle policy and component template on Elasticsearch or OpenSearch.

    python3 deploy/elasticsearch/install.py --url https://es1:9200 --api-key-env ES_API_KEY --ca-file ca.pem
    python3 deploy/elasticsearch/install.py --url http://localhost:9200 --retention-days 14 --dry-run

Elasticsearch, in this order (each PUT is idempotent; the script stops at the first refusal):
  1. ILM policy `quarry-osquery` (ilm_policy.json; --retention-days / --rollover-* override it)
  2. component template `logs-osquery@custom` (component_template.json: index.lifecycle.name + codec)
  3. index template `logs-osquery` = schemas/elasticsearch/index_template.json as it is (it composes 2.)
A cluster without ILM (`GET /_ilm/status` has no handler: minimal builds) gets 2. without the lifecycle
setting and a warning with --ilm auto (default); --ilm require makes that an error, --ilm skip never asks.
OpenSearch (--flavor opensearch): the ISM policy (opensearch_ism_policy.json, its ism_template attaches it to
new logs-osquery.*-* indices) and the same index template without `_meta`/component references.

Standard library only, so it runs with any python3 >= 3.9 next to the checkout. Exit status: 0 done,
1 a request failed or was refused (the server's answer is printed), 2 bad arguments or ILM missing with
--ilm require.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TEMPLATE_FILE = HERE.parents[1] / "schemas" / "elasticsearch" / "index_template.json"
POLICY = "quarry-osquery"
COMPONENT = "logs-osquery@custom"
TEMPLATE = "logs-osquery"
_DURATION = re.compile(r"^[1-9][0-9]*(d|h|m|s)$")
_SIZE = re.compile(r"^[1-9][0-9]*(b|kb|mb|gb|tb)$")


class InstallError(Exception):
    """A request failed or the server refused it (code 1), or the setup cannot work (code 2); the message
    names the step and carries the server's answer."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _load(name: str) -> dict[str, Any]:
    path = HERE / name
    try:
        body: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise InstallError(f"{path}: {e}") from e
    return body


def ilm_policy(retention_days: int | None = None, rollover_age: str | None = None,
               rollover_size: str | None = None) -> dict[str, Any]:
    body = _load("ilm_policy.json")
    phases = body["policy"]["phases"]
    rollover = phases["hot"]["actions"]["rollover"]
    if rollover_age:
        rollover["max_age"] = rollover_age
    if rollover_size:
        rollover["max_primary_shard_size"] = rollover_size
    if retention_days is not None:
        phases["delete"]["min_age"] = f"{retention_days}d"
    return body


def ism_policy(retention_days: int | None = None, rollover_age: str | None = None,
               rollover_size: str | None = None) -> dict[str, Any]:
    body = _load("opensearch_ism_policy.json")
    states = {s["name"]: s for s in body["policy"]["states"]}
    rollover = states["hot"]["actions"][0]["rollover"]
    if rollover_age:
        rollover["min_index_age"] = rollover_age
    if rollover_size:
        rollover["min_primary_shard_size"] = rollover_size
    if retention_days is not None:
        states["hot"]["transitions"][0]["conditions"]["min_rollover_age"] = f"{retention_days}d"
    return body


def component_template(with_lifecycle: bool = True) -> dict[str, Any]:
    body = _load("component_template.json")
    if not with_lifecycle:
        body["template"]["settings"]["index"].pop("lifecycle", None)
    return body


def index_template(flavor: str = "elasticsearch") -> dict[str, Any]:
    """The template the elasticsearch shipper installs (`install_template: true`), read from its one file."""
    try:
        body: dict[str, Any] = json.loads(TEMPLATE_FILE.read_text())
    except (OSError, ValueError) as e:
        raise InstallError(f"{TEMPLATE_FILE}: {e}") from e
    if flavor == "opensearch":  # as shippers/elasticsearch/template.py load_template("opensearch") does
        for key in ("_meta", "composed_of", "ignore_missing_component_templates"):
            body.pop(key, None)
    return body


class Client:
    def __init__(self, url: str, *, headers: dict[str, str], context: ssl.SSLContext | None, timeout: float) -> None:
        self.url, self.headers, self.context, self.timeout = url.rstrip("/"), headers, context, timeout

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **self.headers})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        except (urllib.error.URLError, OSError) as e:
            raise InstallError(f"{method} {self.url}{path}: {getattr(e, 'reason', e)}") from e
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")[:500]

    def put(self, step: str, path: str, body: Any) -> None:
        status, answer = self.request("PUT", path, body)
        if status >= 300:
            raise InstallError(f"{step}: PUT {path} answered HTTP {status}: {json.dumps(answer)[:800]}")
        print(f"ok   {step}: PUT {path}")


def has_ilm(client: Client) -> bool:
    status, _ = client.request("GET", "/_ilm/status")
    return status == 200


def install(client: Client, *, flavor: str = "elasticsearch", ilm: str = "auto", retention_days: int | None = None,
            rollover_age: str | None = None, rollover_size: str | None = None) -> dict[str, Any]:
    """Put everything; returns what was installed ({"policy": bool, "component": bool, "template": True})."""
    done: dict[str, Any] = {"policy": False, "component": False, "template": False}
    if flavor == "opensearch":
        if ilm != "skip":
            status, _ = client.request("GET", "/_plugins/_ism/policies")
            if status == 200:
                path = f"/_plugins/_ism/policies/{POLICY}"
                st, cur = client.request("GET", path)
                query = ""
                if st == 200 and isinstance(cur, dict):  # an update needs the current version's seq_no/term
                    query = f"?if_seq_no={cur['_seq_no']}&if_primary_term={cur['_primary_term']}"
                client.put("ISM policy", path + query, ism_policy(retention_days, rollover_age, rollover_size))
                done["policy"] = True
            elif ilm == "require":
                raise InstallError("ISM policy: this cluster has no index-management plugin "
                                   f"(GET /_plugins/_ism/policies answered {status})", code=2)
            else:
                print("warn ISM policy: no index-management plugin on this cluster; indices are never deleted")
        client.put("index template", f"/_index_template/{TEMPLATE}", index_template("opensearch"))
        done["template"] = True
        return done
    lifecycle = False
    if ilm != "skip":
        if has_ilm(client):
            client.put("ILM policy", f"/_ilm/policy/{POLICY}", ilm_policy(retention_days, rollover_age, rollover_size))
            done["policy"] = lifecycle = True
        elif ilm == "require":
            raise InstallError("ILM policy: this cluster has no ILM (GET /_ilm/status has no handler; "
                               "a minimal or OSS build); use --ilm auto to install the templates without it", code=2)
        else:
            print(f"warn ILM policy: this cluster has no ILM; {COMPONENT} goes in without index.lifecycle.name "
                  "and backing indices are never deleted")
    client.put("component template", f"/_component_template/{COMPONENT}", component_template(lifecycle))
    done["component"] = True
    client.put("index template", f"/_index_template/{TEMPLATE}", index_template("elasticsearch"))
    done["template"] = True
    return done


def _positive_days(v: str) -> int:
    if not v.isdigit() or int(v) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of days >= 1, got {v!r}")
    return int(v)


def _matching(pattern: re.Pattern[str], what: str) -> Any:
    def check(v: str) -> str:
        if not pattern.match(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {v!r}")
        return v
    return check


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Install Quarry's index template and lifecycle policy.")
    p.add_argument("--url", default="http://localhost:9200", help="cluster URL (default %(default)s)")
    p.add_argument("--flavor", choices=("elasticsearch", "opensearch"), default="elasticsearch")
    p.add_argument("--ilm", choices=("auto", "require", "skip"), default="auto",
                   help="lifecycle policy: auto = install when the cluster has ILM/ISM (default)")
    p.add_argument("--retention-days", type=_positive_days, help="delete backing indices N days after rollover (30)")
    p.add_argument("--rollover-age", type=_matching(_DURATION, "a duration such as 7d or 12h"),
                   help="roll the write index over at this age (7d)")
    p.add_argument("--rollover-size", type=_matching(_SIZE, "a size such as 50gb"),
                   help="roll over at this primary shard size (50gb)")
    p.add_argument("--api-key-env", help="environment variable holding an API key (Authorization: ApiKey)")
    p.add_argument("--user", help="basic auth user")
    p.add_argument("--password-env", help="environment variable holding the basic auth password")
    p.add_argument("--ca-file", help="PEM CA bundle for https (verification is always on)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default %(default)s)")
    p.add_argument("--dry-run", action="store_true", help="print the request bodies, send nothing")
    return p


def _headers(args: argparse.Namespace) -> dict[str, str]:
    if args.api_key_env:
        key = os.environ.get(args.api_key_env, "")
        if not key:
            raise InstallError(f"--api-key-env: environment variable {args.api_key_env!r} is not set or empty", code=2)
        return {"Authorization": f"ApiKey {key}"}
    if args.user:
        pw = os.environ.get(args.password_env or "", "")
        if not pw:
            raise InstallError("--user needs --password-env naming a set environment variable", code=2)
        return {"Authorization": "Basic " + base64.b64encode(f"{args.user}:{pw}".encode()).decode()}
    return {}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.dry_run:
            knobs = (args.retention_days, args.rollover_age, args.rollover_size)
            bodies = {"opensearch": {"ism_policy": ism_policy(*knobs), "index_template": index_template("opensearch")},
                      "elasticsearch": {"ilm_policy": ilm_policy(*knobs), "component_template": component_template(),
                                        "index_template": index_template()}}[args.flavor]
            print(json.dumps(bodies, indent=1))
            return 0
        context = None
        if args.url.startswith("https:"):
            context = ssl.create_default_context(cafile=args.ca_file)
        client = Client(args.url, headers=_headers(args), context=context, timeout=args.timeout)
        install(client, flavor=args.flavor, ilm=args.ilm, retention_days=args.retention_days,
                rollover_age=args.rollover_age, rollover_size=args.rollover_size)
    except InstallError as e:
        print(f"error {e}", file=sys.stderr)
        return e.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
