"""systemd unit files from the unit search path, shared by systemd_units and startup_items.

osquery asks systemd over D-Bus (ListUnits). Quarry reads the unit files themselves, which works under
--hostfs and where systemd is not PID 1; runtime state (active/sub state, jobs) comes from
`systemctl list-units` only when systemd really runs, because no D-Bus client library is available and
the state lives nowhere on disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field

SEARCH_PATH = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
               "/usr/lib/systemd/system", "/lib/systemd/system")
ENABLE_DIRS = ("/etc/systemd/system", "/run/systemd/system")
SUFFIXES = (".service", ".socket", ".target", ".timer", ".path", ".mount", ".automount", ".swap", ".slice",
            ".scope", ".device")


@dataclass
class Unit:
    id: str
    path: str  # real path of the fragment under the reading root
    host_path: str  # the same path as the host names it
    masked: bool = False
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    enabled: bool = False

    def get(self, section: str, key: str) -> str | None:
        return self.sections.get(section, {}).get(key)

    @property
    def file_state(self) -> str:
        if self.masked:
            return "masked"
        if self.enabled:
            return "enabled"
        install = self.sections.get("Install", {})
        if not any(k in install for k in ("WantedBy", "RequiredBy", "UpheldBy", "Alias")):
            return "indirect" if "Also" in install else "static"
        return "disabled"


def parse_unit(text: str) -> dict[str, dict[str, str]]:
    """INI-like unit syntax: [Section], Key=Value, # and ; comments, backslash continuations.
    A repeated key keeps its last value (what systemd reports for single-valued settings)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        if sep and current is not None:
            current[key.strip()] = value.strip()
    return sections


def _root_join(root: str, path: str) -> str:
    return path if root == "/" else root + path


def discover(root: str) -> dict[str, Unit]:
    """Every concrete unit on the search path (first directory wins), aliases folded into their target."""
    units: dict[str, Unit] = {}
    enabled: set[str] = set()
    seen_dirs: set[str] = set()
    for d in SEARCH_PATH:
        real_dir = _root_join(root, d)
        key = os.path.realpath(real_dir)
        if key in seen_dirs or not os.path.isdir(real_dir):
            continue
        seen_dirs.add(key)
        for name in sorted(os.listdir(real_dir)):
            full = os.path.join(real_dir, name)
            if name.endswith((".wants", ".requires", ".upholds")) and os.path.isdir(full):
                # Only links the admin (or systemctl enable) made count; /usr/lib ones are static deps.
                if d in ENABLE_DIRS:
                    enabled.update(n for n in os.listdir(full) if n.endswith(SUFFIXES))
                continue
            if not name.endswith(SUFFIXES) or name in units:
                continue
            if name.split(".")[0].endswith("@"):
                continue  # a template; only its instances are units
            masked = False
            if os.path.islink(full):
                target = os.readlink(full)
                if target == "/dev/null":
                    masked = True
                elif os.path.basename(target) != name:
                    continue  # an alias name of another unit, listed under that unit
            units[name] = Unit(name, full, d + "/" + name, masked)
    # Instances of templates enabled through .wants links (getty@tty1.service -> getty@.service).
    for name in sorted(enabled):
        if name in units or "@" not in name:
            continue
        template = name[: name.index("@") + 1] + name[name.rindex("."):]
        for d in SEARCH_PATH:
            full = _root_join(root, d) + "/" + template
            if os.path.isfile(full):
                units[name] = Unit(name, full, d + "/" + template)
                break
    for u in units.values():
        u.enabled = u.id in enabled
        if not u.masked:
            try:
                with open(u.path, encoding="utf-8", errors="replace") as f:
                    u.sections = parse_unit(f.read())
            except OSError:
                pass
    return units


def systemd_running(root: str) -> bool:
    if root != "/":
        return False  # a --hostfs root: the local systemctl would describe the wrong machine
    try:
        with open("/proc/1/comm") as f:
            return f.read().strip() == "systemd"
    except OSError:
        return False


def parse_list_units(text: str) -> Iterator[tuple[str, str, str, str]]:
    """(unit, load, active, sub) from `systemctl list-units --all --plain --no-legend`."""
    for line in text.splitlines():
        f = line.split()
        if f and f[0] in ("●", "*"):
            f = f[1:]
        if len(f) >= 4:
            yield f[0], f[1], f[2], f[3]


def runtime_states() -> dict[str, tuple[str, str, str]] | None:
    """Loaded units' (load, active, sub) from systemctl, or None when it cannot tell."""
    exe = shutil.which("systemctl")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "list-units", "--all", "--full", "--plain", "--no-legend", "--no-pager"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return {u: (load, active, sub) for u, load, active, sub in parse_list_units(out.stdout)}
