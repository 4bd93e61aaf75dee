"""authorized_keys, known_hosts, user_ssh_keys, ssh_configs: the ~/.ssh files of the users a query names.

user_data tables (osquery semantics): the current user's files unless uid is constrained or the table is
joined with users, which feeds uid per row. Home directories are resolved under the host root.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator

from collector.tables import _accounts as acc
from collector.tables._sshkey import parse_private_key
from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table

AUTHORIZED_KEYS_SPEC = table(
    'authorized_keys',
    'A line-delimited authorized_keys table.',
    columns=[
        col('uid', BIGINT, 'The local owner of authorized_keys file', additional=True),
        col('algorithm', TEXT, 'Key type'),
        col('key', TEXT, 'Key encoded as base64'),
        col('options', TEXT, 'Optional list of login options'),
        col('comment', TEXT, 'Optional comment'),
        col('key_file', TEXT, 'Path to the authorized_keys file'),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
    ],
    generator='gen_authorized_keys',
    user_data=True,
    platforms=('darwin', 'linux'),
    examples=('select * from users join authorized_keys using (uid)',),
    requires={"CAP_DAC_READ_SEARCH": ["*"], "CAP_SYS_PTRACE": ["*"]},
)

KNOWN_HOSTS_SPEC = table(
    'known_hosts',
    'A line-delimited known_hosts table.',
    columns=[
        col('uid', BIGINT, 'The local user that owns the known_hosts file', index=True, optimized=True),
        col('key', TEXT, 'parsed authorized keys line'),
        col('key_file', TEXT, 'Path to known_hosts file'),
    ],
    generator='gen_known_hosts',
    user_data=True,
    platforms=('darwin', 'linux'),
    examples=('select * from users join known_hosts using (uid)',),
    requires={"CAP_DAC_READ_SEARCH": ["*"]},
)

USER_SSH_KEYS_SPEC = table(
    'user_ssh_keys',
    'Returns the private keys in the users ~/.ssh directory and whether or not they are encrypted.',
    columns=[
        col('uid', BIGINT, 'The local user that owns the key file', additional=True, optimized=True),
        col('path', TEXT, 'Path to key file', index=True),
        col('encrypted', INTEGER, '1 if key is encrypted, 0 otherwise'),
        col('key_type', TEXT, 'The type of the private key. One of [rsa, dsa, dh, ec, hmac, cmac], or the empty string.'),
        col('key_group_name', TEXT, 'The group of the private key. Supported for a subset of key_types implemented by OpenSSL'),
        col('key_length', INTEGER, 'The cryptographic length of the cryptosystem to which the private key belongs, in bits. Definition of cryptographic length is specific to cryptosystem. -1 if unavailable'),
        col('key_security_bits', INTEGER, 'The number of security bits of the private key, bits of security as defined in NIST SP800-57. -1 if unavailable'),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
    ],
    generator='gen_user_ssh_keys',
    user_data=True,
    platforms=('darwin', 'linux', 'windows'),
    examples=('select * from users join user_ssh_keys using (uid) where encrypted = 0',),
    requires={"CAP_DAC_READ_SEARCH": ["*"], "CAP_SYS_PTRACE": ["*"]},
)

SSH_CONFIGS_SPEC = table(
    'ssh_configs',
    'A table of parsed ssh_configs.',
    columns=[
        col('uid', BIGINT, 'The local owner of the ssh_config file', additional=True, optimized=True),
        col('block', TEXT, 'The host or match block'),
        col('option', TEXT, 'The option and value'),
        col('ssh_config_file', TEXT, 'Path to the ssh_config file'),
    ],
    generator='gen_ssh_configs',
    user_data=True,
    platforms=('darwin', 'linux', 'windows'),
    examples=('select * from users join ssh_configs using (uid)',),
    requires={"CAP_DAC_READ_SEARCH": ["*"]},
)

SPECS = [AUTHORIZED_KEYS_SPEC, KNOWN_HOSTS_SPEC, USER_SSH_KEYS_SPEC, SSH_CONFIGS_SPEC]

_AUTHORIZED = (".ssh/authorized_keys", ".ssh/authorized_keys2")
# Key types sshd accepts in authorized_keys: plain, security-key (sk-) and certificate (-cert-v01) forms.
_KEY_TYPE = re.compile(r"^(?:ssh-(?:rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp(?:256|384|521)|"
                       r"sk-(?:ecdsa-sha2-nistp256|ssh-ed25519)(?:-cert-v01)?@openssh\.com|"
                       r"(?:ssh-(?:rsa|dss|ed25519|ed448)|ecdsa-sha2-nistp(?:256|384|521))-cert-v01@openssh\.com)$")
_WS = " \t"
_KEY_FILE_MAX = 1 << 20  # private keys are a few KiB; bigger files in ~/.ssh are not keys


# --- authorized_keys -----------------------------------------------------------------------------------
def parse_authorized_line(line: str) -> Row | None:
    """options/algorithm/key/comment of one authorized_keys line (sshd(8) AUTHORIZED_KEYS FILE FORMAT)."""
    line = line.strip(_WS + "\r")
    if not line or line.startswith("#"):
        return None
    first, rest = _token(line)
    options = None
    if not _KEY_TYPE.match(first):
        options, rest = _options(line)
        first, rest = _token(rest)
        if not _KEY_TYPE.match(first):
            # No key on the line; osquery still reports z/OS key-ring references (options only).
            if options and any(o.startswith("zos-key-ring-label=") for o in options.split(",")):
                return {"options": options}
            return None
    key, rest = _token(rest)
    if not key:
        return None
    row: Row = {"algorithm": first, "key": key, "options": options}
    if rest:
        row["comment"] = rest
    return row


def _token(s: str) -> tuple[str, str]:
    s = s.lstrip(_WS)
    for i, ch in enumerate(s):
        if ch in _WS:
            return s[:i], s[i:].lstrip(_WS)
    return s, ""


def _options(s: str) -> tuple[str, str]:
    """The options field: up to the first whitespace outside double quotes (quotes may hold \\")."""
    quoted = escaped = False
    for i, ch in enumerate(s):
        if escaped:
            escaped = False
        elif ch == "\\" and quoted:
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch in _WS and not quoted:
            return s[:i], s[i:]
    return s, ""


def gen_authorized_keys(ctx: Context) -> Iterator[Row]:
    bad = acc.Unreadable()
    for pid in acc.ns_pids(ctx):
        for user in acc.users_in(ctx, pid):
            for rel in _AUTHORIZED:
                host = acc.home_file(user.pw_dir, rel)
                for line in acc.read_lines(acc.ns_path(ctx, pid, host), bad):
                    row = parse_authorized_line(line)
                    if row is not None:
                        row.update(uid=user.pw_uid, key_file=host, pid_with_namespace=pid)
                        yield row
    bad.report(ctx, "authorized_keys")


# --- known_hosts ---------------------------------------------------------------------------------------
def gen_known_hosts(ctx: Context) -> Iterator[Row]:
    bad = acc.Unreadable()
    for user in ctx.users():
        host = acc.home_file(user.pw_dir, ".ssh/known_hosts")
        for line in acc.read_lines(ctx.path(host), bad):
            if line and not line.startswith("#"):
                yield {"uid": user.pw_uid, "key": line, "key_file": host}
    bad.report(ctx, "known_hosts")


# --- user_ssh_keys -------------------------------------------------------------------------------------
def gen_user_ssh_keys(ctx: Context) -> Iterator[Row]:
    bad = acc.Unreadable()
    paths = ctx.eq("path")
    for pid in acc.ns_pids(ctx):
        for user in acc.users_in(ctx, pid):
            ssh_dir = acc.home_file(user.pw_dir, ".ssh")
            real_dir = acc.ns_path(ctx, pid, ssh_dir)
            try:
                names = sorted(os.listdir(real_dir))
            except OSError as e:
                bad.add(e)
                continue
            for name in names:
                host = f"{ssh_dir}/{name}"
                if paths is not None and host not in paths:
                    continue
                data = _read_small(os.path.join(real_dir, name), bad)
                info = parse_private_key(data) if data else None
                if info is None:
                    continue
                yield {
                    "uid": user.pw_uid,
                    "path": host,
                    "encrypted": int(info.encrypted),
                    "key_type": info.key_type,
                    "key_group_name": info.key_group_name,
                    "key_length": info.key_length,
                    "key_security_bits": info.key_security_bits,
                    "pid_with_namespace": pid,
                }
    bad.report(ctx, "~/.ssh")


def _read_small(real: str, bad: acc.Unreadable) -> bytes | None:
    # O_NONBLOCK + S_ISREG: a FIFO or device dropped into ~/.ssh must not hang or feed the scan.
    try:
        fd = os.open(real, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as e:
        bad.add(e)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _KEY_FILE_MAX:
            return None
        return os.read(fd, _KEY_FILE_MAX)
    except OSError as e:
        bad.add(e)
        return None
    finally:
        os.close(fd)


# --- ssh_configs ---------------------------------------------------------------------------------------
SYSTEM_SSH_CONFIG = "/etc/ssh/ssh_config"


def parse_ssh_config(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(block, option) pairs, lowercased as osquery reports them; a block runs to the next Host/Match."""
    block = ""
    for raw in lines:
        line = raw.strip().lower()
        if not line or line.startswith("#"):
            continue
        keyword = re.split(r"[\s=]", line, maxsplit=1)[0]
        if keyword in ("host", "match") and len(line) > len(keyword):
            block = line
        else:
            yield block, line


def gen_ssh_configs(ctx: Context) -> Iterator[Row]:
    bad = acc.Unreadable()
    for user in ctx.users():
        host = acc.home_file(user.pw_dir, ".ssh/config")
        for block, option in parse_ssh_config(acc.read_lines(ctx.path(host), bad)):
            yield {"uid": user.pw_uid, "block": block, "option": option, "ssh_config_file": host}
    uids = ctx.eq("uid")
    # The system-wide file belongs to uid 0 (osquery); skip it when the query can only keep other uids.
    if uids is None or any(str(u) == "0" for u in uids):
        for block, option in parse_ssh_config(acc.read_lines(ctx.path(SYSTEM_SSH_CONFIG), bad)):
            yield {"uid": 0, "block": block, "option": option, "ssh_config_file": SYSTEM_SSH_CONFIG}
    bad.report(ctx, "ssh_config")
