"""curl, curl_certificate, certificates: local HTTP/TLS servers started here, openssl(1) as the reference."""

from __future__ import annotations

import datetime as dt
import hashlib
import http.server
import ipaddress
import re
import shutil
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402


def make_cert(ca: bool = False, key=None) -> tuple[bytes, bytes]:
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "DE"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Quarry Test, Inc"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Tables"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
         .serial_number(0x0ABCDEF012345)
         .not_valid_before(dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc))
         .not_valid_after(dt.datetime(2099, 1, 5, 8, 30, 0, tzinfo=dt.timezone.utc))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
         .add_extension(x509.KeyUsage(True, False, not ca, False, False, ca, ca, False, False), critical=True)
         .add_extension(ski, critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
         .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
         .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                     x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                        critical=False))
    cert = b.sign(key, hashes.SHA256())
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return pem, key_pem


def _openssl(pem: bytes, *args: str) -> str:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not installed")
    return subprocess.run(["openssl", "x509", "-noout", *args], input=pem, capture_output=True, check=True).stdout.decode()


# --- curl -------------------------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = self.headers.get("User-Agent", "").encode() + b"|" + self.path.encode()
        self.send_response(404 if self.path == "/missing" else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_curl_local_server(engine, http_server):
    r = engine.query(f"SELECT * FROM curl WHERE url = '{http_server}/hello?x=1'").dicts()
    assert len(r) == 1
    row = r[0]
    assert row["method"] == "GET" and row["user_agent"] == "osquery" and row["response_code"] == 200
    assert row["result"] == "osquery|/hello?x=1" and row["bytes"] == len(row["result"])
    assert 0 < row["round_trip_time"] < 5_000_000  # microseconds


def test_curl_user_agent_404_and_in_list(engine, http_server):
    rows = engine.query(f"SELECT url, user_agent, response_code, result FROM curl WHERE url IN "
                        f"('{http_server}/missing', '{http_server}/a') AND user_agent = 'qa'").rows
    assert sorted(rows) == [(f"{http_server}/a", "qa", 200, "qa|/a"), (f"{http_server}/missing", "qa", 404, "qa|/missing")]


def test_curl_refused_and_required(engine):
    from collector.errors import QueryError
    r = engine.query("SELECT url, response_code FROM curl WHERE url = 'http://127.0.0.1:1/'")
    assert r.rows == [("http://127.0.0.1:1/", None)] and r.warnings
    with pytest.raises(QueryError, match="required column"):
        engine.query("SELECT * FROM curl")


# --- curl_certificate -------------------------------------------------------------------------------

@pytest.fixture
def tls_server(tmp_path):
    pem, key = make_cert()
    (tmp_path / "c.pem").write_bytes(pem)
    (tmp_path / "k.pem").write_bytes(key)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{srv.server_address[1]}", pem
    srv.shutdown()
    srv.server_close()


def test_curl_certificate_local_tls(engine, tls_server):
    host, pem = tls_server
    rows = engine.query(f"SELECT *, pem, timeout, dump_certificate FROM curl_certificate WHERE hostname = '{host}' AND dump_certificate = 1").dicts()
    assert len(rows) == 1
    r = rows[0]
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    assert r["sha256_fingerprint"] == hashlib.sha256(der).hexdigest()
    assert r["sha1_fingerprint"] == hashlib.sha1(der).hexdigest()
    assert r["pem"].strip() == pem.decode().strip()
    assert (r["common_name"], r["organization"], r["organization_unit"]) == ("localhost", "Quarry Test, Inc", "Tables")
    assert (r["issuer_common_name"], r["version"], r["has_expired"]) == ("localhost", 3, 0)
    text = _openssl(pem, "-text", "-serial", "-dates")
    assert f"serial={r['serial_number']}" in text
    assert f"notBefore={r['valid_from']}" in text and f"notAfter={r['valid_to']}" in text
    assert f"Signature Algorithm: sha256WithRSAEncryption" in text and r["signature_algorithm"] == "RSA-SHA256"
    for col in ("subject_key_identifier", "key_usage", "extended_key_usage", "basic_constraint",
                "subject_alternative_names"):
        assert r[col] and r[col] in text, col
    assert r["authority_key_identifier"] in text
    assert r["signature"].replace(":", "") == x509.load_pem_x509_certificate(pem).signature.hex()
    assert r["hostname"] == host and r["timeout"] == 4 and r["dump_certificate"] == 1


def test_curl_certificate_unreachable(engine):
    r = engine.query("SELECT * FROM curl_certificate WHERE hostname = '127.0.0.1:1' AND timeout = 1")
    assert r.rows == [] and any("127.0.0.1:1" in w for w in r.warnings)


def test_split_host():
    from collector.tables.curl_certificate import split_host
    assert split_host("osquery.io") == ("osquery.io", 443)
    assert split_host("osquery.io:") == ("osquery.io", 443)
    assert split_host("a.b:8443") == ("a.b", 8443)
    assert split_host("[::1]:8443") == ("::1", 8443)


# --- certificates -----------------------------------------------------------------------------------

def test_certificates_fixture_vs_openssl(engine_at, tmp_path):
    ca_pem, _ = make_cert(ca=True)
    ec_pem, _ = make_cert(key=ec.generate_private_key(ec.SECP384R1()))
    bundle = tmp_path / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(ca_pem + b"garbage between\n" + ec_pem)
    rows = engine_at(tmp_path).query("SELECT * FROM certificates").dicts()
    assert len(rows) == 2
    ca, leaf = rows
    assert ca["path"] == "/etc/ssl/certs/ca-certificates.crt"
    subject = _openssl(ca_pem, "-subject", "-nameopt", "oneline").strip()
    assert subject == "subject=" + ca["subject2"]
    assert _openssl(ca_pem, "-subject", "-nameopt", "compat").strip() == "subject=" + ca["subject"]
    assert ca["subject"] == "/C=DE/O=Quarry Test, Inc/OU=Tables/CN=localhost" and ca["issuer"] == ca["subject"]
    assert ca["subject2"] == 'C = DE, O = "Quarry Test, Inc", OU = Tables, CN = localhost'
    fp = _openssl(ca_pem, "-fingerprint", "-sha1").strip().split("=", 1)[1]
    assert ca["sha1"] == fp.replace(":", "").lower()
    assert _openssl(ca_pem, "-serial").strip() == f"serial={ca['serial']}"
    assert (ca["ca"], ca["self_signed"], leaf["ca"], leaf["self_signed"]) == (1, 1, 0, 0)
    assert ca["not_valid_before"] == str(int(dt.datetime(2024, 3, 1, 12, tzinfo=dt.timezone.utc).timestamp()))
    assert ca["key_algorithm"] == "rsaEncryption" and ca["key_strength"] == "2048"
    assert leaf["key_algorithm"] == "id-ecPublicKey" and leaf["key_strength"] == "secp384r1"
    assert ca["signing_algorithm"] == "sha256WithRSAEncryption"
    assert ca["key_usage"] == "CRL Sign, Key Cert Sign, Digital Signature"
    assert ca["subject_key_id"] == ca["authority_key_id"] and re.fullmatch("[0-9a-f]{40}", ca["subject_key_id"])
    assert engine_at(tmp_path).query(
        "SELECT count(*) FROM certificates WHERE path = '/etc/ssl/certs/ca-certificates.crt'").rows == [(2,)]


def test_certificates_live_bundle(engine):
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    try:
        data = Path(bundle).read_bytes()
    except OSError:
        pytest.skip("no CA bundle")
    rows = engine.query("SELECT sha1, common_name, ca FROM certificates WHERE path = '" + bundle + "'").rows
    blocks = re.findall(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", data, re.S)
    assert len(rows) == len(blocks)
    import base64
    assert {r[0] for r in rows} == {hashlib.sha1(base64.b64decode(b"".join(b.split()))).hexdigest() for b in blocks}
    assert sum(r[2] for r in rows) >= len(rows) - 5  # roots are CAs
