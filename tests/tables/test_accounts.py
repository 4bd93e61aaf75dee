"""users, groups, user_groups, shadow, sudoers: a fixture tree as host root, and this host vs pwd/grp."""

from __future__ import annotations

import grp
import os
import pwd

import pytest

ROOT_PASSWD_FIELDS = ("username", "uid", "gid", "description", "directory", "shell")


@pytest.fixture
def acct(engine_at, fixtures):
    return engine_at(fixtures / "accounts")


def test_users_fixture(acct):
    rows = {r["username"]: r for r in acct.query("SELECT * FROM users").dicts()}
    # '#' comments and '+' NIS compat lines are not accounts
    assert set(rows) == {"root", "daemon", "alice", "bob", "carol", "nfsnobody"}
    a = rows["alice"]
    assert (a["uid"], a["gid"], a["description"], a["directory"], a["shell"]) == (
        1000, 1000, "Alice Liddell,,,", "/home/alice", "/bin/bash")
    n = rows["nfsnobody"]
    assert (n["uid"], n["uid_signed"], n["gid_signed"]) == (4294967294, -2, -2)
    assert a["uuid"] is None  # Apple/Windows only


def test_users_pushdown(acct):
    assert acct.query("SELECT username FROM users WHERE uid = 1001").rows == [("bob",)]
    assert acct.query("SELECT uid FROM users WHERE username IN ('carol', 'root') ORDER BY uid").rows == [
        (0,), (1002,)]
    assert acct.query("SELECT uid FROM users WHERE uid = 4242").rows == []


def test_users_hidden_columns_echoed(acct):
    rows = acct.query("SELECT username, include_remote, pid_with_namespace FROM users WHERE uid = 0 "
                      "AND include_remote = 0").rows
    assert rows == [("root", 0, 0)]


def test_users_live_matches_pwd(engine):
    rows = engine.query("SELECT * FROM users").dicts()
    with open("/etc/passwd") as f:
        local = {ln.split(":")[0] for ln in f if ln.strip() and not ln.startswith(("#", "+", "-"))}
    assert {r["username"] for r in rows} == local
    for r in rows:
        p = pwd.getpwnam(r["username"])
        assert (r["uid"], r["gid"], r["description"], r["directory"], r["shell"]) == (
            p.pw_uid, p.pw_gid, p.pw_gecos, p.pw_dir, p.pw_shell)


def test_users_never_uses_nss_unless_asked(engine, monkeypatch):
    def boom(*a):
        raise AssertionError("NSS enumeration")

    for name in ("getpwall", "getpwuid", "getpwnam"):
        monkeypatch.setattr(pwd, name, boom)
    assert engine.query("SELECT count(*) FROM users").rows[0][0] > 0
    assert engine.query("SELECT username FROM users WHERE uid = 0").rows == [("root",)]
    with pytest.raises(Exception):
        engine.query("SELECT username FROM users WHERE uid = 0 AND include_remote = 1")


def test_users_include_remote_uses_nss(engine):
    rows = engine.query("SELECT username, include_remote FROM users WHERE include_remote = 1").rows
    assert {r[0] for r in rows} == {p.pw_name for p in pwd.getpwall()}
    assert {r[1] for r in rows} == {1}


def test_groups_fixture_dedupes_gid(acct):
    rows = acct.query("SELECT gid, gid_signed, groupname FROM groups").rows
    assert (10, 10, "wheel") in rows and not any(r[2] == "wheel-alias" for r in rows)
    assert (4294967294, -2, "nfsnobody") in rows
    assert acct.query("SELECT groupname FROM groups WHERE gid = 50").rows == [("ssh-users",)]


def test_groups_live_matches_grp(engine):
    rows = engine.query("SELECT gid, groupname FROM groups").rows
    expected, seen = [], set()
    for g in grp.getgrall():
        if g.gr_gid not in seen:
            seen.add(g.gr_gid)
            expected.append((g.gr_gid, g.gr_name))
    assert sorted(rows) == sorted(expected)


def test_user_groups_fixture(acct):
    pairs = acct.query("SELECT uid, gid FROM user_groups").rows
    assert [g for u, g in pairs if u == 1000] == [1000, 10, 50]  # primary first, each gid once
    assert [g for u, g in pairs if u == 1002] == [1002, 10]  # via the duplicate-gid 'wheel-alias' entry
    assert acct.query("SELECT gid FROM user_groups WHERE uid = 1001").rows == [(1001,), (10,)]


