"""process_open_sockets and listening_ports: /proc/net parsing (fixture trees) and this host (live, `ss`)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

from collector.tables._sockets import decode_address

FIX = "process_open_sockets"


def _rows(engine, sql):
    return engine.query(sql).dicts()


# --- parser, fixture trees -------------------------------------------------------------------------

def test_decode_address_host_byte_order():
    assert decode_address("0100007F", 2) == "127.0.0.1"
    assert decode_address("0F02000A", 2) == "10.0.2.15"
    assert decode_address("00000000000000000000000001000000", 10) == "::1"
    assert decode_address("0000000000000000FFFF00000100007F", 10) == "::ffff:127.0.0.1"
    assert decode_address("B80D0120000000000000000001000000", 10) == "2001:db8::1"
    assert decode_address("zz", 2) == ""


def test_fixture_without_processes_reads_proc_net(engine_at, fixtures):
    """A root with /proc/net but no readable process: every socket of that namespace, owners NULL."""
    res = engine_at(fixtures / FIX).query("SELECT * FROM process_open_sockets")
    rows = {(r["protocol"], r["family"], r["socket"], r["local_port"]): r for r in res.dicts()}
    tcp = rows[(6, 2, 5001, 8080)]
    assert (tcp["local_address"], tcp["remote_address"], tcp["remote_port"], tcp["state"]) == (
        "127.0.0.1", "0.0.0.0", 0, "LISTEN")
    assert tcp["pid"] is None and tcp["fd"] is None and tcp["path"] == ""
    est = rows[(6, 2, 5002, 8080)]
    assert (est["remote_address"], est["remote_port"], est["state"]) == ("127.0.0.1", 50000, "ESTABLISHED")
    assert rows[(6, 2, 0, 50001)]["state"] == "TIME_WAIT"
    assert rows[(6, 10, 5003, 22)]["local_address"] == "::"
    assert rows[(6, 10, 5006, 9001)]["local_address"] == "::ffff:127.0.0.1"
    assert rows[(6, 10, 5007, 631)]["remote_port"] == 55000
    udp = rows[(17, 2, 5004, 68)]
    assert udp["state"] == "" and udp["local_address"] == "0.0.0.0"
    assert rows[(17, 2, 5005, 54321)]["remote_address"] == "8.8.8.8"
    assert rows[(255, 2, 8001, 1)]["state"] == ""  # raw sockets: IPPROTO_RAW, port = protocol number
    unix = {r["socket"]: r for r in res.dicts() if r["family"] == 1}
    assert unix[6001]["path"] == "/run/test.sock" and unix[6001]["local_address"] == ""
    assert unix[6002]["path"] == ""
    assert unix[6003]["path"] == "@abstract name"  # paths keep their spaces
    packet = [r for r in res.dicts() if r["family"] == 17]
    assert [(p["socket"], p["protocol"], p["state"]) for p in packet] == [(7001, 3, "NONE")]
    assert len(res.rows) == 13
    # The fixture has no /proc/self/ns/net: the namespace is unknown, and said so.
    assert all(r["net_namespace"] is None for r in res.dicts())
    assert any("net_namespace" in w for w in res.warnings)


def _tree_with_processes(tmp_path, fixtures):
    """Two processes in one namespace (sharing proc/net) and one in another namespace."""
    root = tmp_path / "root"
    shutil.copytree(fixtures / FIX, root, symlinks=True)
    proc = root / "proc"
    for pid, fds, ns in ((4242, {3: 5001, 4: 6001, 5: 5002}, 4026531999), (4243, {7: 5004}, 4026531999),
                         (4343, {9: 9001}, 4026532000)):
        (proc / str(pid) / "fd").mkdir(parents=True)
        (proc / str(pid) / "ns").mkdir()
        for fd, inode in fds.items():
            os.symlink(f"socket:[{inode}]", proc / str(pid) / "fd" / str(fd))
        os.symlink("/dev/null", proc / str(pid) / "fd" / "0")
        os.symlink(f"net:[{ns}]", proc / str(pid) / "ns" / "net")
        if pid != 4343:
            os.symlink("../net", proc / str(pid) / "net")
    other = proc / "4343" / "net"
    other.mkdir()
    (other / "tcp").write_text(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
        "   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 9001 1 0 100\n")
    return root


def test_fixture_owners_and_namespaces(engine_at, fixtures, tmp_path):
    eng = engine_at(_tree_with_processes(tmp_path, fixtures))
    res = eng.query("SELECT * FROM process_open_sockets")
    by_inode = {r["socket"]: r for r in res.dicts() if r["socket"]}
    assert (by_inode[5001]["pid"], by_inode[5001]["fd"]) == (4242, 3)
    assert (by_inode[5004]["pid"], by_inode[5004]["fd"]) == (4243, 7)
    assert (by_inode[6001]["pid"], by_inode[6001]["fd"]) == (4242, 4)
    assert by_inode[5003]["pid"] is None  # nobody in the tree holds it
    assert by_inode[5001]["net_namespace"] == "4026531999"
    assert (by_inode[9001]["pid"], by_inode[9001]["net_namespace"]) == (4343, "4026532000")
    # The shared namespace is read once: no socket appears twice.
    assert len(res.rows) == 14
    assert any("held by no process" in w for w in res.warnings)

    only = eng.query("SELECT pid, fd, socket FROM process_open_sockets WHERE pid = 4343").rows
    assert only == [(4343, 9, 9001)]
    both = eng.query("SELECT socket FROM process_open_sockets WHERE pid IN (4242, 4243) ORDER BY socket").rows
    assert [r[0] for r in both] == [5001, 5002, 5004, 6001]


def test_join_reads_each_namespace_once_per_query(engine_at, fixtures, tmp_path, monkeypatch):
    """A join calls the table once per outer pid; the namespace's socket list is read once per query."""
    from collector.tables import _sockets

    root = _tree_with_processes(tmp_path, fixtures)
    (root / "proc" / "4444" / "fd").mkdir(parents=True)  # a process without sockets, in the shared namespace
    os.symlink("/dev/null", root / "proc" / "4444" / "fd" / "0")
    os.symlink("../net", root / "proc" / "4444" / "net")
    reads: list[str] = []
    real = _sockets.read_namespace
    monkeypatch.setattr(_sockets, "read_namespace", lambda netdir, ns: reads.append(netdir) or real(netdir, ns))
    eng = engine_at(root)
    sql = ("SELECT p.pid, s.fd, s.socket FROM (SELECT 4242 AS pid UNION ALL SELECT 4243 UNION ALL SELECT 4343 "
           "UNION ALL SELECT 4444 UNION ALL SELECT 4242) p JOIN process_open_sockets s ON s.pid = p.pid "
           "ORDER BY s.socket")
    rows = eng.query(sql).rows
    assert [r[2] for r in rows] == [5001, 5001, 5002, 5002, 5004, 6001, 6001, 9001]
    assert sorted(reads) == sorted({f"{root}/proc/4242/net", f"{root}/proc/4343/net"})
    reads.clear()
    assert eng.query("SELECT * FROM process_open_sockets WHERE pid = 4444").rows == []
    assert reads == []  # holds no socket: its namespace is not read at all
    assert eng.query(sql).rows == rows and len(reads) == 2  # the next query reads afresh


