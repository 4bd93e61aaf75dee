"""logged_in_users and last: utmp/wtmp images written here byte by byte, read through a fixture root."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

# utmp(5) on 64-bit glibc, laid out by offset so the test does not share the table's struct format.
OFF = {"type": 0, "pid": 4, "line": 8, "id": 40, "user": 44, "host": 76, "session": 336, "sec": 340,
       "usec": 344, "addr": 348}
SIZE = 384


def record(type_: int, pid: int, line: str, user: str, host: str, sec: int, id_: str = "") -> bytes:
    b = bytearray(SIZE)
    struct.pack_into("<h", b, OFF["type"], type_)
    struct.pack_into("<i", b, OFF["pid"], pid)
    b[OFF["line"]:OFF["line"] + len(line)] = line.encode()
    b[OFF["id"]:OFF["id"] + len(id_)] = id_.encode()
    b[OFF["user"]:OFF["user"] + len(user)] = user.encode()
    b[OFF["host"]:OFF["host"] + len(host)] = host.encode()
    struct.pack_into("<i", b, OFF["sec"], sec)
    struct.pack_into("<i", b, OFF["usec"], 123456)
    return bytes(b)


UTMP = [
    record(2, 0, "~", "reboot", "6.1.0-18-amd64", 1700000000, "~~"),  # BOOT_TIME
    record(1, 53, "~", "runlevel", "6.1.0-18-amd64", 1700000001, "~~"),  # RUN_LVL
    record(5, 1, "", "", "", 1700000002, "si"),  # INIT_PROCESS of pid 1: skipped like osquery
    record(6, 812, "tty1", "LOGIN", "", 1700000003, "tty1"),  # LOGIN_PROCESS
    record(7, 4242, "pts/0", "alice", "203.0.113.7", 1700000100, "ts/0"),  # USER_PROCESS
    record(8, 4243, "pts/1", "", "", 1700000200, "ts/1"),  # DEAD_PROCESS
    record(42, 4244, "pts/2", "odd", "", 1700000300),  # unknown type
]


@pytest.fixture
def root(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "var/log").mkdir(parents=True)
    (tmp_path / "run/utmp").write_bytes(b"".join(UTMP))
    wtmp = b"".join(UTMP) + record(7, 5000, "pts/3", "bob", "10.1.2.3", 1700000400)
    (tmp_path / "var/log/wtmp").write_bytes(wtmp + b"\x07\x00partial")  # a torn trailing write
    return tmp_path


def test_logged_in_users(engine_at, root):
    rows = engine_at(root).query("SELECT type, user, tty, host, time, pid FROM logged_in_users").rows
    assert rows == [
        ("boot_time", "reboot", "~", "6.1.0-18-amd64", 1700000000, 0),
        ("runlevel", "runlevel", "~", "6.1.0-18-amd64", 1700000001, 53),
        ("login", "LOGIN", "tty1", "", 1700000003, 812),
        ("user", "alice", "pts/0", "203.0.113.7", 1700000100, 4242),
        ("dead", "", "pts/1", "", 1700000200, 4243),
        ("unknown", "odd", "pts/2", "", 1700000300, 4244),
    ]


def test_logged_in_users_var_run_spelling(engine_at, tmp_path):
    (tmp_path / "var/run").mkdir(parents=True)
    (tmp_path / "var/run/utmp").write_bytes(UTMP[4])
    assert engine_at(tmp_path).query("SELECT user FROM logged_in_users").rows == [("alice",)]


def test_last_only_user_and_dead_records(engine_at, root):
    rows = engine_at(root).query("SELECT username, tty, pid, type, type_name, time, host FROM last").rows
    assert rows == [
        ("alice", "pts/0", 4242, 7, "user-process", 1700000100, "203.0.113.7"),
        ("", "pts/1", 4243, 8, "dead-process", 1700000200, ""),
        ("bob", "pts/3", 5000, 7, "user-process", 1700000400, "10.1.2.3"),
    ]


def test_absent_files_are_empty(engine_at, tmp_path):
    e = engine_at(tmp_path)
    assert e.query("SELECT * FROM logged_in_users").rows == []
    assert e.query("SELECT * FROM last").rows == []


def test_live_wtmp_record_count(engine):
    # The live wtmp (empty on this VM, full elsewhere) read independently: USER/DEAD records only.
    try:
        data = Path("/var/log/wtmp").read_bytes()
    except OSError:
        data = b""
    want = sum(1 for off in range(0, len(data) - SIZE + 1, SIZE)
               if struct.unpack_from("<h", data, off)[0] in (7, 8))
    assert engine.query("SELECT count(*) FROM last").rows[0][0] == want
