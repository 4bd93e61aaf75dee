"""startup_items (Linux): XDG autostart entries, autostart scripts, /etc/init.d scripts and systemd units.

osquery's Linux sources: ~/.config/autostart/*.desktop and ~/.config/autostart-scripts/* of every home,
/etc/init.d/*, /etc/xdg/autostart/*.desktop, and systemd's units (via D-Bus). Quarry reads the systemd
part from the unit files (collector.tables._systemd) and, where systemd is not running, lists the units
that start at boot (enabled), since no runtime state exists to report.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator

from collector.table import TEXT, Context, Row, col, table
from collector.tables import _systemd
from collector.tables._passwd import read_passwd

SPEC = table(
    'startup_items',
    'Applications and binaries set as startup items.',
    columns=[
        col('name', TEXT, 'Name of startup item'),
        col('path', TEXT, 'Path of startup item'),
        col('args', TEXT, 'Arguments provided to startup executable'),
        col('type', TEXT, 'Type of startup item. On macOS this can be app, agent (LaunchAgent), daemon (LaunchDaemon), login item, or user item.'),
        col('source', TEXT, 'Directory containing startup item (on macOS, the subsystem providing it)'),
        col('status', TEXT, 'Startup status. On Linux: enabled or disabled. On macOS: Combination of enabled, allowed, notified, and hidden. Apple does not seem to document these status values, but allowed seems to indicate whether it is enabled in System Settings.'),
        col('username', TEXT, 'The user associated with the startup item'),
    ],
    cacheable=True,
    platforms=('darwin', 'linux', 'windows'),
)


def parse_desktop(text: str) -> dict[str, str]:
    """Keys of the [Desktop Entry] group (unlocalized ones only)."""
    out: dict[str, str] = {}
    group = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            group = line
            continue
        key, sep, value = line.partition("=")
        if sep and group == "[Desktop Entry]" and "[" not in key:
            out[key.strip()] = value.strip()
    return out


def split_exec(cmd: str) -> tuple[str, str]:
    """(program, arguments) of a desktop Exec line; field codes (%u, %F...) stay in the arguments."""
    try:
        parts = shlex.split(cmd)
    except ValueError:  # unbalanced quotes: fall back to whitespace
        parts = cmd.split()
    if not parts:
        return "", ""
    return parts[0], " ".join(parts[1:])


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def desktop_items(ctx: Context, directory: str, username: str | None) -> Iterator[Row]:
    real = ctx.path(directory)
    for name in _listdir(real):
        full = os.path.join(real, name)
        if not name.endswith(".desktop") or not os.path.isfile(full):
            continue
        try:
            with open(full, encoding="utf-8", errors="replace") as f:
                entry = parse_desktop(f.read())
        except OSError:
            continue
        path, args = split_exec(entry.get("Exec", ""))
        disabled = (entry.get("Hidden", "").lower() == "true"
                    or entry.get("X-GNOME-Autostart-enabled", "").lower() == "false")
        yield {"name": entry.get("Name", name), "path": path, "args": args, "type": "Startup Item",
               "source": directory, "status": "disabled" if disabled else "enabled", "username": username}


def rc_started(ctx: Context) -> set[str]:
    """init.d scripts some boot runlevel starts: targets of /etc/rc{S,2-5}.d/S* links."""
    names: set[str] = set()
    for level in ("S", "2", "3", "4", "5"):
        d = ctx.path(f"/etc/rc{level}.d")
        for link in _listdir(d):
            if link.startswith("S"):
                try:
                    names.add(os.path.basename(os.readlink(os.path.join(d, link))))
                except OSError:
                    names.add(link[3:])  # a plain file named S20foo
    return names


def script_items(ctx: Context, directory: str, username: str | None,
                 started: set[str] | None = None) -> Iterator[Row]:
    real = ctx.path(directory)
    for name in _listdir(real):
        full = os.path.join(real, name)
        if not os.path.isfile(full):
            continue
        if started is not None:  # /etc/init.d: enabled when a runlevel links it
            enabled = name in started
        else:  # autostart-scripts run when executable
            enabled = os.access(full, os.X_OK)
        yield {"name": name, "path": f"{directory}/{name}", "args": "", "type": "Startup Item",
               "source": directory, "status": "enabled" if enabled else "disabled", "username": username}


def systemd_items(ctx: Context) -> Iterator[Row]:
    units = _systemd.discover(ctx.root)
    states = _systemd.runtime_states() if _systemd.systemd_running(ctx.root) else None
    for uid in sorted(units):
        u = units[uid]
        if states is not None:
            if uid not in states:
                continue
            status = states[uid][1]  # osquery reports the unit's active state here
        elif u.enabled:
            status = "enabled"
        else:
            continue
        yield {"name": uid, "path": u.host_path, "args": "", "type": "systemd unit",
               "source": u.get("Unit", "SourcePath") or "", "status": status,
               "username": u.get("Service", "User") or ""}


def generate(ctx: Context) -> Iterator[Row]:
    seen_homes: set[str] = set()
    for pw in read_passwd(ctx.path("/etc/passwd")):
        home = pw.pw_dir.rstrip("/")
        if not home or home in seen_homes or not os.path.isdir(ctx.path(home + "/.config")):
            continue
        seen_homes.add(home)
        yield from desktop_items(ctx, home + "/.config/autostart", pw.pw_name)
        yield from script_items(ctx, home + "/.config/autostart-scripts", pw.pw_name)
    yield from script_items(ctx, "/etc/init.d", None, rc_started(ctx))
    yield from desktop_items(ctx, "/etc/xdg/autostart", None)
    yield from systemd_items(ctx)
