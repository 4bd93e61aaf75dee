"""process_envs, process_memory_map, process_open_files, process_open_pipes, process_namespaces, ulimit_info,
memory_map, shared_memory, kernel_keys: live checks against independent sources, parsers on fixtures."""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import subprocess
import sys
import tempfile

import pytest

from collector.tables._proc import NAMESPACES
from tests.tables.fsutil import text_lines


@pytest.fixture
def child():
    env = {"PATH": os.environ.get("PATH", ""), "QUARRY_TEST_VAR": "hello world=1", "EMPTY_ONE": ""}
    p = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], env=env,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    yield p
    p.stdin.close()
    p.wait(timeout=10)
    p.stdout.close()


def test_process_envs_of_child(engine, child):
    rows = engine.query(f"SELECT key, value FROM process_envs WHERE pid = {child.pid}").rows
    assert ("QUARRY_TEST_VAR", "hello world=1") in rows  # split at the first '=' only
    assert ("EMPTY_ONE", "") in rows
    assert dict(rows)["PATH"] == os.environ.get("PATH", "")
    both = engine.query(f"SELECT DISTINCT pid FROM process_envs WHERE pid IN ({child.pid}, {os.getpid()})").rows
    assert sorted(r[0] for r in both) == sorted([child.pid, os.getpid()])


def test_process_envs_missing_pid_is_empty(engine):
    assert engine.query("SELECT * FROM process_envs WHERE pid = 999999999").rows == []


def test_process_open_files_shows_temp_file(engine):
    with tempfile.NamedTemporaryFile() as f:
        expected = (f.fileno(), os.path.realpath(f.name))
        r, w = os.pipe()
        try:
            rows = engine.query(f"SELECT fd, path FROM process_open_files WHERE pid = {os.getpid()}").rows
        finally:
            os.close(r)
            os.close(w)
    assert expected in rows
    fds = {fd for fd, _ in rows}
    assert r not in fds and w not in fds  # pipes are not files (osquery semantics)
    assert not any(p.startswith(("socket:", "pipe:", "anon_inode:")) for _, p in rows)


def test_process_open_pipes_pairs_ends(engine, child):
    me = os.getpid()
    rows = engine.query("SELECT * FROM process_open_pipes WHERE pid IN "
                        f"({me}, {child.pid})").dicts()
    # The child's stdin is the read end of a pipe whose write end we hold, and vice versa for stdout.
    stdin = [r for r in rows if r["pid"] == child.pid and r["fd"] == 0]
    assert len(stdin) == 1
    assert (stdin[0]["mode"], stdin[0]["type"]) == ("r", "anonymous")
    assert (stdin[0]["partner_pid"], stdin[0]["partner_fd"], stdin[0]["partner_mode"]) == (
        me, child.stdin.fileno(), "w")
    assert stdin[0]["inode"] == os.fstat(child.stdin.fileno()).st_ino
    stdout = [r for r in rows if r["pid"] == me and r["fd"] == child.stdout.fileno()]
    assert [(r["mode"], r["partner_pid"], r["partner_fd"], r["partner_mode"]) for r in stdout] == [
        ("r", child.pid, 1, "w")]


def test_process_open_pipes_named_fifo(engine, tmp_path):
    fifo = tmp_path / "q.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)
    try:
        rows = engine.query(f"SELECT * FROM process_open_pipes WHERE pid = {os.getpid()} AND fd = {fd}").dicts()
    finally:
        os.close(fd)
    assert rows and all(r["type"] == "named" and r["mode"] == "rw" for r in rows)
    assert rows[0]["inode"] == os.stat(fifo).st_ino


def test_process_memory_map_has_python(engine):
    exe = os.path.realpath(sys.executable)
    rows = engine.query(f"SELECT * FROM process_memory_map WHERE pid = {os.getpid()}").dicts()
    mapped = [r for r in rows if r["path"] == exe]
    assert mapped, f"{exe} not mapped"
    assert all(r["inode"] == os.stat(exe).st_ino and r["pseudo"] == 0 for r in mapped)
    assert any("x" in r["permissions"] for r in rows if r["path"] and not r["pseudo"])
    stack = [r for r in rows if r["path"] == "[stack]"]
    assert stack and stack[0]["pseudo"] == 1 and stack[0]["inode"] == 0
    assert all(r["start"].startswith("0x") and int(r["start"], 16) < int(r["end"], 16) for r in rows)


