"""--host_identifier modes (collector.identity)."""

from __future__ import annotations

import socket
import uuid

import pytest

from collector import identity
from collector.errors import ConfigError
from collector.state import State


@pytest.fixture
def state(tmp_path):
    s = State(tmp_path / "db")
    yield s
    s.close()


def host_root(tmp_path, files: dict[str, str]):
    root = tmp_path / "host"
    for rel, text in files.items():
        p = root / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    root.mkdir(exist_ok=True)
    return str(root)


def test_hostname_live_and_from_hostfs(state, tmp_path):
    assert identity.host_identifier("hostname", state) == socket.gethostname()
    root = host_root(tmp_path, {"/proc/sys/kernel/hostname": "node-7\n", "/etc/hostname": "stale\n"})
    assert identity.host_identifier("hostname", state, root=root) == "node-7"
    root2 = host_root(tmp_path / "b", {"/etc/hostname": "from-etc\n"})
    assert identity.host_identifier("hostname", state, root=root2) == "from-etc"


def test_uuid_prefers_dmi_then_machine_id(state, tmp_path):
    root = host_root(tmp_path, {"/sys/class/dmi/id/product_uuid": "4c4c4544-0044-3510-8052-b3c04f4a4232\n",
                                "/etc/machine-id": "0123456789abcdef0123456789abcdef\n"})
    assert identity.host_identifier("uuid", state, root=root) == "4C4C4544-0044-3510-8052-B3C04F4A4232"
    placeholder = host_root(tmp_path / "p", {
        "/sys/class/dmi/id/product_uuid": "03000200-0400-0500-0006-000700080009",
        "/etc/machine-id": "0123456789abcdef0123456789abcdef"})
    assert identity.host_identifier("uuid", state, root=placeholder) == "01234567-89AB-CDEF-0123-456789ABCDEF"


def test_uuid_fallback_is_generated_once_and_persisted(tmp_path):
    empty = host_root(tmp_path, {})
    s = State(tmp_path / "db")
    first = identity.host_identifier("uuid", s, root=empty)
    assert uuid.UUID(first) and first == first.upper()
    assert identity.host_identifier("uuid", s, root=empty) == first
    s.close()
    s = State(tmp_path / "db")
    assert identity.host_identifier("uuid", s, root=empty) == first  # survives a restart
    assert s.get("identity", "host_uuid") == first
    s.close()


def test_instance_is_persisted_and_distinct_from_uuid(tmp_path):
    s = State(tmp_path / "db")
    inst = identity.host_identifier("instance", s)
    assert uuid.UUID(inst)
    s.close()
    s = State(tmp_path / "db")
    assert identity.instance_id(s) == inst
    assert identity.host_identifier("uuid", s, root=host_root(tmp_path, {})) != inst
    s.close()
    other = State(tmp_path / "other")
    assert identity.instance_id(other) != inst  # a new installation is a new instance
    other.close()


def test_ephemeral_is_per_process(state):
    a = identity.host_identifier("ephemeral", state)
    assert uuid.UUID(a) and identity.host_identifier("ephemeral", state) == a
    assert state.get("identity", "ephemeral") is None  # never stored


def test_specified(state):
    assert identity.host_identifier("specified", state, specified="web-01") == "web-01"
    with pytest.raises(ConfigError, match="specified_identifier"):
        identity.host_identifier("specified", state, specified="")
    with pytest.raises(ConfigError, match="specified_identifier"):
        identity.host_identifier("specified", state)


def test_unknown_mode_is_an_error(state):
    with pytest.raises(ConfigError, match="host_identifier: unknown host identifier 'hostnme'"):
        identity.host_identifier("hostnme", state)
