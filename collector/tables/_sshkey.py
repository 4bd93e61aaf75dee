"""Private-key headers for user_ssh_keys: type, size and whether encrypted, without decrypting anything.

Facts mirrored from osquery (which asks OpenSSL, then falls back to the OpenSSH container):
- PEM keys OpenSSL reads: key_type one of rsa/dsa/dh/ec/hmac/cmac or "" (ed25519, RSA-PSS…), key_length
  EVP_PKEY_bits, key_security_bits EVP_PKEY_security_bits, key_group_name the named curve (EC only).
- Encrypted PEM (Proc-Type 4,ENCRYPTED or ENCRYPTED PRIVATE KEY): encrypted=1, type "", sizes -1.
- "openssh-key-v1" keys: the public half is stored in clear, so the type and size are read from it;
  encrypted when the cipher name is not "none". Types: ed25519, rsa, dsa, ecdsa-p256/384/521, else the
  raw SSH name with sizes -1.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.S)
_PRIVATE_LABELS = (b"PRIVATE KEY", b"ENCRYPTED PRIVATE KEY", b"RSA PRIVATE KEY", b"DSA PRIVATE KEY",
                   b"EC PRIVATE KEY", b"ANY PRIVATE KEY")
_OPENSSH_MAGIC = b"openssh-key-v1\0"

# OIDs (dotted) of PKCS#8 algorithms and named curves; curve: (OpenSSL group name, order bits).
_ALG = {
    "1.2.840.113549.1.1.1": "rsa",
    "1.2.840.113549.1.1.10": "rsa-pss",
    "1.2.840.10040.4.1": "dsa",
    "1.2.840.113549.1.3.1": "dh",
    "1.2.840.10046.2.1": "dh",
    "1.2.840.10045.2.1": "ec",
    "1.3.101.110": "x25519",
    "1.3.101.111": "x448",
    "1.3.101.112": "ed25519",
    "1.3.101.113": "ed448",
}
_CURVES = {
    "1.2.840.10045.3.1.1": ("prime192v1", 192),
    "1.3.132.0.33": ("secp224r1", 224),
    "1.2.840.10045.3.1.7": ("prime256v1", 256),
    "1.3.132.0.34": ("secp384r1", 384),
    "1.3.132.0.35": ("secp521r1", 521),
    "1.3.132.0.10": ("secp256k1", 256),
    "1.3.36.3.3.2.8.1.1.7": ("brainpoolP256r1", 256),
    "1.3.36.3.3.2.8.1.1.11": ("brainpoolP384r1", 384),
    "1.3.36.3.3.2.8.1.1.13": ("brainpoolP512r1", 512),
}
# EVP_PKEY_bits / EVP_PKEY_security_bits of the fixed-size Edwards/Montgomery keys.
_FIXED = {"x25519": (253, 128), "ed25519": (253, 128), "x448": (448, 224), "ed448": (456, 224)}


@dataclass
class KeyInfo:
    encrypted: bool
    key_type: str = ""
    key_group_name: str = ""
    key_length: int = -1
    key_security_bits: int = -1


def parse_private_key(data: bytes) -> KeyInfo | None:
    """KeyInfo for a private-key file's content, or None when it holds no private key."""
    if b"-----BEGIN " not in data:
        return None
    for m in _PEM.finditer(data):
        label, body = m.group(1), m.group(2)
        if label == b"OPENSSH PRIVATE KEY":
            return _openssh(body)
        if label not in _PRIVATE_LABELS:
            continue  # e.g. the "EC PARAMETERS" block `openssl ecparam -genkey` writes first
        if label == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in body:
            return KeyInfo(encrypted=True)
        der = _b64(b"\n".join(ln for ln in body.splitlines() if b":" not in ln))
        if der is None:
            continue
        try:
            info = _der_key(label, der)
        except (ValueError, IndexError):
            info = None
        if info is not None:
            return info
    return None


