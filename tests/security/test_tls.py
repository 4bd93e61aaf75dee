"""TLS for every network shipper: verification is on by default, the CA and client certificates work.

Each HTTP/beats shipper talks to its real server of tests/servers through a TLS-terminating proxy whose
certificate is signed by a CA made in the test (tlshelp). Logstash's http mode has no real peer here: the
proxy fronts a plain stdlib HTTP server. Kafka uses the broker's own SASL_SSL listener for verification; for
client certificates the proxy (requiring one) fronts the plain listener and the handshakes are what is checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from collector.pipeline.api import Delivered, Record
from collector.pipeline.config import create_shipper, parse_settings
from tests.security.tlshelp import Pki, make_pki, tls_proxy
from tests.servers.plugin import read_jsonl
from tests.shippers.elasticsearch import realserver as search
from tests.shippers.logstash.fakes import FakeHttp

N = 5
# The servers are reached through request.getfixturevalue, which the plugin's automatic marking cannot see.
pytestmark = pytest.mark.realserver


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def records(n: int = N) -> list[Record]:
    return [Record(id=f"tls-{i}", payload=json.dumps({"name": "q", "i": i, "columns": {"i": str(i)}}).encode(),
                   name="q", time=1767225600.0 + i, host="h") for i in range(n)]


@dataclass
class Target:
    """A real peer: where the proxy relays to, the shipper's raw config for a port, and how to read back."""

    upstream: tuple[str, int]
    raw: Callable[[int], dict[str, Any]]
    recs: list[Record]
    received: Callable[[], int]


