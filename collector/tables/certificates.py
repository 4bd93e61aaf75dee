"""certificates: CA certificates of the system bundles (osquery on Linux reads /etc/pki/tls/certs/ca-bundle.crt
and /etc/ssl/certs/ca-certificates.crt, or the bundle files given as `path`). One row per certificate.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import re
import warnings
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'certificates',
    "Certificate Authorities installed in Keychains/ca-bundles. NOTE: osquery limits frequent access to keychain files on macOS. This limit is controlled by keychain_access_interval flag. On macOS, 'path' may point to either a keychain file or a DER/PEM-encoded certificate file; non-keychain files are parsed as DER/PEM.",
    columns=[
        col('common_name', TEXT, 'Certificate CommonName'),
        col('subject', TEXT, 'Certificate distinguished name (deprecated, use subject2)'),
        col('subject2', TEXT, 'Certificate distinguished name'),
        col('issuer', TEXT, 'Certificate issuer distinguished name (deprecated, use issuer2)'),
        col('issuer2', TEXT, 'Certificate issuer distinguished name'),
        col('ca', INTEGER, '1 if CA: true (certificate is an authority) else 0'),
        col('self_signed', INTEGER, '1 if self-signed, else 0'),
        col('not_valid_before', TEXT, 'Lower bound of valid date'),
        col('not_valid_after', TEXT, 'Certificate expiration data'),
        col('signing_algorithm', TEXT, 'Signing algorithm used'),
        col('key_algorithm', TEXT, 'Key algorithm used'),
        col('key_strength', TEXT, 'Key size used for RSA/DSA, or curve name'),
        col('key_usage', TEXT, 'Certificate key usage and extended key usage'),
        col('subject_key_id', TEXT, 'SKID an optionally included SHA1', collate='nocase'),
        col('authority_key_id', TEXT, 'AKID an optionally included SHA1', collate='nocase'),
        col('sha1', TEXT, 'SHA1 hash of the raw certificate contents', collate='nocase'),
        col('path', TEXT, 'Path to Keychain or PEM bundle', additional=True, optimized=True),
        col('serial', TEXT, 'Certificate serial number', collate='nocase'),
        col('sid', TEXT, 'SID', platforms=('windows',)),
        col('store_location', TEXT, 'Certificate system store location', platforms=('windows',)),
        col('store', TEXT, 'Certificate system store', platforms=('windows',)),
        col('username', TEXT, 'Username', platforms=('windows',)),
        col('store_id', TEXT, 'Exists for service/user stores. Contains raw store id provided by WinAPI.', platforms=('windows',)),
    ],
    cacheable=True,
    platforms=('darwin', 'linux', 'windows'),
)


BUNDLES = ("/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/certs/ca-certificates.crt")
_PEM = re.compile(rb"-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----(.*?)-----END (?:TRUSTED |X509 )?CERTIFICATE-----",
                  re.S)


def generate(ctx: Context) -> Iterator[Row]:
    from cryptography import x509  # imported lazily: only this table and curl_certificate need it

    paths = ctx.eq("path")
    bad = 0
    for path in sorted(paths) if paths is not None else BUNDLES:
        try:
            with open(ctx.path(str(path)), "rb") as f:
                data = f.read(ctx.limits.read_max)
        except OSError:
            continue
        for block in _PEM.findall(data):
            ctx.check()
            try:
                der = base64.b64decode(b"".join(block.split()))
                with warnings.catch_warnings():
                    # Old CA roots with non-positive serials still parse; osquery lists them too.
                    warnings.simplefilter("ignore")
                    cert = x509.load_der_x509_certificate(der)
                    row = cert_row(cert, der, ctx)
            except (ValueError, binascii.Error):
                bad += 1
                continue
            row["path"] = str(path)
            yield row
    if bad:
        ctx.note(f"{bad} certificate block(s) could not be parsed")


def cert_row(cert, der: bytes, ctx: Context) -> Row:
    from cryptography.x509.oid import ExtensionOID, NameOID

    from collector.tables import _x509

    key_alg, key_strength = _x509.key_info(cert) if ctx.used("key_algorithm") or ctx.used("key_strength") else (
        None, None)
    ski = _x509.ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    aki = _x509.ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    return {
        "common_name": _x509.first(cert.subject, NameOID.COMMON_NAME) or "",
        "subject": _x509.name_oneline(cert.subject),
        "subject2": _x509.name_print(cert.subject),
        "issuer": _x509.name_oneline(cert.issuer),
        "issuer2": _x509.name_print(cert.issuer),
        "ca": int(_x509.is_ca(cert)),
        "self_signed": int(_x509.is_self_signed(cert)),
        # TEXT columns holding epoch seconds, as osquery prints them.
        "not_valid_before": str(calendar.timegm(_x509.not_before(cert).utctimetuple())),
        "not_valid_after": str(calendar.timegm(_x509.not_after(cert).utctimetuple())),
        "signing_algorithm": _x509.sig_names(cert)[0],
        "key_algorithm": key_alg or "",
        "key_strength": key_strength or "",
        "key_usage": _x509.key_usage_cert(cert) or "",
        "subject_key_id": ski.digest.hex() if ski is not None else "",
        "authority_key_id": aki.key_identifier.hex() if aki is not None and aki.key_identifier else "",
        "sha1": _x509.sha1(der),
        "serial": _x509.serial_hex(cert),
    }
