"""crontab: one row per job line of /etc/crontab, /etc/cron.d/* and the user crontabs.

Files read, as osquery does on Linux: /etc/crontab, then the regular files of /etc/cron.d/,
/var/spool/cron/ (Red Hat user crontabs) and /var/spool/cron/crontabs/ (Debian). Lines are trimmed,
comments and blank lines skipped; an `@event` line fills `event` and the command; a line without a sixth
field (an environment assignment such as `SHELL=/bin/sh`) is not a job. System crontabs keep the user
field at the start of `command`, as in osquery. The command keeps its original spacing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from collector.table import INTEGER, TEXT, Context, Row, col, table
from collector.tables import _glob

SPEC = table(
    'crontab',
    'Line parsed values from system and user cron/tab.',
    columns=[
        col('event', TEXT, 'The job @event name (rare)'),
        col('minute', TEXT, 'The exact minute for the job'),
        col('hour', TEXT, 'The hour of the day for the job'),
        col('day_of_month', TEXT, 'The day of the month for the job'),
        col('month', TEXT, 'The month of the year for the job'),
        col('day_of_week', TEXT, 'The day of the week for the job'),
        col('command', TEXT, 'Raw command string'),
        col('path', TEXT, 'File parsed'),
        col('pid_with_namespace', INTEGER, 'Pids that contain a namespace', hidden=True, additional=True),
    ],
    cacheable=True,
    platforms=('darwin', 'linux'),
    requires={"CAP_SYS_PTRACE": ["pid_with_namespace"]},
)

SYSTEM_CRONTAB = "/etc/crontab"
CRON_DIRS = ("/etc/cron.d/", "/var/spool/cron/", "/var/spool/cron/crontabs/")
_FIELD = re.compile(r"[^ \t]+")
_TIMES = ("minute", "hour", "day_of_month", "month", "day_of_week")


def generate(ctx: Context) -> Iterator[Row]:
    for pid_ns, _ns_id, fs in _glob.namespaces(ctx):
        files = [SYSTEM_CRONTAB]
        for d in CRON_DIRS:
            try:
                with os.scandir(fs.real(d)) as it:
                    names = sorted(e.name for e in it if e.is_file())
            except OSError:
                continue
            files.extend(d + n for n in names)
        for path in files:
            for row in parse(fs.real(path), path):
                row["pid_with_namespace"] = pid_ns
                yield row


def parse(real: str, path: str) -> Iterator[Row]:
    try:
        with open(real, "rb") as f:
            text = f.read(4 << 20).decode("utf-8", "replace")
    except OSError:
        return
    for line in text.split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        row = parse_line(line)
        if row is not None:
            row["path"] = path
            yield row


def parse_line(line: str) -> Row | None:
    fields = list(_FIELD.finditer(line))
    if not fields:
        return None
    row: Row = {}
    if fields[0].group().startswith("@"):
        row["event"] = fields[0].group()
        rest = fields[1:]
    else:
        for name, m in zip(_TIMES, fields):
            row[name] = m.group()
        rest = fields[5:]
    if not rest:
        return None  # not a job: an assignment or a truncated line
    row["command"] = line[rest[0].start():]
    return row