def _hostport(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", int(parts.port or 80)


@pytest.fixture
def hec(hec_target) -> Target:
    return Target(_hostport(hec_target.url),
                  lambda port: {"type": "splunk_hec", "url": f"https://127.0.0.1:{port}", "token": hec_target.token,
                                "ack": False},
                  records(), lambda: len(hec_target.read_events(expected=N, timeout=10)))


def _search_target(server: Any, type_: str) -> Target:
    ns = search.namespace()
    recs = search.ecs_records(ns, N)
    return Target(_hostport(server.url),
                  lambda port: {"type": type_, "hosts": [f"https://127.0.0.1:{port}"], "namespace": ns,
                                "format": "ecs"},
                  recs, lambda: search.count(server.url, f"logs-osquery.processes-{ns}"))


@pytest.fixture
def elasticsearch(elasticsearch_server) -> Target:
    return _search_target(elasticsearch_server, "elasticsearch")


@pytest.fixture
def opensearch(opensearch_server) -> Target:
    return _search_target(opensearch_server, "opensearch")


@pytest.fixture
def logstash_beats(lumberjack_server, lumberjack_output: Path) -> Target:
    return Target((lumberjack_server.host, lumberjack_server.port),
                  lambda port: {"type": "logstash", "hosts": [f"127.0.0.1:{port}"], "connect_timeout_s": 5,
                                "ack_timeout_s": 5},
                  records(), lambda: len(read_jsonl(lumberjack_output, expected=N, timeout=10)))


@pytest.fixture
def logstash_http() -> Iterator[Target]:
    with FakeHttp([]) as fake:
        yield Target(_hostport(fake.url),
                     lambda port: {"type": "logstash", "mode": "http", "url": f"https://127.0.0.1:{port}/"},
                     records(), lambda: sum(len(json.loads(body)) for _, _, body in fake.requests))
        fake.requests.clear()


KINDS = ["hec", "elasticsearch", "opensearch", "logstash_beats", "logstash_http"]


def shipper(raw: dict[str, Any]) -> Any:
    settings, errors = parse_settings("tls_test", raw)
    assert errors == [], errors
    return create_shipper("tls_test", settings, raw)


async def attempt(raw: dict[str, Any], recs: list[Record]) -> Any:
    s = shipper(raw)
    try:
        try:
            await s.open()
        except Exception as e:  # noqa: BLE001 - open may refuse (template install); send says the same
            _ = e
        return await s.send(s.encode(recs))
    finally:
        await s.close()


def reason(outcome: Any) -> str:
    return str(getattr(outcome, "reason", outcome))


async def check(target: Target, pki: Pki, *, require_client_cert: bool, tls: dict[str, Any],
                expect: str) -> list[str]:
    ctx = pki.server_context(require_client_cert)
    async with tls_proxy(ctx, *target.upstream) as proxy:
        out = await attempt(target.raw(proxy.port) | {"tls": tls}, target.recs)
        if expect == "delivered":
            assert out == Delivered(), reason(out)
            assert target.received() == N
        elif expect == "verify failed":
            assert out != Delivered()
            assert "certificate verify failed" in reason(out).lower() or \
                   "certificate_verify_failed" in reason(out).lower(), reason(out)
            assert proxy.accepted == []
        else:  # refused by the server: no client certificate
            assert out != Delivered(), reason(out)
            assert proxy.accepted == []
        return proxy.accepted


@pytest.mark.parametrize("kind", KINDS)
async def test_verification_is_on_by_default(kind, pki, request):
    await check(request.getfixturevalue(kind), pki, require_client_cert=False, tls={}, expect="verify failed")


@pytest.mark.parametrize("kind", KINDS)
async def test_delivers_with_the_ca(kind, pki, request):
    accepted = await check(request.getfixturevalue(kind), pki, require_client_cert=False,
                           tls={"ca_file": str(pki.ca)}, expect="delivered")
    assert accepted and set(accepted) == {""}


@pytest.mark.parametrize("kind", KINDS)
async def test_client_certificate_required_and_given(kind, pki, request):
    await check(request.getfixturevalue(kind), pki, require_client_cert=True, tls={"ca_file": str(pki.ca)},
                expect="refused")
    accepted = await check(request.getfixturevalue(kind), pki, require_client_cert=True,
                           tls={"ca_file": str(pki.ca), "cert_file": str(pki.client_cert),
                                "key_file": str(pki.client_key)}, expect="delivered")
    assert accepted and set(accepted) == {"quarry client"}


# --- kafka --------------------------------------------------------------------------------------------------
def kafka_raw(srv: Any, topic: str, tls: dict[str, Any]) -> dict[str, Any]:
    return {"type": "kafka", "brokers": [srv.bootstrap_servers], "topic": topic, "tls": tls,
            "connect_timeout_ms": 5000,
            "sasl": {"mechanism": "SCRAM-SHA-512", "username": srv.scram_user, "password": srv.scram_password}}


async def test_kafka_verification_is_on_by_default(kafka_sasl_server, kafka_topic):
    out = await attempt(kafka_raw(kafka_sasl_server, kafka_topic, {}), records())
    assert out != Delivered()
    assert "certificate verify failed" in reason(out).lower(), reason(out)


async def test_kafka_delivers_with_the_ca(kafka_sasl_server, kafka_topic):
    from tests.shippers.kafka.test_kafka_server import consume

    recs = records()
    out = await attempt(kafka_raw(kafka_sasl_server, kafka_topic, {"ca_file": str(kafka_sasl_server.ca_file)}), recs)
    assert out == Delivered(), reason(out)
    got = await consume(kafka_topic, N, kafka_sasl_server.client_kwargs("SCRAM-SHA-512"))
    assert [m.value for m in got] == [r.payload for r in recs]


async def test_kafka_presents_its_client_certificate(kafka_server, kafka_topic, pki):
    # The proxy requires a client certificate and relays to the plain listener. Only the bootstrap handshake
    # matters here: the broker then advertises its plain address, which is not TLS, so nothing is delivered.
    host, port = _hostport(f"tcp://{kafka_server.bootstrap_servers}")
    for tls, cns in (({"ca_file": str(pki.ca)}, []),
                     ({"ca_file": str(pki.ca), "cert_file": str(pki.client_cert), "key_file": str(pki.client_key)},
                      ["quarry client"])):
        async with tls_proxy(pki.server_context(True), host, port) as proxy:
            raw = {"type": "kafka", "brokers": [f"127.0.0.1:{proxy.port}"], "topic": kafka_topic, "tls": tls,
                   "connect_timeout_ms": 3000}
            await attempt(raw, records(1))
            assert sorted(set(proxy.accepted)) == cns


