"""The host identifier on every results and status line (--host_identifier; osquery/core/system.cpp).

    host_identifier("hostname", state)                  # the live hostname (default)
    host_identifier("uuid", state, root="/host")        # hardware UUID, else machine-id, else stored
    host_identifier("instance", state)                  # persisted per installation (State domain "identity")
    host_identifier("ephemeral", state)                 # new per process
    host_identifier("specified", state, specified="web-01")

UUIDs are upper-case, as Quarry's system_info.uuid shows them. The generated fallbacks are kept in State
domain "identity" (keys "host_uuid", osquery's host_uuid_v3, and "instance_uuid", osquery's
instance_uuid_v1), so they survive restarts; losing the database loses them, as in osquery.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import uuid
from pathlib import Path

from collector.errors import ConfigError
from collector.state import State

log = logging.getLogger("quarry.identity")

MODES = ("hostname", "uuid", "instance", "ephemeral", "specified")
DOMAIN = "identity"

# Firmware that ships no real UUID reports one of these; osquery treats them as absent too.
_PLACEHOLDERS = {
    "00000000-0000-0000-0000-000000000000",
    "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
    "03000200-0400-0500-0006-000700080009",
}
_UUID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")

_ephemeral: str | None = None


def _read(root: str, path: str) -> str:
    try:
        return Path(root, path.lstrip("/")).read_text(errors="replace").strip()
    except OSError:
        return ""


def hostname(root: str = "/") -> str:
    """The live hostname; with --hostfs, the host's (its /proc/sys/kernel/hostname, else /etc/hostname)."""
    if os.path.realpath(root) == "/":
        return socket.gethostname()
    name = _read(root, "/proc/sys/kernel/hostname") or _read(root, "/etc/hostname")
    return name or socket.gethostname()


def hardware_uuid(root: str = "/") -> str | None:
    """DMI product_uuid (root-only), else systemd's machine-id in UUID form; None when neither is usable."""
    value = _read(root, "/sys/class/dmi/id/product_uuid").upper()
    if _UUID.match(value) and value not in _PLACEHOLDERS:
        return value
    mid = _read(root, "/etc/machine-id").lower()
    if re.fullmatch(r"[0-9a-f]{32}", mid) and set(mid) != {"0"}:
        return str(uuid.UUID(hex=mid)).upper()
    return None


def _stored(state: State, key: str) -> str:
    value = state.get(DOMAIN, key)
    if isinstance(value, str) and _UUID.match(value):
        return value
    value = str(uuid.uuid4()).upper()
    state.put(DOMAIN, key, value)
    log.info("Generated a new %s: %s", key.replace("_", " "), value)
    return value


def host_uuid(state: State, root: str = "/") -> str:
    """osquery's getHostUUID: the hardware UUID, else one generated once and kept in the State."""
    return hardware_uuid(root) or _stored(state, "host_uuid")


def instance_id(state: State) -> str:
    """The persisted instance UUID (osquery_info.instance_id should show the same)."""
    return _stored(state, "instance_uuid")


def ephemeral_id() -> str:
    """A UUID made once per process."""
    global _ephemeral
    if _ephemeral is None:
        _ephemeral = str(uuid.uuid4()).upper()
    return _ephemeral


def host_identifier(mode: str, state: State, root: str = "/", specified: str | None = None) -> str:
    """The identifier --host_identifier asks for; ConfigError on an unknown mode or an empty specified one."""
    if mode == "hostname":
        return hostname(root)
    if mode == "uuid":
        return host_uuid(state, root)
    if mode == "instance":
        return instance_id(state)
    if mode == "ephemeral":
        return ephemeral_id()
    if mode == "specified":
        if not specified or not specified.strip():
            raise ConfigError("--host_identifier=specified needs a non-empty --specified_identifier",
                              field="specified_identifier")
        return specified
    raise ConfigError(f"unknown host identifier {mode!r}: expected one of {', '.join(MODES)}",
                      field="host_identifier")