def test_process_memory_map_parser_keeps_spaces():
    from collector.tables.process_memory_map import parse_line

    row = parse_line("7f00-7f10 r-xp 0001a000 08:01 1234   /opt/my lib/x.so (deleted)")
    assert row == {"start": "0x7f00", "end": "0x7f10", "permissions": "r-xp", "offset": 0x1a000,
                   "device": "08:01", "inode": 1234, "path": "/opt/my lib/x.so (deleted)", "pseudo": 0}
    assert parse_line("7f00-7f10 rw-p 00000000 00:00 0")["path"] == ""
    assert parse_line("garbage") is None


@pytest.fixture
def proc_root(tmp_path):
    """A host root whose /proc holds three processes with an environment and a memory map each."""
    for pid in (11, 12, 13):
        d = tmp_path / "proc" / str(pid)
        d.mkdir(parents=True)
        (d / "environ").write_bytes(f"PID={pid}\0HOME=/root\0".encode())
        (d / "maps").write_text("00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dbus\n"
                                "7ffd1000-7ffd2000 rw-p 00000000 00:00 0 [stack]\n")
        (d / "stat").write_text(f"{pid} (sh) S 1 {pid} {pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n")
        (d / "status").write_text(f"Name:\tsh\nPid:\t{pid}\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n")
        (d / "cmdline").write_bytes(b"sh\0")
    return tmp_path


@pytest.fixture
def opens(monkeypatch):
    """Paths opened, counted: os.open (what _proc.read uses) and the built-in open both."""
    import builtins
    import collections

    counted: collections.Counter[str] = collections.Counter()
    os_open, builtin_open = os.open, builtins.open

    def counting_os_open(path, *a, **kw):
        counted[os.fspath(path)] += 1
        return os_open(path, *a, **kw)

    def counting_open(path, *a, **kw):
        if isinstance(path, (str, os.PathLike)):
            counted[os.fspath(path)] += 1
        return builtin_open(path, *a, **kw)

    monkeypatch.setattr(os, "open", counting_os_open)
    monkeypatch.setattr(builtins, "open", counting_open)
    return counted


@pytest.mark.parametrize("table, file, rows", [("process_envs", "environ", 6), ("process_memory_map", "maps", 6)])
@pytest.mark.parametrize("sql", [
    "SELECT count(*) FROM {table}",
    "SELECT * FROM {table} WHERE pid IN (11, 12, 13)",
    "SELECT count(*) FROM {table} WHERE pid = 11 OR pid = 12 OR pid = 13",
    "SELECT count(*) FROM processes p JOIN {table} USING (pid)",
])
def test_per_process_file_is_read_once_per_query(engine_at, proc_root, opens, table, file, rows, sql):
    result = engine_at(proc_root).query(sql.format(table=table)).rows
    assert len(result) == rows or result[0][0] == rows
    per_process = {p: n for p, n in opens.items() if p.endswith("/" + file)}
    assert per_process == {f"{proc_root}/proc/{pid}/{file}": 1 for pid in (11, 12, 13)}


def test_process_namespaces_match_stat(engine):
    rows = engine.query(f"SELECT * FROM process_namespaces WHERE pid = {os.getpid()}").dicts()
    assert len(rows) == 1
    for name in NAMESPACES:
        path = f"/proc/self/ns/{name}"
        if os.path.exists(path):
            assert rows[0][f"{name}_namespace"] == str(os.stat(path).st_ino), name


def test_process_namespaces_pid_1_only(engine):
    rows = engine.query("SELECT pid FROM process_namespaces WHERE pid = 1").rows
    assert rows == [(1,)]


def test_permission_denied_is_reported(engine):
    """Processes we may not inspect: no fake values, one aggregated warning naming the capability."""
    res = engine.query("SELECT * FROM process_namespaces")
    unreadable = [r for r in res.dicts() if r["net_namespace"] is None]
    if not unreadable:
        pytest.skip("every process readable here")
    assert any("CAP_SYS_PTRACE" in w for w in res.warnings)


