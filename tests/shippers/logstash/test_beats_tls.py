"""Beats mode over TLS against the in-test lumberjack peer: verification on by default, the CA from the shared
tls block, host name checking, and verify=false. Certificates are made with the openssl CLI for each run."""

from __future__ import annotations

import shutil
import ssl
import subprocess

import pytest

from collector.pipeline.api import Delivered, Retry
from collector.pipeline.config import parse_settings
from shippers.logstash import create

from .fakes import FakeLumberjack
from .test_beats_unit import recs

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=quarry test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    (d / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return d


def server_ctx(d) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "server.pem", d / "server.key")
    return ctx


def make(port: int, tls: dict | None):
    raw = {"type": "logstash", "hosts": [f"127.0.0.1:{port}"], "ack_timeout_s": 2, "connect_timeout_s": 2}
    if tls is not None:
        raw["tls"] = tls
    settings, errors = parse_settings("ls", raw)
    assert errors == []
    return create("ls", settings, raw)


async def test_tls_with_ca_verifies_and_delivers(certs):
    async with FakeLumberjack(ssl_ctx=server_ctx(certs)) as peer:
        s = make(peer.port, {"ca_file": str(certs / "ca.pem")})
        assert await s.send(s.encode(recs(20))) == Delivered()
        await s.close()
    assert [ev["i"] for _, ev in peer.windows[0]] == list(range(20))


async def test_unknown_ca_is_refused_by_default(certs):
    async with FakeLumberjack(ssl_ctx=server_ctx(certs)) as peer:
        s = make(peer.port, {})  # TLS on, system CAs only
        out = await s.send(s.encode(recs(1)))
        await s.close()
    assert isinstance(out, Retry) and "CERTIFICATE_VERIFY_FAILED" in out.reason
    assert peer.windows == []


async def test_wrong_server_name_is_refused(certs):
    async with FakeLumberjack(ssl_ctx=server_ctx(certs)) as peer:
        s = make(peer.port, {"ca_file": str(certs / "ca.pem"), "server_name": "logstash.example"})
        out = await s.send(s.encode(recs(1)))
        await s.close()
    assert isinstance(out, Retry) and "CERTIFICATE_VERIFY_FAILED" in out.reason


async def test_verify_false_accepts_any_certificate(certs):
    async with FakeLumberjack(ssl_ctx=server_ctx(certs)) as peer:
        s = make(peer.port, {"verify": False})
        assert await s.send(s.encode(recs(3))) == Delivered()
        await s.close()