# --- PEM/DER ------------------------------------------------------------------------------------------
def _b64(body: bytes) -> bytes | None:
    try:
        return base64.b64decode(b"".join(body.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _tlv(buf: bytes, pos: int) -> tuple[int, bytes, int]:
    """(tag, value, next position) of the DER element at pos."""
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 4:
            raise ValueError("unsupported DER length")
        length = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    if pos + length > len(buf):
        raise ValueError("truncated DER")
    return tag, buf[pos:pos + length], pos + length


def _children(value: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(value):
        tag, v, pos = _tlv(value, pos)
        out.append((tag, v))
    return out


def _seq(buf: bytes) -> list[tuple[int, bytes]]:
    tag, v, _ = _tlv(buf, 0)
    if tag != 0x30:
        raise ValueError("not a SEQUENCE")
    return _children(v)


def _oid(v: bytes) -> str:
    parts = [v[0] // 40, v[0] % 40]
    n = 0
    for b in v[1:]:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(n)
            n = 0
    return ".".join(map(str, parts))


def _uint(v: bytes) -> int:
    return int.from_bytes(v, "big")


def _der_key(label: bytes, der: bytes) -> KeyInfo | None:
    items = _seq(der)
    if label == b"RSA PRIVATE KEY":
        return _rsa(_uint(items[1][1]))
    if label == b"DSA PRIVATE KEY":
        return _dsa(_uint(items[1][1]), _uint(items[2][1]))
    if label == b"EC PRIVATE KEY":
        for tag, v in items[2:]:
            if tag == 0xA0:  # [0] ECParameters: the named curve
                return _ec(_oid(_children(v)[0][1]))
        return KeyInfo(encrypted=False, key_type="ec")
    # PKCS#8 PrivateKeyInfo: version, AlgorithmIdentifier, OCTET STRING privateKey
    alg = _children(items[1][1])
    kind = _ALG.get(_oid(alg[0][1]), "")
    params = alg[1] if len(alg) > 1 else (0x05, b"")
    inner = items[2][1]
    if kind in ("rsa", "rsa-pss"):
        info = _rsa(_uint(_seq(inner)[1][1]))
        if kind == "rsa-pss":
            info.key_type = ""
        return info
    if kind == "dsa":
        p_q_g = _children(params[1])
        return _dsa(_uint(p_q_g[0][1]), _uint(p_q_g[1][1]))
    if kind == "dh":
        p = _uint(_children(params[1])[0][1])
        return KeyInfo(False, "dh", "", p.bit_length(), _bn_security_bits(p.bit_length()))
    if kind == "ec":
        return _ec(_oid(params[1])) if params[0] == 0x06 else KeyInfo(encrypted=False, key_type="ec")
    if kind in _FIXED:
        bits, sec = _FIXED[kind]
        return KeyInfo(False, "", "", bits, sec)
    return KeyInfo(encrypted=False)


def _bn_security_bits(bits: int, qbits: int = -1) -> int:
    """OpenSSL BN_security_bits (NIST SP800-57 table for finite-field and RSA sizes)."""
    if bits >= 15360:
        sec = 256
    elif bits >= 7680:
        sec = 192
    elif bits >= 3072:
        sec = 128
    elif bits >= 2048:
        sec = 112
    elif bits >= 1024:
        sec = 80
    else:
        return 0
    if qbits == -1:
        return sec
    return min(sec, qbits // 2) if qbits >= 160 else 0


def _rsa(n: int) -> KeyInfo:
    bits = n.bit_length()
    return KeyInfo(False, "rsa", "", bits, _bn_security_bits(bits))


def _dsa(p: int, q: int) -> KeyInfo:
    bits = p.bit_length()
    return KeyInfo(False, "dsa", "", bits, _bn_security_bits(bits, q.bit_length()))


def _ec(curve_oid: str) -> KeyInfo:
    name, bits = _CURVES.get(curve_oid, ("", -1))
    if bits < 0:
        return KeyInfo(encrypted=False, key_type="ec")
    # OpenSSL ec security bits: from the group order size, capped by the NIST levels.
    sec = 256 if bits >= 512 else 192 if bits >= 384 else 128 if bits >= 256 else 112 if bits >= 224 \
        else 80 if bits >= 160 else bits // 2
    return KeyInfo(False, "ec", name, bits, sec)


# --- OpenSSH container --------------------------------------------------------------------------------
def _openssh(body: bytes) -> KeyInfo:
    blob = _b64(body) or b""
    info = KeyInfo(encrypted=True)
    if not blob.startswith(_OPENSSH_MAGIC):
        return info
    try:
        pos = len(_OPENSSH_MAGIC)
        cipher, pos = _sshstr(blob, pos)
        info.encrypted = cipher != b"none"
        _kdf, pos = _sshstr(blob, pos)
        _kdfopts, pos = _sshstr(blob, pos)
        pos += 4  # number of keys
        pub, pos = _sshstr(blob, pos)
        keytype, p = _sshstr(pub, 0)
    except ValueError:
        return info
    kt = keytype.decode("ascii", "replace")
    try:
        if kt == "ssh-ed25519":
            info.key_type, info.key_length, info.key_security_bits = "ed25519", 256, 128
        elif kt == "ssh-rsa":
            _e, p = _sshstr(pub, p)
            n, _ = _sshstr(pub, p)
            bits = _uint(n).bit_length()
            info.key_type, info.key_length = "rsa", bits
            info.key_security_bits = _bn_security_bits(bits) or 64  # osquery's floor for tiny RSA keys
        elif kt == "ssh-dss":
            prime, _ = _sshstr(pub, p)
            info.key_type, info.key_length, info.key_security_bits = "dsa", _uint(prime).bit_length(), 80
        elif kt.startswith("ecdsa-sha2-nistp") and kt[16:] in ("256", "384", "521"):
            bits = int(kt[16:])
            info.key_type, info.key_length = f"ecdsa-p{bits}", bits
            info.key_security_bits = {256: 128, 384: 192, 521: 256}[bits]
        else:
            info.key_type = kt
    except ValueError:
        info.key_type = info.key_type or kt
    return info


def _sshstr(buf: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(buf):
        raise ValueError("truncated")
    n = int.from_bytes(buf[pos:pos + 4], "big")
    end = pos + 4 + n
    if end > len(buf):
        raise ValueError("truncated")
    return buf[pos + 4:end], end