def test_ulimit_info_matches_getrlimit_and_proc(engine):
    rows = {r["type"]: r for r in engine.query("SELECT * FROM ulimit_info").dicts()}
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert rows["nofile"]["soft_limit"] == str(soft) and rows["nofile"]["hard_limit"] == str(hard)
    limits = text_lines("/proc/self/limits")
    stack = next(line for line in limits if line.startswith("Max stack size")).split()
    assert (rows["stack"]["soft_limit"], rows["stack"]["hard_limit"]) == (stack[3], stack[4])
    locks = next(line for line in limits if line.startswith("Max file locks")).split()
    assert (rows["locks"]["soft_limit"], rows["locks"]["hard_limit"]) == (locks[3], locks[4])
    assert set(rows) >= {"as", "core", "cpu", "data", "fsize", "memlock", "nofile", "nproc", "stack"}


def test_memory_map_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "memory_map").query("SELECT * FROM memory_map").rows
    assert rows[:3] == [("Reserved", "0x00000000", "0x00000fff"), ("System RAM", "0x00001000", "0x0009fbff"),
                        ("PCI Bus 0000:00", "0x000a0000", "0x000fffff")]
    assert ("Video ROM", "0x000c0000", "0x000c7fff") in rows  # nested region, indent dropped
    assert len(rows) == 6


def test_memory_map_live(engine):
    lines = [line for line in text_lines("/proc/iomem") if " : " in line]
    res = engine.query("SELECT * FROM memory_map")
    assert len(res.rows) == len(lines)
    if os.geteuid() == 0:
        assert any(r["start"] not in (None, "0x00000000") for r in res.dicts())


def test_shared_memory_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "shared_memory").query("SELECT * FROM shared_memory ORDER BY shmid").dicts()
    assert rows[0] == {"shmid": 32, "owner_uid": 1000, "creator_uid": 1000, "pid": 4343, "creator_pid": 4242,
                       "atime": 1700000100, "dtime": 1700000050, "ctime": 1700000000, "permissions": "1600",
                       "size": 524288, "attached": 2, "status": "dest", "locked": 0}
    assert (rows[1]["permissions"], rows[1]["status"], rows[1]["locked"]) == ("2640", "", 1)


def test_shared_memory_live_segment(engine):
    libc = ctypes.CDLL(None, use_errno=True)
    shmid = libc.shmget(0, 12345, 0o1000 | 0o640)  # IPC_PRIVATE, IPC_CREAT | rw-r-----
    if shmid < 0:
        pytest.skip("System V shared memory unavailable")
    try:
        rows = engine.query(f"SELECT * FROM shared_memory WHERE shmid = {shmid}").dicts()
    finally:
        libc.shmctl(shmid, 0, None)  # IPC_RMID
    assert len(rows) == 1
    r = rows[0]
    assert (r["size"], r["creator_pid"], r["owner_uid"], r["permissions"], r["attached"]) == (
        12345, os.getpid(), os.geteuid(), "0640", 0)


def test_kernel_keys_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "kernel_keys").query("SELECT * FROM kernel_keys").dicts()
    assert rows[1] == {"serial_number": "1a3a8956", "flags": "I--Q---", "usage": 1, "timeout": "perm",
                       "permissions": "1f3f0000", "uid": 0, "gid": 65534, "type": "keyring",
                       "description": "_ses:1"}
    assert rows[2]["description"] == "my key with spaces:6" and rows[2]["timeout"] == "2h"
    assert len(rows) == 3


@pytest.mark.skipif(platform.machine() != "x86_64", reason="add_key syscall number is x86_64's")
def test_kernel_keys_live_user_key(engine):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    serial = libc.syscall(248, b"user", b"quarry-test-key", b"secret", 6, ctypes.c_int(-4))  # add_key
    if serial < 0:
        pytest.skip("cannot add a key here")
    try:
        rows = engine.query("SELECT * FROM kernel_keys WHERE type = 'user'").dicts()
    finally:
        libc.syscall(250, 3, ctypes.c_long(serial))  # keyctl(KEYCTL_REVOKE)
        libc.syscall(250, 9, ctypes.c_long(serial), ctypes.c_long(-4))  # keyctl(KEYCTL_UNLINK, user keyring)
    mine = [r for r in rows if r["serial_number"] == f"{serial:08x}"]
    assert len(mine) == 1
    assert (mine[0]["description"], mine[0]["uid"], mine[0]["timeout"]) == (
        "quarry-test-key:6", os.geteuid(), "perm")
