"""time: the current date and time in UTC (module not named time.py so it never shadows the stdlib module)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from collector.table import BIGINT, INTEGER, TEXT, Context, Row, col, table

SPEC = table(
    'time',
    'Track current date and time in UTC.',
    columns=[
        col('weekday', TEXT, 'Current weekday in UTC'),
        col('year', INTEGER, 'Current year in UTC'),
        col('month', INTEGER, 'Current month in UTC'),
        col('day', INTEGER, 'Current day in UTC'),
        col('hour', INTEGER, 'Current hour in UTC'),
        col('minutes', INTEGER, 'Current minutes in UTC'),
        col('seconds', INTEGER, 'Current seconds in UTC'),
        col('timezone', TEXT, 'Timezone for reported time (hardcoded to UTC)'),
        col('local_timezone', TEXT, 'Current local timezone in of the system'),
        col('unix_time', INTEGER, 'Current UNIX time in UTC'),
        col('timestamp', TEXT, 'Current timestamp (log format) in UTC'),
        col('datetime', TEXT, 'Current date and time (ISO format) in UTC'),
        col('iso_8601', TEXT, 'Current time (ISO format) in UTC'),
        col('win_timestamp', BIGINT, 'Timestamp value in 100 nanosecond units', platforms=('windows',)),
    ],
    utility=True,
    platforms=('darwin', 'linux', 'windows'),
)


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def generate(ctx: Context) -> Iterator[Row]:
    """One row of "now" in UTC, from a single clock reading so every column agrees.

    Names are C-locale English whatever the host locale (osquery runs in the C locale).
    """
    now = int(time.time())
    g = time.gmtime(now)
    iso = f"{g.tm_year:04d}-{g.tm_mon:02d}-{g.tm_mday:02d}T{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}Z"
    # asctime(3) layout with the day padded by a space, then " UTC": "Mon Jan  1 00:00:00 2024 UTC".
    ascii_time = (f"{_DAYS[g.tm_wday]} {_MONTHS[g.tm_mon - 1]} {g.tm_mday:2d} "
                  f"{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d} {g.tm_year} UTC")
    local_tz = time.localtime(now).tm_zone or "UTC"
    yield {
        "weekday": _WEEKDAYS[g.tm_wday],
        "year": g.tm_year,
        "month": g.tm_mon,
        "day": g.tm_mday,
        "hour": g.tm_hour,
        "minutes": g.tm_min,
        "seconds": g.tm_sec,
        "timezone": "UTC",
        "local_timezone": local_tz,
        "unix_time": now,
        "timestamp": ascii_time,
        "datetime": iso,
        "iso_8601": iso,
    }