def test_fixture_listening_ports(engine_at, fixtures, tmp_path):
    eng = engine_at(_tree_with_processes(tmp_path, fixtures))
    rows = eng.query("SELECT * FROM listening_ports").dicts()
    got = {(r["family"], r["protocol"], r["port"], r["address"], r["path"]) for r in rows}
    assert got == {
        (2, 6, 8080, "127.0.0.1", None),
        (10, 6, 22, "::", None),
        (10, 6, 9001, "::ffff:127.0.0.1", None),
        (2, 17, 68, "0.0.0.0", None),
        (2, 255, 1, "0.0.0.0", None),
        (1, 0, 0, None, "/run/test.sock"),
        (1, 0, 0, None, "@abstract name"),
        (17, 3, 0, "", None),
        (2, 6, 80, "0.0.0.0", None),
    }
    by_port = {(r["protocol"], r["port"]): r for r in rows if r["family"] in (2, 10)}
    assert (by_port[(6, 8080)]["pid"], by_port[(6, 8080)]["fd"], by_port[(6, 8080)]["socket"]) == (4242, 3, 5001)
    assert (by_port[(6, 80)]["pid"], by_port[(6, 80)]["net_namespace"]) == (4343, "4026532000")
    unix = next(r for r in rows if r["path"] == "/run/test.sock")
    assert (unix["pid"], unix["fd"], unix["socket"]) == (4242, 4, 6001)


# --- this host -------------------------------------------------------------------------------------

@pytest.fixture
def my_sockets(tmp_path):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    cli = socket.create_connection(srv.getsockname())
    conn, _ = srv.accept()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp6.bind(("::1", 0))
    ux = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ux.bind(str(tmp_path / "q.sock"))
    ux.listen()
    socks = {"srv": srv, "cli": cli, "conn": conn, "udp": udp, "udp6": udp6, "unix": ux}
    yield socks
    for s in socks.values():
        s.close()


