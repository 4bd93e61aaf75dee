"""systemd_units: units from the unit files on systemd's search path, with runtime state when systemd runs."""

from __future__ import annotations

from collections.abc import Iterator

from collector.table import BIGINT, TEXT, Context, Row, col, table
from collector.tables import _systemd

SPEC = table(
    'systemd_units',
    'Track systemd units.',
    columns=[
        col('id', TEXT, 'Unique unit identifier'),
        col('description', TEXT, 'Unit description'),
        col('load_state', TEXT, 'Reflects whether the unit definition was properly loaded'),
        col('active_state', TEXT, 'The high-level unit activation state, i.e. generalization of SUB'),
        col('sub_state', TEXT, 'The low-level unit activation state, values depend on unit type'),
        col('unit_file_state', TEXT, 'Whether the unit file is enabled, e.g. `enabled`, `masked`, `disabled`, etc'),
        col('following', TEXT, 'The name of another unit that this unit follows in state'),
        col('object_path', TEXT, 'The object path for this unit'),
        col('job_id', BIGINT, 'Next queued job id'),
        col('job_type', TEXT, 'Job type'),
        col('job_path', TEXT, 'The object path for the job'),
        col('fragment_path', TEXT, 'The unit file path this unit was read from, if there is any'),
        col('user', TEXT, 'The configured user, if any'),
        col('source_path', TEXT, 'Path to the (possibly generated) unit configuration file'),
    ],
    platforms=('linux',),
)

_RUNTIME = ("active_state", "sub_state", "following", "job_id", "job_type", "job_path")


def object_path(unit_id: str) -> str:
    """systemd's D-Bus object path: bytes outside [A-Za-z0-9] become _xx (lower-case hex)."""
    out = []
    for b in unit_id.encode():
        c = chr(b)
        out.append(c if c.isascii() and c.isalnum() else f"_{b:02x}")
    return "/org/freedesktop/systemd1/unit/" + "".join(out)


def generate(ctx: Context) -> Iterator[Row]:
    units = _systemd.discover(ctx.root)
    states = None
    if _systemd.systemd_running(ctx.root) and any(ctx.used(c) for c in ("load_state", "active_state", "sub_state")):
        states = _systemd.runtime_states()
    n = 0
    for uid in sorted(units):
        u = units[uid]
        state = states.get(uid) if states else None
        row: Row = {
            "id": uid,
            "description": u.get("Unit", "Description") or "",
            "load_state": state[0] if state else ("masked" if u.masked else "loaded"),
            "active_state": state[1] if state else None,
            "sub_state": state[2] if state else None,
            "unit_file_state": u.file_state,
            "object_path": object_path(uid),
            "fragment_path": "/dev/null" if u.masked else u.host_path,
            "user": u.get("Service", "User") or "",
            "source_path": u.get("Unit", "SourcePath") or "",
        }
        if state is None:
            n += 1
        yield row
    if n:
        reason = ("systemd is not PID 1 here: runtime state exists only inside a running systemd"
                  if not _systemd.systemd_running(ctx.root) else "systemctl gave no state for these units")
        ctx.missing(list(_RUNTIME), reason, None, rows=n)
