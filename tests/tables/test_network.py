"""Networking tables: fixture trees for every parser, live checks against /proc, `ip`, iptables and libc."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from collector.tables import _netlink
from tests.tables.fsutil import text_lines


def _ip(*args: str) -> str:
    if shutil.which("ip") is None:
        pytest.skip("iproute2 not installed")
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


# --- arp_cache --------------------------------------------------------------------------------------

def test_arp_cache_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "arp_cache").query("SELECT * FROM arp_cache").dicts()
    assert rows == [
        {"address": "10.0.0.1", "mac": "52:54:00:12:34:56", "interface": "eth0", "permanent": "0"},
        {"address": "10.0.0.9", "mac": "52:54:00:aa:bb:cc", "interface": "eth0", "permanent": "1"},
        {"address": "10.0.0.7", "mac": "00:00:00:00:00:00", "interface": "eth1", "permanent": "0"},
    ]


def test_arp_cache_live(engine):
    with open("/proc/net/arp") as f:
        expected = {(l.split()[0], l.split()[3]) for l in f.read().splitlines()[1:] if len(l.split()) == 6}
    got = {(r["address"], r["mac"]) for r in engine.query("SELECT * FROM arp_cache").dicts()}
    assert got == expected


# --- interface_addresses ----------------------------------------------------------------------------

def test_interface_addresses_live_vs_ip(engine):
    expected = set()
    for line in _ip("-o", "addr").splitlines():
        f = line.split()
        name, fam, cidr = f[1], f[2], f[3]
        net = ipaddress.ip_interface(cidr)
        addr = str(net.ip) + (f"%{name}" if fam == "inet6" and net.ip.is_link_local else "")
        expected.add((f[-1] if fam == "inet" and "brd" not in f else name, addr, str(net.netmask)))
    rows = engine.query("SELECT * FROM interface_addresses").dicts()
    got = {(r["interface"], r["address"], r["mask"]) for r in rows}
    assert {(n, a) for n, a, _ in got} >= {(n, a) for n, a, _ in expected if n in {x[0] for x in got}}
    assert {a for _, a, _ in got} == {a for _, a, _ in expected}
    assert {(a, m) for _, a, m in got} == {(a, m) for _, a, m in expected}
    for line in _ip("-o", "-4", "addr").splitlines():
        f = line.split()
        if "brd" in f:
            ip = str(ipaddress.ip_interface(f[3]).ip)
            assert any(r["address"] == ip and r["broadcast"] == f[f.index("brd") + 1] for r in rows)
    assert all(r["type"] == "unknown" for r in rows)


def test_netlink_address_parser_ptp():
    # A hand-built RTM_NEWADDR: IPv4 peer address (IFA_LOCAL != IFA_ADDRESS) with a label.
    def attr(t, v):
        v = v + b"\0" * ((4 - len(v) % 4) % 4)
        return struct.pack("=HH", 4 + len(v.rstrip(b"\0")) if t == 3 else 4 + len(v), t) + v
    body = struct.pack("=BBBBI", socket.AF_INET, 32, 0, 0, 7)
    body += attr(1, socket.inet_aton("10.9.9.2")) + attr(2, socket.inet_aton("10.9.9.1")) + attr(3, b"tun0\0")
    msg = struct.pack("=IHHII", 16 + len(body), _netlink.RTM_NEWADDR, 2, 1, 0) + body
    (a,) = list(_netlink.addresses(msg))
    assert a == {"family": socket.AF_INET, "prefixlen": 32, "index": 7, "scope": 0,
                 "address": "10.9.9.2", "local": "10.9.9.1", "label": "tun0"}
    from collector.table import Context
    from collector.tables.interfaces import INTERFACE_ADDRESSES_SPEC, _address_row
    row = _address_row(a, "tun0", {"tun0": 0x10}, Context(INTERFACE_ADDRESSES_SPEC, {}, None))
    assert row == {"interface": "tun0", "address": "10.9.9.1", "mask": "255.255.255.255",
                   "point_to_point": "10.9.9.2", "type": "unknown"}


def test_interface_addresses_fixture_ipv6(engine_at, fixtures):
    r = engine_at(fixtures / "interfaces").query("SELECT interface, address, mask FROM interface_addresses")
    assert r.rows == [("eth0", "fe80::fc:ff:fe00:1%eth0", "ffff:ffff:ffff:ffff::"),
                      ("lo", "::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")]
    assert any("IPv4" in w for w in r.warnings)


# --- interface_details ------------------------------------------------------------------------------

def test_interface_details_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "interfaces").query("SELECT * FROM interface_details").dicts()
    assert [r["interface"] for r in rows] == ["lo", "eth0"]
    lo, eth = rows
    assert eth["mac"] == "52:54:00:ab:cd:ef" and eth["type"] == 1 and eth["mtu"] == 1500
    assert eth["flags"] == 0x1103 | 0x40 | 0x10000  # UP|BROADCAST|MULTICAST + RUNNING + LOWER_UP
    assert (eth["ipackets"], eth["opackets"], eth["ibytes"], eth["obytes"]) == (11, 22, 33, 44)
    assert (eth["ierrors"], eth["oerrors"], eth["idrops"], eth["odrops"], eth["collisions"]) == (55, 66, 77, 88, 99)
    assert eth["link_speed"] == 1000 and eth["pci_slot"] == "0000:00:03.0" and eth["last_change"] == -1
    assert lo["type"] == 772 and lo["link_speed"] == 0 and lo["pci_slot"] == "-1" and lo["metric"] == 0


def test_interface_details_live(engine):
    rows = {r["interface"]: r for r in engine.query("SELECT * FROM interface_details").dicts()}
    assert set(rows) == set(os.listdir("/sys/class/net"))
    for line in _ip("-o", "link").splitlines():
        f = line.split()
        name = f[1].rstrip(":").split("@")[0]
        r = rows[name]
        assert r["mtu"] == int(f[f.index("mtu") + 1])
        if "link/ether" in f:
            assert r["mac"] == f[f.index("link/ether") + 1]
        flags = f[2].strip("<>").split(",")
        assert bool(r["flags"] & 0x1) == ("UP" in flags)
        assert bool(r["flags"] & 0x8) == ("LOOPBACK" in flags)
        assert bool(r["flags"] & 0x10000) == ("LOWER_UP" in flags)
    # Counters only grow: compare with /proc/net/dev read before and after.
    with open("/proc/net/dev") as fh:
        dev = {l.split(":")[0].strip(): l.split(":")[1].split() for l in fh.read().splitlines()[2:]}
    again = {r["interface"]: r for r in engine.query("SELECT interface, ibytes, opackets FROM interface_details").dicts()}
    for name, fields in dev.items():
        assert rows[name]["ibytes"] <= int(fields[0]) <= again[name]["ibytes"]
        assert rows[name]["opackets"] <= int(fields[9]) <= again[name]["opackets"]


def test_interface_flags_match_ioctl(engine):
    import fcntl
    rows = engine.query("SELECT interface, flags FROM interface_details").dicts()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for r in rows:
            raw = fcntl.ioctl(s.fileno(), 0x8913, struct.pack("16sH14x", r["interface"].encode(), 0))  # SIOCGIFFLAGS
            assert r["flags"] & 0xFFFF == struct.unpack_from("H", raw, 16)[0]


# --- interface_ipv6 ---------------------------------------------------------------------------------

def test_interface_ipv6_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "interfaces").query("SELECT * FROM interface_ipv6").rows
    # eth0 forwards: redirects need all AND iface (0); accept_ra=2 accepts anyway. lo: all OR iface.
    assert rows == [("lo", 64, 0, 1, 1), ("eth0", 255, 1, 0, 1)]


def test_interface_ipv6_live(engine):
    for iface, hop, fwd, _redir, _ra in engine.query("SELECT * FROM interface_ipv6").rows:
        base = f"/proc/sys/net/ipv6/conf/{iface}"
        if os.path.exists(base):
            assert hop == int(Path(base + "/hop_limit").read_text())
            assert fwd == int(Path(base + "/forwarding").read_text())


# --- routes -----------------------------------------------------------------------------------------

def test_routes_live_vs_ip(engine):
    rows = engine.query("SELECT * FROM routes").dicts()
    for fam in ("-4", "-6"):
        for line in _ip(fam, "route", "show", "table", "all").splitlines():
            f = line.split()
            kind = f[0] if f[0] in ("local", "broadcast", "multicast", "unreachable", "anycast") else None
            dest = f[1] if kind else f[0]
            if dest == "default":
                dest = "0.0.0.0/0" if fam == "-4" else "::/0"
            net = ipaddress.ip_network(dest, strict=False)
            match = [r for r in rows if r["destination"] == str(net.network_address) and r["netmask"] == net.prefixlen
                     and ("dev" not in f or r["interface"] == f[f.index("dev") + 1])]
            assert match, line
            if "via" in f:
                assert any(r["gateway"] == f[f.index("via") + 1] for r in match), line
            if "src" in f:
                assert any(r["source"] == f[f.index("src") + 1] for r in match), line
            if "metric" in f:
                assert any(r["metric"] == int(f[f.index("metric") + 1]) for r in match), line
            if kind in ("local", "broadcast"):
                assert any(r["type"] == kind for r in match), line
    assert engine.query("SELECT count(*) FROM routes WHERE type = 'gateway'").rows[0][0] >= 1


def test_routes_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "routes").query(
        "SELECT destination, netmask, gateway, interface, mtu, metric, type FROM routes").rows
    assert rows == [
        ("0.0.0.0", 0, "10.0.2.1", "eth0", 0, 100, "gateway"),
        ("10.0.0.0", 24, None, "eth0", 1500, 0, "gateway"),
        ("fd00::", 64, None, "eth0", 0, 256, "gateway"),
        ("::", 0, "fd00::1", "eth0", 0, 1024, "gateway"),
        ("::1", 128, None, "lo", 0, 0, "local"),
    ]


# --- iptables ---------------------------------------------------------------------------------------

def test_iptables_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "iptables").query("SELECT * FROM iptables").dicts()
    rules = [r for r in rows if r["target"] is not None]
    chains = [(r["chain"], r["policy"]) for r in rows if r["target"] is None]
    assert chains == [("INPUT", "ACCEPT"), ("FORWARD", "ACCEPT"), ("OUTPUT", "ACCEPT"), ("QTEST", "")]
    drop, jump, udp, ret = rules
    assert (drop["chain"], drop["target"], drop["protocol"], drop["dst_port"], drop["src_port"]) == (
        "INPUT", "DROP", 6, "2222:2222", "0:65535")
    assert (drop["src_ip"], drop["src_mask"], drop["iniface"], drop["iniface_mask"]) == (
        "10.1.2.0", "255.255.255.0", "eth0", "FFFFFFFFFF")
    assert (jump["chain"], jump["target"], jump["outiface"], jump["outiface_mask"], jump["src_port"]) == (
        "OUTPUT", "QTEST", "!lo", "FFFFFF", "")
    assert (udp["chain"], udp["policy"], udp["protocol"], udp["src_port"], udp["target"]) == (
        "QTEST", "", 17, "53:53", "ACCEPT")
    assert ret["target"] == "RETURN" and all(r["match"] == "yes" and r["filter_name"] == "filter" for r in rules)


def test_iptables_absent_source(engine_at, tmp_path):
    assert engine_at(tmp_path).query("SELECT * FROM iptables").rows == []


@pytest.fixture
def legacy_rule():
    tool = shutil.which("iptables-legacy")
    if tool is None or os.geteuid() != 0:
        pytest.skip("iptables-legacy not installed (apt-get install iptables) or not root")
    spec = ["INPUT", "-p", "tcp", "--dport", "4711", "-s", "198.51.100.0/24", "-m", "comment", "--comment",
            "quarry-test", "-j", "REJECT"]
    if subprocess.run([tool, "-A", *spec], capture_output=True).returncode != 0:
        pytest.skip("kernel has no legacy ip_tables support")
    try:
        yield tool
    finally:
        subprocess.run([tool, "-D", *spec], check=True)


def test_iptables_live_rule(engine, legacy_rule):
    rows = engine.query("SELECT * FROM iptables WHERE chain = 'INPUT' AND dst_port = '4711:4711'").dicts()
    assert len(rows) == 1
    r = rows[0]
    assert (r["filter_name"], r["target"], r["protocol"], r["src_ip"], r["src_mask"]) == (
        "filter", "REJECT", 6, "198.51.100.0", "255.255.255.0")
    save = subprocess.run([legacy_rule + "-save" if not legacy_rule.endswith("-legacy") else
                           legacy_rule.replace("iptables-legacy", "iptables-legacy-save"), "-c"],
                          capture_output=True, text=True).stdout
    n_rules = sum(1 for l in save.splitlines() if " -A " in l or l.startswith("-A "))
    n_chains = sum(1 for l in save.splitlines() if l.startswith(":"))
    total = engine.query("SELECT count(*) FROM iptables").rows[0][0]
    assert total == n_rules + n_chains


# --- etc_hosts / etc_services / etc_protocols -------------------------------------------------------

def test_etc_hosts_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "etc_files").query("SELECT address, hostnames, pid_with_namespace FROM etc_hosts").rows
    assert rows == [("127.0.0.1", "localhost", 0), ("::1", "localhost ip6-localhost ip6-loopback", 0),
                    ("10.1.1.1", "alone", 0), ("192.168.1.5", None, 0)]


def test_etc_hosts_live(engine):
    rows = engine.query("SELECT address, hostnames FROM etc_hosts").rows
    with open("/etc/hosts") as f:
        expected = [l.split("#")[0].split() for l in f if l.split("#")[0].split()]
    assert [(a, h) for a, h in rows] == [(e[0], " ".join(e[1:]) or None) for e in expected]


def test_etc_services_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "etc_files").query("SELECT * FROM etc_services").rows
    assert rows == [
        ("tcpmux", 1, "tcp", "", "TCP port service multiplexer"),
        ("ssh", 22, "tcp", "secure-shell", "SSH Remote Login Protocol"),
        ("smtp", 25, "tcp", "mail", None),
        ("x", 9, "udp", "a b", "part1 # part2"),
    ]


def test_etc_services_live_vs_libc(engine):
    rows = engine.query("SELECT name, port, protocol FROM etc_services").rows
    if not rows:
        pytest.skip("no /etc/services")
    assert len(rows) == sum(1 for l in text_lines("/etc/services") if l.strip() and not l.startswith("#"))
    for name, port, proto in rows[:40]:
        assert socket.getservbyname(name, proto) == port or socket.getservbyport(port, proto)


def test_etc_protocols_fixture_and_live(engine, engine_at, fixtures):
    rows = engine_at(fixtures / "etc_files").query("SELECT * FROM etc_protocols").rows
    assert rows == [("ip", 0, "IP", "internet protocol, pseudo protocol number"), ("tcp", 6, "TCP", None),
                    ("bare", 99, None, None)]
    for name, number in engine.query("SELECT name, number FROM etc_protocols").rows:
        assert socket.getprotobyname(name) == number


# --- dns_resolvers ----------------------------------------------------------------------------------

def test_dns_resolvers_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "dns_resolvers").query("SELECT * FROM dns_resolvers").rows
    opts = 0x1 | 0x2C0 | 0x4000 | 0x100000  # RES_INIT | RES_DEFAULT | rotate | edns0
    assert rows == [
        (0, "nameserver", "192.0.2.53", "32", opts), (1, "nameserver", "2001:db8::1", "128", opts),
        (2, "nameserver", "198.51.100.1", "32", opts),
        (0, "sortlist", "130.155.160.0", "20", opts), (1, "sortlist", "10.0.0.0", "8", opts),
        (0, "search", "corp.example", None, opts), (1, "search", "lab.example", None, opts),
    ]


def test_dns_resolvers_default_search_from_hostname():
    from collector.tables.dns_resolvers import parse
    rows = list(parse("nameserver 10.0.0.2\n", "box.example.org"))
    assert rows[-1]["type"] == "search" and rows[-1]["address"] == "example.org" and rows[0]["options"] == 705


def test_dns_resolvers_live(engine):
    with open("/etc/resolv.conf") as f:
        ns = [l.split()[1] for l in f if l.split()[:1] == ["nameserver"]][:3]
    got = engine.query("SELECT address FROM dns_resolvers WHERE type = 'nameserver' ORDER BY id").rows
    assert [a for (a,) in got] == ns