def test_user_groups_live_matches_getgrouplist(engine):
    got: dict[int, set[int]] = {}
    for u, g in engine.query("SELECT uid, gid FROM user_groups").rows:
        got.setdefault(u, set()).add(g)
    first: dict[int, pwd.struct_passwd] = {}
    for p in pwd.getpwall():
        first.setdefault(p.pw_uid, p)
    assert set(got) == set(first)
    for uid, p in first.items():
        assert got[uid] == set(os.getgrouplist(p.pw_name, p.pw_gid)), p.pw_name


def test_shadow_fixture(acct):
    rows = {r["username"]: r for r in acct.query("SELECT * FROM shadow").dicts()}
    assert {k: v["password_status"] for k, v in rows.items()} == {
        "root": "locked", "daemon": "locked", "alice": "active", "bob": "active", "carol": "not_set",
        "dave": "empty", "eve": "locked"}
    assert rows["alice"]["hash_alg"] == "6" and rows["bob"]["hash_alg"] == "y"
    assert rows["eve"]["hash_alg"] is None  # osquery: only a field starting with $id$ names the algorithm
    b = rows["bob"]
    assert (b["last_change"], b["min"], b["max"], b["warning"], b["inactive"], b["expire"]) == (
        19001, 1, 90, 14, 30, 20000)
    assert (rows["carol"]["min"], rows["carol"]["flag"]) == (-1, -1)  # empty field: glibc's "not set"
    assert acct.query("SELECT username FROM shadow WHERE username = 'dave'").rows == [("dave",)]


def test_shadow_never_emits_hash(acct, fixtures):
    hashes = [ln.split(":")[1] for ln in (fixtures / "accounts/etc/shadow").read_text().splitlines()]
    secrets = [h for h in hashes if len(h) > 3]
    for row in acct.query("SELECT * FROM shadow").rows:
        for value in row:
            assert not (isinstance(value, str) and any(s in value for s in secrets))
            assert not (isinstance(value, str) and "salt" in value)


def test_shadow_live(engine):
    with open("/etc/shadow") as f:
        entries = [ln.split(":") for ln in f.read().splitlines() if ln]
    rows = {r["username"]: r for r in engine.query("SELECT * FROM shadow").dicts()}
    assert set(rows) == {e[0] for e in entries}
    for e in entries:
        assert rows[e[0]]["last_change"] == (int(e[2]) if e[2] else -1)


def test_sudoers_fixture(acct):
    rows = acct.query("SELECT source, header, rule_details FROM sudoers").rows
    assert ("/etc/sudoers", "Defaults", "env_reset") in rows
    assert ("/etc/sudoers", "root", "ALL=(ALL:ALL) ALL") in rows
    assert ("/etc/sudoers", "Cmnd_Alias", "BACKUP = /usr/bin/rsync, /usr/bin/tar") in rows  # continuation
    # relative @include resolves beside the including file; includedir skips names with '.' or '~'
    assert ("/etc/sudoers.local", "bob", "ALL=(root) NOPASSWD: /usr/bin/systemctl restart nginx") in rows
    assert ("/etc/sudoers.d/90-alice", "alice", "ALL=(ALL) NOPASSWD: ALL") in rows
    assert not any(r[1] in ("carol", "mallory") for r in rows)
    assert ("/etc/sudoers", "#includedir", "/etc/sudoers.d") in rows
    assert not any(r[1].startswith("#") and r[1] not in ("#includedir", "#include") for r in rows)
    assert not any(r[1] == "#include" for r in rows)  # target-less include is a comment
    # the include row precedes the included file's rows, as sudo reads them
    idx = [r[0] for r in rows]
    assert idx.index("/etc/sudoers.local") == rows.index(("/etc/sudoers", "@include", "sudoers.local")) + 1


def test_sudoers_absent_is_empty(engine_at, tmp_path):
    assert engine_at(tmp_path).query("SELECT * FROM sudoers").rows == []


def test_pid_with_namespace_reads_that_root(engine):
    me = os.getpid()  # our own mount namespace: /proc/<pid>/root is "/"
    plain = engine.query("SELECT uid, username FROM users ORDER BY uid").rows
    ns = engine.query(f"SELECT uid, username, pid_with_namespace FROM users WHERE pid_with_namespace = {me} "
                      "ORDER BY uid").rows
    assert [r[:2] for r in ns] == plain and {r[2] for r in ns} == {me}
    gone = engine.query("SELECT * FROM users WHERE pid_with_namespace = 2147483000")
    assert gone.rows == [] and any("pid 2147483000" in w for w in gone.warnings)
