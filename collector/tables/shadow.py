"""shadow: /etc/shadow account ageing and password status. The hash itself is never emitted.

Empty numeric fields read -1, which is what osquery returns through getspent(3): glibc's "not set" value
(shadow(5): an empty field disables that feature), not an unreadable value.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator

from collector.table import BIGINT, TEXT, Context, Row, col, table

SPEC = table(
    'shadow',
    'Local system users encrypted passwords and related information. Please note, that you usually need superuser rights to access `/etc/shadow`.',
    columns=[
        col('password_status', TEXT, 'Password status'),
        col('hash_alg', TEXT, 'Password hashing algorithm'),
        col('last_change', BIGINT, 'Date of last password change (starting from UNIX epoch date)'),
        col('min', BIGINT, 'Minimal number of days between password changes'),
        col('max', BIGINT, 'Maximum number of days between password changes'),
        col('warning', BIGINT, 'Number of days before password expires to warn user about it'),
        col('inactive', BIGINT, 'Number of days after password expires until account is blocked'),
        col('expire', BIGINT, 'Number of days since UNIX epoch date until account is disabled'),
        col('flag', BIGINT, 'Reserved'),
        col('username', TEXT, 'Username', index=True, optimized=True),
    ],
    platforms=('linux',),
    examples=("select * from shadow where username = 'root'",),
    requires={"CAP_DAC_READ_SEARCH": ["*"]},
)


_HASH_ALG = re.compile(r"^\$(\w+)\$")
_NUMERIC = ("last_change", "min", "max", "warning", "inactive", "expire", "flag")


def password_status(field: str) -> str:
    """osquery's reading of the password field: not_set, locked, empty or active."""
    if field == "!!":
        return "not_set"
    if field[:1] in ("!", "*", "x"):
        return "locked"
    if not field:
        return "empty"
    return "active"


def _num(v: str) -> int:
    try:
        return int(v)
    except ValueError:
        return -1


def generate(ctx: Context) -> Iterator[Row]:
    names = ctx.eq("username")
    try:
        with open(ctx.path("/etc/shadow"), encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return
    except OSError as e:
        cap = "CAP_DAC_READ_SEARCH" if e.errno in (errno.EACCES, errno.EPERM) else None
        ctx.missing([], f"/etc/shadow: {e.strerror}", cap)
        return
    for line in text.splitlines():
        if not line or line.startswith(("#", "+", "-")):
            continue
        parts = line.split(":")
        if names is not None and parts[0] not in names:
            continue
        parts += [""] * (9 - len(parts))
        hashed = parts[1]
        m = _HASH_ALG.match(hashed)
        row: Row = {"username": parts[0], "password_status": password_status(hashed),
                    "hash_alg": m.group(1) if m else None}
        for name, value in zip(_NUMERIC, parts[2:9]):
            row[name] = _num(value)
        yield row
