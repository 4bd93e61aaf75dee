"""kernel_keys: the keys and keyrings the kernel lists in /proc/keys (those this reader may view)."""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import BIGINT, TEXT, Context, Row, col, table
from collector.tables import _proc

SPEC = table(
    'kernel_keys',
    'List of security data, authentication keys and encryption keys.',
    columns=[
        col('serial_number', TEXT, 'The serial key of the key.'),
        col('flags', TEXT, 'A set of flags describing the state of the key.'),
        col('usage', BIGINT, 'the number of threads and open file references that refer to this key.'),
        col('timeout', TEXT, 'The amount of time until the key will expire, expressed in human-readable form. The string perm here means that the key is permanent (no timeout).  The string expd means that the key has already expired.'),
        col('permissions', TEXT, 'The key permissions, expressed as four hexadecimal bytes containing, from left to right, the possessor, user, group, and other permissions.'),
        col('uid', BIGINT, 'The user ID of the key owner.'),
        col('gid', BIGINT, 'The group ID of the key.'),
        col('type', TEXT, 'The key type.'),
        col('description', TEXT, 'The key description.'),
    ],
    platforms=('linux',),
    examples=('select * from kernel_keys',),
)



def parse(text: str) -> Iterator[Row]:
    for line in text.splitlines():
        # serial flags usage timeout perm uid gid type description[: summary]
        f = line.split(None, 8)
        if len(f) < 9:
            continue
        try:
            usage, uid, gid = int(f[2]), int(f[5]), int(f[6])
        except ValueError:
            continue
        yield {
            "serial_number": f[0],
            "flags": f[1],
            "usage": usage,
            "timeout": f[3],
            "permissions": f[4],
            "uid": uid,
            "gid": gid,
            "type": f[7],
            # osquery joins the description and the type's summary without the space ("_ses:1").
            "description": f[8].strip().replace(": ", ":", 1),
        }


def generate(ctx: Context) -> Iterator[Row]:
    try:
        text = _proc.read_text(ctx.path("/proc/keys"))
    except OSError:
        return  # kernel built without CONFIG_KEYS' /proc/keys: no keys to list
    yield from parse(text)
