"""shell_history: bash (#epoch), zsh (extended, continuations, metafied bytes), sh and fish, for all users."""

from __future__ import annotations

import os
import pwd

import pytest


@pytest.fixture
def acct(engine_at, fixtures):
    return engine_at(fixtures / "accounts")


def test_incident_response_join_reads_every_user(acct):
    rows = acct.query("SELECT * FROM users JOIN shell_history USING (uid)").dicts()
    assert {r["username"] for r in rows} == {"root", "alice", "bob", "carol"}
    got = [(r["username"], r["time"], r["command"], r["history_file"]) for r in rows]
    assert got == [
        ("root", 0, "whoami", "/root/.sh_history"),
        ("root", 0, "id", "/root/.sh_history"),
        ("alice", 1700000000, "ls -la", "/home/alice/.bash_history"),
        ("alice", 1700000060, "git status", "/home/alice/.bash_history"),
        ("alice", 0, "echo no timestamp here", "/home/alice/.bash_history"),
        ("alice", 0, "#not-a-timestamp", "/home/alice/.bash_history"),
        ("bob", 1700001000, "cd /tmp", "/home/bob/.zsh_history"),
        ("bob", 1700001005, "for i in 1 2; do\necho $i\ndone", "/home/bob/.zsh_history"),
        ("bob", 1700001010, "echo \u0151", "/home/bob/.zsh_history"),  # zsh-metafied "ő"
        ("bob", 0, "plain zsh line", "/home/bob/.zsh_history"),
        ("carol", 1700002000, "echo hello", "/home/carol/.local/share/fish/fish_history"),
        ("carol", 1700002005, "printf 'a\\nb'", "/home/carol/.local/share/fish/fish_history"),
        ("carol", 1700002010, "echo multi\nline", "/home/carol/.local/share/fish/fish_history"),
    ]


def test_default_is_current_user_only(acct):
    assert os.getuid() == 0
    assert {r[0] for r in acct.query("SELECT uid FROM shell_history").rows} == {0}


def test_uid_constraint(acct):
    rows = acct.query("SELECT DISTINCT history_file FROM shell_history WHERE uid = 1001").rows
    assert rows == [("/home/bob/.zsh_history",)]


def test_live_current_user_history(engine, tmp_path):
    me = pwd.getpwuid(os.getuid())
    path = os.path.join(me.pw_dir, ".bash_history")
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    # with no #epoch lines every line is one command with time 0
    if any(ln.startswith("#") for ln in lines):
        pytest.skip("timestamped history: covered by the fixture")
    rows = engine.query(f"SELECT command FROM shell_history WHERE history_file = '{path}'").rows
    assert [r[0] for r in rows] == lines
