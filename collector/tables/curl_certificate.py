"""curl_certificate: connect with TLS to each `hostname` (host[:port], default 443) and describe the peer
certificate in the text forms osquery's OpenSSL code prints. No verification, as osquery: the point is to
inspect whatever certificate the server presents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import ssl
import warnings
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'curl_certificate',
    'Inspect TLS certificates by connecting to input hostnames.',
    columns=[
        col('hostname', TEXT, 'Hostname to CURL (domain[:port], e.g. osquery.io)', required=True, optimized=True),
        col('common_name', TEXT, 'Common name of company issued to'),
        col('organization', TEXT, 'Organization issued to'),
        col('organization_unit', TEXT, 'Organization unit issued to'),
        col('serial_number', TEXT, 'Certificate serial number', collate='nocase'),
        col('issuer_common_name', TEXT, 'Issuer common name'),
        col('issuer_organization', TEXT, 'Issuer organization'),
        col('issuer_organization_unit', TEXT, 'Issuer organization unit'),
        col('valid_from', TEXT, 'Period of validity start date'),
        col('valid_to', TEXT, 'Period of validity end date'),
        col('sha256_fingerprint', TEXT, 'SHA-256 fingerprint', collate='nocase'),
        col('sha1_fingerprint', TEXT, 'SHA1 fingerprint', collate='nocase'),
        col('version', INTEGER, 'Version Number'),
        col('signature_algorithm', TEXT, 'Signature Algorithm'),
        col('signature', TEXT, 'Signature'),
        col('subject_key_identifier', TEXT, 'Subject Key Identifier', collate='nocase'),
        col('authority_key_identifier', TEXT, 'Authority Key Identifier', collate='nocase'),
        col('key_usage', TEXT, 'Usage of key in certificate'),
        col('extended_key_usage', TEXT, 'Extended usage of key in certificate'),
        col('policies', TEXT, 'Certificate Policies'),
        col('subject_alternative_names', TEXT, 'Subject Alternative Name'),
        col('issuer_alternative_names', TEXT, 'Issuer Alternative Name'),
        col('info_access', TEXT, 'Authority Information Access'),
        col('subject_info_access', TEXT, 'Subject Information Access'),
        col('policy_mappings', TEXT, 'Policy Mappings'),
        col('has_expired', INTEGER, '1 if the certificate has expired, 0 otherwise'),
        col('basic_constraint', TEXT, 'Basic Constraints'),
        col('name_constraints', TEXT, 'Name Constraints'),
        col('policy_constraints', TEXT, 'Policy Constraints'),
        col('dump_certificate', INTEGER, "Set this value to '1' to dump certificate", hidden=True, additional=True),
        col('timeout', INTEGER, 'Set this value to the timeout in seconds to complete the TLS handshake (default 4s, use 0 for no timeout)', hidden=True, additional=True),
        col('pem', TEXT, 'Certificate PEM format'),
    ],
    platforms=('darwin', 'linux', 'windows'),
    examples=("select * from curl_certificate where hostname = 'osquery.io'select * from curl_certificate where hostname = 'osquery.io' and dump_certificate = 1",),
)


DEFAULT_TIMEOUT = 4


def generate(ctx: Context) -> Iterator[Row]:
    hosts = ctx.eq("hostname") or set()
    dump = 1 if any(str(v) == "1" for v in (ctx.eq("dump_certificate") or ())) else 0
    timeout = DEFAULT_TIMEOUT
    for v in ctx.eq("timeout") or ():
        try:
            timeout = int(v) if int(v) >= 0 else DEFAULT_TIMEOUT
        except (TypeError, ValueError):
            pass
        break
    for hostname in sorted(str(h) for h in hosts):
        ctx.check()
        try:
            der = fetch(hostname, timeout)
        except (OSError, ssl.SSLError, ValueError) as e:
            ctx.note(f"cannot get certificate for {hostname}: {e}")  # osquery logs and skips the host
            continue
        row = describe(der, dump)
        row.update({"hostname": hostname, "timeout": timeout, "dump_certificate": dump})
        yield row


def split_host(hostname: str) -> tuple[str, int]:
    host, sep, port = hostname.rpartition(":")
    if not sep or "]" in port or (host.count(":") and not host.endswith("]")):
        return hostname.strip("[]"), 443
    return host.strip("[]"), int(port) if port else 443


def fetch(hostname: str, timeout: int) -> bytes:
    host, port = split_host(hostname)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG)
    if not infos:
        raise OSError("unable to resolve hostname")
    info = next((i for i in infos if i[0] == socket.AF_INET), infos[0])  # osquery prefers IPv4
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    with socket.socket(info[0], info[1], info[2]) as sock:
        sock.settimeout(timeout or None)
        sock.connect(info[4])
        sni = None if _is_ip(host) else host
        with tls.wrap_socket(sock, server_hostname=sni) as conn:
            der = conn.getpeercert(binary_form=True)
    if not der:
        raise OSError("no certificate")
    return der


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return True
    except OSError:
        return False


def describe(der: bytes, dump: int) -> Row:
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID, NameOID

    from collector.tables import _x509

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cert = x509.load_der_x509_certificate(der)
        ski = _x509.ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
        aki = _x509.ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
        aia = _x509.ext(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
        policies = _x509.ext(cert, ExtensionOID.CERTIFICATE_POLICIES)
        row: Row = {
            "common_name": _x509.first(cert.subject, NameOID.COMMON_NAME),
            "organization": _x509.first(cert.subject, NameOID.ORGANIZATION_NAME),
            "organization_unit": _x509.first(cert.subject, NameOID.ORGANIZATIONAL_UNIT_NAME),
            "serial_number": _x509.serial_hex(cert),
            "issuer_common_name": _x509.first(cert.issuer, NameOID.COMMON_NAME),
            "issuer_organization": _x509.first(cert.issuer, NameOID.ORGANIZATION_NAME),
            "issuer_organization_unit": _x509.first(cert.issuer, NameOID.ORGANIZATIONAL_UNIT_NAME),
            "valid_from": _x509.asn1_time(_x509.not_before(cert)),
            "valid_to": _x509.asn1_time(_x509.not_after(cert)),
            "sha256_fingerprint": hashlib.sha256(der).hexdigest(),
            "sha1_fingerprint": _x509.sha1(der),
            "version": cert.version.value + 1,
            "signature_algorithm": _x509.sig_names(cert)[1],
            "signature": _x509.colon_hex(cert.signature, upper=False),
            "subject_key_identifier": _x509.colon_hex(ski.digest) if ski is not None else "",
            "authority_key_identifier": (_x509.colon_hex(aki.key_identifier)
                                         if aki is not None and aki.key_identifier else ""),
            "key_usage": _x509.key_usage_ext(cert),
            "extended_key_usage": _x509.eku_text(cert),
            "policies": ";".join(f"Policy: {p.policy_identifier.dotted_string}" for p in policies)
            if policies is not None else "",
            "subject_alternative_names": _x509.names_text(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME),
            "issuer_alternative_names": _x509.names_text(cert, ExtensionOID.ISSUER_ALTERNATIVE_NAME),
            "info_access": ";".join(_access(d) for d in aia) if aia is not None else "",
            "subject_info_access": "",
            "policy_mappings": "",
            "has_expired": int(_x509.not_after(cert) <= dt.datetime.now(dt.timezone.utc)),
            "basic_constraint": _x509.basic_constraints_text(cert),
            "name_constraints": "",
            "policy_constraints": "",
        }
        sia = _x509.ext(cert, ExtensionOID.SUBJECT_INFORMATION_ACCESS)
        if sia is not None:
            row["subject_info_access"] = ";".join(_access(d) for d in sia)
    if dump:
        row["pem"] = ssl.DER_cert_to_PEM_cert(der)
    return row


def _access(d) -> str:
    from collector.tables import _x509

    method = {"1.3.6.1.5.5.7.48.1": "OCSP", "1.3.6.1.5.5.7.48.2": "CA Issuers"}.get(
        d.access_method.dotted_string, d.access_method.dotted_string)
    return f"{method} - {_x509.general_name(d.access_location)}"
