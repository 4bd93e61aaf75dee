"""file_events: file integrity monitoring events for the config's `file_paths` (evented).

The daemon's FIM publisher (collector/publishers/fim.py, watchfiles) buffers the rows in the event store;
this table reads them back after osquery's query-time expiry. In the shell and one-shot queries no
publisher runs, so the table is empty and says why (osquery's shell runs with events disabled).
"""

from __future__ import annotations

from collections.abc import Iterator

from collector.tables._events import buffered
from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'file_events',
    'Track time/action changes to files specified in configuration data.',
    columns=[
        col('target_path', TEXT, 'The path associated with the event'),
        col('category', TEXT, 'The category of the file defined in the config'),
        col('action', TEXT, 'Change action (UPDATE, REMOVE, etc)'),
        col('transaction_id', BIGINT, 'ID used during bulk update'),
        col('inode', BIGINT, 'Filesystem inode number'),
        col('uid', BIGINT, 'Owning user ID'),
        col('gid', BIGINT, 'Owning group ID'),
        col('mode', TEXT, 'Permission bits'),
        col('size', BIGINT, 'Size of file in bytes'),
        col('atime', BIGINT, 'Last access time'),
        col('mtime', BIGINT, 'Last modification time'),
        col('ctime', BIGINT, 'Last status change time'),
        col('md5', TEXT, 'The MD5 of the file after change', collate='nocase'),
        col('sha1', TEXT, 'The SHA1 of the file after change', collate='nocase'),
        col('sha256', TEXT, 'The SHA256 of the file after change', collate='nocase'),
        col('hashed', INTEGER, '1 if the file was hashed, 0 if not, -1 if hashing failed'),
        col('time', BIGINT, 'Time of file event', additional=True),
        col('eid', TEXT, 'Event ID', hidden=True),
    ],
    evented=True,
    platforms=('darwin', 'linux'),
)


def generate(ctx: Context) -> Iterator[Row]:
    yield from buffered(ctx)
