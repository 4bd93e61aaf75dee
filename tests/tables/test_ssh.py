"""authorized_keys, known_hosts, user_ssh_keys, ssh_configs over the fixture homes (user_data semantics)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from collector.tables._sshkey import parse_private_key
from tests.tables.fsutil import text_lines


@pytest.fixture
def acct(engine_at, fixtures):
    return engine_at(fixtures / "accounts")


def test_authorized_keys_fields(acct, fixtures):
    rows = acct.query("SELECT * FROM authorized_keys WHERE uid = 1000").dicts()
    by_alg = {r["algorithm"]: r for r in rows}
    pub = (fixtures / "accounts/home/alice/.ssh/id_ed25519.pub").read_text().split()
    ed = by_alg["ssh-ed25519"]
    assert (ed["key"], ed["comment"], ed["options"]) == (pub[1], "alice@test", None)
    assert ed["key_file"] == "/home/alice/.ssh/authorized_keys"
    rsa = by_alg["ssh-rsa"]
    # quoted option values may hold spaces and commas; the comment keeps its inner spaces
    assert rsa["options"] == 'from="10.0.0.0/8,192.168.1.1",command="echo hello world",no-pty'
    assert rsa["comment"] == "deploy key for ci"
    assert by_alg["sk-ssh-ed25519@openssh.com"]["comment"] is None
    assert by_alg["ecdsa-sha2-nistp384"]["key_file"] == "/home/alice/.ssh/authorized_keys2"
    zos = by_alg[None]
    assert zos["options"].startswith("zos-key-ring-label=") and zos["key"] is None
    assert len(rows) == 5  # comments, blank and garbage lines yield nothing


def test_user_data_default_is_current_user(acct):
    # Runs as root here: without a uid constraint only root's (absent) files are read.
    assert acct.query("SELECT * FROM authorized_keys").rows == []
    assert acct.query("SELECT * FROM known_hosts").rows == []


def test_join_users_reads_every_home(acct):
    rows = acct.query("SELECT u.username, k.algorithm FROM users u JOIN authorized_keys k USING (uid)").rows
    assert {r[0] for r in rows} == {"alice"} and len(rows) == 5
    rows = acct.query("SELECT u.username, count(*) FROM users u JOIN user_ssh_keys k USING (uid) "
                      "GROUP BY 1 ORDER BY 1").rows
    assert rows == [("alice", 8), ("bob", 2)]


def test_known_hosts(acct):
    rows = acct.query("SELECT uid, key, key_file FROM known_hosts WHERE uid = 1000").rows
    assert len(rows) == 2 and all(r[2] == "/home/alice/.ssh/known_hosts" for r in rows)
    assert rows[0][1].startswith("github.com ssh-ed25519 ")


EXPECTED_KEYS = {
    # path: (encrypted, key_type, key_group_name, key_length, key_security_bits)
    "/home/alice/.ssh/id_ed25519": (0, "ed25519", "", 256, 128),
    "/home/alice/.ssh/id_rsa3072": (0, "rsa", "", 3072, 128),
    "/home/alice/.ssh/id_ecdsa": (1, "ecdsa-p384", "", 384, 192),  # OpenSSH, passphrase-protected
    "/home/alice/.ssh/id_rsa": (1, "", "", -1, -1),  # PEM with Proc-Type: 4,ENCRYPTED
    "/home/alice/.ssh/deploy_p256.pem": (0, "ec", "prime256v1", 256, 128),
    "/home/alice/.ssh/legacy_p521.pem": (0, "ec", "secp521r1", 521, 256),
    "/home/alice/.ssh/ed_pkcs8.pem": (0, "", "", 253, 128),
    "/home/alice/.ssh/id_dsa": (0, "dsa", "", 2048, 112),
    "/home/bob/.ssh/id_rsa": (0, "rsa", "", 2048, 112),
    "/home/bob/.ssh/enc_pkcs8.pem": (1, "", "", -1, -1),
}


def test_user_ssh_keys(acct):
    rows = acct.query("SELECT path, encrypted, key_type, key_group_name, key_length, key_security_bits "
                      "FROM user_ssh_keys WHERE uid IN (1000, 1001)").rows
    assert {r[0]: tuple(r[1:]) for r in rows} == EXPECTED_KEYS  # .pub, config, known_hosts are not keys
    assert acct.query("SELECT path FROM user_ssh_keys WHERE uid = 1000 AND path = "
                      "'/home/alice/.ssh/id_dsa'").rows == [("/home/alice/.ssh/id_dsa",)]


@pytest.mark.skipif(not shutil.which("ssh-keygen"), reason="ssh-keygen not installed")
def test_user_ssh_keys_vs_ssh_keygen(fixtures, tmp_path):
    # ssh-keygen -l reads the unencrypted keys independently: bit size and family must agree.
    family = {"ED25519": ("ed25519",), "RSA": ("rsa",), "ECDSA": ("ec", "ecdsa-p256", "ecdsa-p384", "ecdsa-p521")}
    checked = 0
    for i, (path, (enc, ktype, _g, bits, _s)) in enumerate(EXPECTED_KEYS.items()):
        real = fixtures / "accounts" / path.lstrip("/")
        # git checks files out 0644 and ssh-keygen refuses private keys readable by others: use a 0600 copy
        copy = tmp_path / f"key{i}"
        copy.write_bytes(real.read_bytes())
        copy.chmod(0o600)
        out = subprocess.run(["ssh-keygen", "-l", "-f", str(copy)], capture_output=True, text=True)
        if enc or out.returncode != 0:
            continue  # encrypted, or a PEM flavour this OpenSSH cannot fingerprint
        m = re.match(r"(\d+) \S+ .* \((\w+)\)$", out.stdout.strip())
        assert m, out.stdout
        info = parse_private_key(real.read_bytes())
        assert info.key_length == int(m.group(1)) == bits, path
        assert info.key_type in family[m.group(2)], path
        checked += 1
    assert checked >= 4


def test_user_ssh_keys_fresh_key(tmp_path):
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen not installed")
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2560", "-N", "", "-f", str(key)], check=True)
    info = parse_private_key(key.read_bytes())
    assert (info.encrypted, info.key_type, info.key_length, info.key_security_bits) == (False, "rsa", 2560, 112)
    subprocess.run(["ssh-keygen", "-q", "-p", "-N", "passphrase1", "-P", "", "-f", str(key)], check=True)
    assert parse_private_key(key.read_bytes()).encrypted


def test_ssh_configs(acct):
    rows = acct.query("SELECT uid, block, option, ssh_config_file FROM ssh_configs WHERE uid = 1000").rows
    assert rows == [
        (1000, "host github.com", "user git", "/home/alice/.ssh/config"),
        (1000, "host github.com", "identityfile ~/.ssh/id_ed25519", "/home/alice/.ssh/config"),
        (1000, 'match host *.corp exec "true"', "forwardagent no", "/home/alice/.ssh/config"),
        (1000, "host=jump", "proxyjump bastion", "/home/alice/.ssh/config"),
    ]
    system = acct.query("SELECT block, option FROM ssh_configs WHERE ssh_config_file = '/etc/ssh/ssh_config'").rows
    assert system == [("", "include /etc/ssh/ssh_config.d/*.conf"), ("host *", "sendenv lang lc_*"),
                      ("host *", "hashknownhosts yes")]


def test_live_ssh_config_matches_file(engine):
    try:
        lines = text_lines("/etc/ssh/ssh_config")
    except OSError:
        lines = []
    want = [ln.strip().lower() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    want = [w for w in want if not re.match(r"(host|match)[\s=]", w)]
    got = engine.query("SELECT option FROM ssh_configs WHERE ssh_config_file = '/etc/ssh/ssh_config'").rows
    assert [g[0] for g in got] == want