def test_live_listening_ports_has_my_sockets(engine, my_sockets):
    me = os.getpid()
    rows = engine.query(f"SELECT * FROM listening_ports WHERE pid = {me}").dicts()
    by_fd = {r["fd"]: r for r in rows}
    srv, udp, udp6, ux = my_sockets["srv"], my_sockets["udp"], my_sockets["udp6"], my_sockets["unix"]
    r = by_fd[srv.fileno()]
    assert (r["port"], r["address"], r["family"], r["protocol"]) == (srv.getsockname()[1], "127.0.0.1", 2, 6)
    assert r["socket"] == os.fstat(srv.fileno()).st_ino
    assert r["net_namespace"] == str(os.stat("/proc/self/ns/net").st_ino)
    r = by_fd[udp.fileno()]
    assert (r["port"], r["address"], r["family"], r["protocol"]) == (udp.getsockname()[1], "127.0.0.1", 2, 17)
    r = by_fd[udp6.fileno()]
    assert (r["port"], r["address"], r["family"], r["protocol"]) == (udp6.getsockname()[1], "::1", 10, 17)
    r = by_fd[ux.fileno()]
    assert (r["path"], r["family"], r["port"]) == (ux.getsockname(), 1, 0)
    # Connected sockets are not listening.
    assert my_sockets["cli"].fileno() not in by_fd and my_sockets["conn"].fileno() not in by_fd


def test_live_process_open_sockets_states(engine, my_sockets):
    me = os.getpid()
    res = engine.query(f"SELECT * FROM process_open_sockets WHERE pid = {me}")
    by_fd = {r["fd"]: r for r in res.dicts()}
    cli, conn, srv = my_sockets["cli"], my_sockets["conn"], my_sockets["srv"]
    r = by_fd[cli.fileno()]
    assert r["state"] == "ESTABLISHED" and (r["family"], r["protocol"]) == (2, 6)
    assert (r["local_address"], r["local_port"]) == cli.getsockname()
    assert (r["remote_address"], r["remote_port"]) == cli.getpeername()
    assert by_fd[conn.fileno()]["remote_port"] == cli.getsockname()[1]
    assert by_fd[srv.fileno()]["state"] == "LISTEN"
    assert by_fd[my_sockets["udp"].fileno()]["state"] == ""
    assert by_fd[my_sockets["unix"].fileno()]["path"] == my_sockets["unix"].getsockname()
    # Every row belongs to us, and each of our socket fds is there.
    assert {r["pid"] for r in res.dicts()} == {me}
    socket_fds = {int(fd) for fd in os.listdir("/proc/self/fd")
                  if _link(f"/proc/self/fd/{fd}").startswith("socket:")}
    assert {s.fileno() for s in my_sockets.values()} <= set(by_fd) <= socket_fds


def _link(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


def _ss_listening() -> set[tuple[int, str, int, int]]:
    """(protocol, address, port, inode) of every TCP/UDP listener `ss` sees in this namespace."""
    out = subprocess.run(["ss", "-ltunHe"], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in out.splitlines():
        f = line.split()
        proto = {"tcp": 6, "udp": 17}[f[0]]
        addr, _, port = f[4].rpartition(":")
        addr = addr.strip("[]").split("%")[0]
        addr = {"*": "0.0.0.0"}.get(addr, addr)
        ino = next(int(x[4:]) for x in f if x.startswith("ino:"))
        found.add((proto, addr, int(port), ino))
    return found


def _ours_listening(engine) -> set[tuple[int, str, int, int]]:
    ns = str(os.stat("/proc/self/ns/net").st_ino)
    rows = engine.query("SELECT protocol, address, port, socket, net_namespace FROM listening_ports "
                        "WHERE family IN (2, 10) AND protocol IN (6, 17)").dicts()
    return {(r["protocol"], r["address"], r["port"], r["socket"]) for r in rows if r["net_namespace"] == ns}


def test_live_listening_ports_agrees_with_ss(engine, my_sockets):
    if shutil.which("ss") is None:
        pytest.fail("ss (iproute2) is required for this test: apt-get install iproute2")
    # Other services on the host may open or close listeners between the two reads: retry a few times.
    for _ in range(5):
        ss, ours = _ss_listening(), _ours_listening(engine)
        if ss == ours:
            break
    assert ours == ss
    assert any(port == my_sockets["srv"].getsockname()[1] for _, _, port, _ in ours)


def test_live_ss_process_attribution(engine, my_sockets):
    """pid/fd agree with `ss -p` for every listener both can attribute."""
    out = subprocess.run(["ss", "-ltnHp"], capture_output=True, text=True, check=True).stdout
    me = os.getpid()
    port = my_sockets["srv"].getsockname()[1]
    line = next(line for line in out.splitlines() if line.split()[3].endswith(f":{port}"))
    assert f"pid={me},fd={my_sockets['srv'].fileno()}" in line
    rows = engine.query(f"SELECT pid, fd FROM listening_ports WHERE port = {port} AND protocol = 6").rows
    assert rows == [(me, my_sockets["srv"].fileno())]
