"""X.509 field formatting shared by certificates and curl_certificate, in the text forms OpenSSL prints
(osquery formats with OpenSSL: X509_NAME_oneline / print_ex, X509V3_EXT_print, ASN1_TIME_print, BN_bn2hex).
Uses the `cryptography` package.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

# OpenSSL short names (X509_NAME_oneline, print_ex with XN_FLAG_FN_SN) for common attribute OIDs.
_SN = {
    NameOID.COMMON_NAME: "CN", NameOID.COUNTRY_NAME: "C", NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST", NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU", NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber", NameOID.DOMAIN_COMPONENT: "DC", NameOID.STREET_ADDRESS: "street",
    NameOID.USER_ID: "UID", NameOID.TITLE: "title", NameOID.GIVEN_NAME: "GN", NameOID.SURNAME: "SN",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier", NameOID.BUSINESS_CATEGORY: "businessCategory",
    NameOID.POSTAL_CODE: "postalCode", NameOID.JURISDICTION_COUNTRY_NAME: "jurisdictionC",
    NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME: "jurisdictionST",
    NameOID.JURISDICTION_LOCALITY_NAME: "jurisdictionL",
}
# OpenSSL long names (OBJ_nid2ln) of signature and key algorithms.
_SIG_LN = {
    "1.2.840.113549.1.1.5": ("sha1WithRSAEncryption", "RSA-SHA1"),
    "1.2.840.113549.1.1.11": ("sha256WithRSAEncryption", "RSA-SHA256"),
    "1.2.840.113549.1.1.12": ("sha384WithRSAEncryption", "RSA-SHA384"),
    "1.2.840.113549.1.1.13": ("sha512WithRSAEncryption", "RSA-SHA512"),
    "1.2.840.113549.1.1.14": ("sha224WithRSAEncryption", "RSA-SHA224"),
    "1.2.840.113549.1.1.4": ("md5WithRSAEncryption", "RSA-MD5"),
    "1.2.840.113549.1.1.10": ("rsassaPss", "RSASSA-PSS"),
    "1.2.840.10045.4.1": ("ecdsa-with-SHA1", "ecdsa-with-SHA1"),
    "1.2.840.10045.4.3.2": ("ecdsa-with-SHA256", "ecdsa-with-SHA256"),
    "1.2.840.10045.4.3.3": ("ecdsa-with-SHA384", "ecdsa-with-SHA384"),
    "1.2.840.10045.4.3.4": ("ecdsa-with-SHA512", "ecdsa-with-SHA512"),
    "1.3.101.112": ("ED25519", "ED25519"),
    "1.3.101.113": ("ED448", "ED448"),
    "2.16.840.1.101.3.4.3.2": ("dsa_with_SHA256", "dsa_with_SHA256"),
}
_CURVE_LN = {"secp256r1": "prime256v1", "secp192r1": "prime192v1"}
_KU_CERT = (  # osquery certificates: its own table, ordered by flag value
    ("encipher_only", "Encipher Only"), ("crl_sign", "CRL Sign"), ("key_cert_sign", "Key Cert Sign"),
    ("key_agreement", "Key Agreement"), ("data_encipherment", "Data Encipherment"),
    ("key_encipherment", "Key Encipherment"), ("content_commitment", "Non Repudiation"),
    ("digital_signature", "Digital Signature"), ("decipher_only", "Decipher Only"),
)
_KU_EXT = (  # X509V3_EXT_print order and names
    ("digital_signature", "Digital Signature"), ("content_commitment", "Non Repudiation"),
    ("key_encipherment", "Key Encipherment"), ("data_encipherment", "Data Encipherment"),
    ("key_agreement", "Key Agreement"), ("key_cert_sign", "Certificate Sign"), ("crl_sign", "CRL Sign"),
    ("encipher_only", "Encipher Only"), ("decipher_only", "Decipher Only"),
)
_EKU = {
    "1.3.6.1.5.5.7.3.1": "TLS Web Server Authentication", "1.3.6.1.5.5.7.3.2": "TLS Web Client Authentication",
    "1.3.6.1.5.5.7.3.3": "Code Signing", "1.3.6.1.5.5.7.3.4": "E-mail Protection",
    "1.3.6.1.5.5.7.3.8": "Time Stamping", "1.3.6.1.5.5.7.3.9": "OCSP Signing",
    "2.5.29.37.0": "Any Extended Key Usage",
}


def _sn(oid: x509.ObjectIdentifier) -> str:
    return _SN.get(oid, oid.dotted_string)


def _value(attr: x509.NameAttribute) -> str:
    v = attr.value
    return v if isinstance(v, str) else v.hex()


def name_oneline(name: x509.Name) -> str:
    """X509_NAME_oneline: /C=US/O=Org/CN=Name; bytes outside printable ASCII as \\xHH."""
    out = []
    for attr in name:
        raw = _value(attr).encode("utf-8")
        text = "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02X}" for b in raw)
        out.append(f"/{_sn(attr.oid)}={text}")
    return "".join(out)


def name_print(name: x509.Name) -> str:
    """X509_NAME_print_ex(XN_FLAG_ONELINE): 'C = US, O = Org, CN = Name' with RFC 2253 escaping."""
    rdns = []
    for rdn in name.rdns:
        parts = []
        for attr in rdn:
            val = _value(attr)
            raw = val.encode("utf-8")
            esc = "".join(f"\\{b:02X}" if b >= 0x80 or b < 0x20 else chr(b) for b in raw)
            if any(c in val for c in ',+"\\<>;') or val[:1] in (" ", "#") or val[-1:] == " ":
                esc = '"' + esc.replace('"', '\\"') + '"'  # ASN1_STRFLGS_ESC_QUOTE
            parts.append(f"{_sn(attr.oid)} = {esc}")
        rdns.append(" + ".join(parts))
    return ", ".join(rdns)


def first(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    attrs = name.get_attributes_for_oid(oid)
    return _value(attrs[0]) if attrs else None


def ext(cert: x509.Certificate, oid: x509.ObjectIdentifier):
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def sig_names(cert: x509.Certificate) -> tuple[str, str]:
    """(OBJ_nid2ln, OBJ_nid2sn) of the signature algorithm."""
    oid = cert.signature_algorithm_oid.dotted_string
    return _SIG_LN.get(oid, (oid, oid))


def key_info(cert: x509.Certificate) -> tuple[str | None, str | None]:
    """(key_algorithm, key_strength) as osquery's certificates table reports them."""
    try:
        key = cert.public_key()
    except Exception:  # noqa: BLE001 - unsupported key types (e.g. GOST) parse lazily
        return None, None
    if isinstance(key, rsa.RSAPublicKey):
        return "rsaEncryption", str((key.key_size + 7) // 8 * 8)
    if isinstance(key, dsa.DSAPublicKey):
        return "dsaEncryption", str(key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "id-ecPublicKey", _CURVE_LN.get(key.curve.name, key.curve.name)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ED25519", None
    if isinstance(key, ed448.Ed448PublicKey):
        return "ED448", None
    return None, None


def serial_hex(cert: x509.Certificate) -> str:
    """BN_bn2hex: uppercase, whole bytes, '0' for zero."""
    n = cert.serial_number
    if n == 0:
        return "0"
    sign = "-" if n < 0 else ""
    n = abs(n)
    return sign + n.to_bytes((n.bit_length() + 7) // 8, "big").hex().upper()


def colon_hex(data: bytes, upper: bool = True) -> str:
    h = data.hex().upper() if upper else data.hex()
    return ":".join(h[i : i + 2] for i in range(0, len(h), 2))


def asn1_time(t: dt.datetime) -> str:
    """ASN1_TIME_print: 'Mar  1 12:00:00 2024 GMT'."""
    return f"{t.strftime('%b')} {t.day:2d} {t.strftime('%H:%M:%S')} {t.year} GMT"


def not_before(cert: x509.Certificate) -> dt.datetime:
    return cert.not_valid_before_utc


def not_after(cert: x509.Certificate) -> dt.datetime:
    return cert.not_valid_after_utc


def key_usage_cert(cert: x509.Certificate) -> str | None:
    ku = ext(cert, ExtensionOID.KEY_USAGE)
    if ku is None:
        return None
    return ", ".join(label for attr, label in _KU_CERT if _ku_flag(ku, attr))


def key_usage_ext(cert: x509.Certificate) -> str:
    ku = ext(cert, ExtensionOID.KEY_USAGE)
    if ku is None:
        return ""
    return ", ".join(label for attr, label in _KU_EXT if _ku_flag(ku, attr))


def _ku_flag(ku: x509.KeyUsage, attr: str) -> bool:
    try:
        return bool(getattr(ku, attr))
    except ValueError:  # encipher_only/decipher_only are undefined without key_agreement
        return False


def eku_text(cert: x509.Certificate) -> str:
    eku = ext(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    if eku is None:
        return ""
    return ", ".join(_EKU.get(o.dotted_string, o.dotted_string) for o in eku)


def general_name(g: x509.GeneralName) -> str:
    if isinstance(g, x509.DNSName):
        return f"DNS:{g.value}"
    if isinstance(g, x509.IPAddress):
        ip = g.value
        if ip.version == 6:
            groups = [f"{int.from_bytes(ip.packed[i:i + 2], 'big'):X}" for i in range(0, 16, 2)]
            return "IP Address:" + ":".join(groups)
        return f"IP Address:{ip}"
    if isinstance(g, x509.RFC822Name):
        return f"email:{g.value}"
    if isinstance(g, x509.UniformResourceIdentifier):
        return f"URI:{g.value}"
    if isinstance(g, x509.DirectoryName):
        return "DirName:" + name_oneline(g.value)
    if isinstance(g, x509.RegisteredID):
        return f"Registered ID:{g.value.dotted_string}"
    return "othername:<unsupported>"


def names_text(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    v = ext(cert, oid)
    return ", ".join(general_name(g) for g in v) if v is not None else ""


def basic_constraints_text(cert: x509.Certificate) -> str:
    bc = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    if bc is None:
        return ""
    out = "CA:TRUE" if bc.ca else "CA:FALSE"
    return out + (f", pathlen:{bc.path_length}" if bc.path_length is not None else "")


def is_ca(cert: x509.Certificate) -> bool:
    """X509_check_ca() > 0."""
    bc = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    if bc is not None:
        return bool(bc.ca)
    if cert.version == x509.Version.v1 and cert.subject == cert.issuer:
        return True
    ku = ext(cert, ExtensionOID.KEY_USAGE)
    return bool(ku is not None and ku.key_cert_sign)


def is_self_signed(cert: x509.Certificate) -> bool:
    """X509_check_issued(cert, cert) == X509_V_OK: names match, AKID matches SKID, KU allows signing."""
    if cert.subject != cert.issuer:
        return False
    aki = ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    ski = ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER)
    if aki is not None and aki.key_identifier is not None and ski is not None:
        if aki.key_identifier != ski.digest:
            return False
    ku = ext(cert, ExtensionOID.KEY_USAGE)
    return not (ku is not None and not ku.key_cert_sign)


def sha1(der: bytes) -> str:
    return hashlib.sha1(der).hexdigest()  # noqa: S324 - a fingerprint, as osquery reports
