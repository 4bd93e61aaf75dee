"""selinux_settings and apparmor_profiles: fixture trees, and empty on hosts without them."""

from __future__ import annotations

import hashlib
import os

from tests.tables.fsutil import text_lines


def test_selinux_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "selinux_settings").query("SELECT * FROM selinux_settings").rows
    got = set(rows)
    assert ("", "enforce", "1") in got and ("", "policyvers", "33") in got and ("", "mls", "1") in got
    assert ("booleans", "httpd_can_network_connect", "on") in got and ("booleans", "ftpd_anon_write", "off") in got
    assert not any(k == "pending_change" for _, k, _ in rows)
    assert ("policy_capabilities", "network_peer_controls", "1") in got
    assert ("initial_contexts", "kernel", "system_u:system_r:kernel_t:s0") in got
    assert {r for r in rows if r[0] == "class"} == {("class", "file/perms", "read"), ("class", "file/perms", "write"),
                                                    ("class", "process/perms", "fork")}


def test_selinux_live(engine):
    mounted = any(l.split()[2] == "selinuxfs" for l in text_lines("/proc/mounts") if len(l.split()) > 2)
    rows = engine.query("SELECT * FROM selinux_settings WHERE key = 'enforce'").rows
    if not mounted:
        assert rows == []
    else:
        assert len(rows) == 1


def test_apparmor_fixture(engine_at, fixtures):
    rows = {r["path"]: r for r in engine_at(fixtures / "apparmor_profiles").query(
        "SELECT * FROM apparmor_profiles").dicts()}
    assert set(rows) == {"/usr/sbin/cupsd", "/usr/sbin/cupsd//third_party", "firefox"}
    cupsd = rows["/usr/sbin/cupsd"]
    assert cupsd["mode"] == "enforce" and cupsd["sha1"] == "a" * 40 and cupsd["sha256"] is None
    child = rows["/usr/sbin/cupsd//third_party"]
    assert child["name"] == "third_party" and child["mode"] == "complain" and child["attach"] == "<unconfined>"
    assert child["sha1"] == hashlib.sha1(b"policy-bytes").hexdigest()
    assert rows["firefox"]["sha256"] == "b" * 64 and rows["firefox"]["attach"].startswith("/usr/lib/firefox")


def test_apparmor_path_constraint(engine_at, fixtures):
    e = engine_at(fixtures / "apparmor_profiles")
    rows = e.query("SELECT name FROM apparmor_profiles WHERE path = '/usr/sbin/cupsd//third_party'").rows
    assert rows == [("third_party",)]


def test_apparmor_live(engine):
    base = "/sys/kernel/security/apparmor/policy/profiles"
    rows = engine.query("SELECT * FROM apparmor_profiles").rows
    if not os.path.isdir(base):
        assert rows == []
    else:
        assert len(rows) >= len(os.listdir(base))
