"""Package tables: dpkg, rpm, portage, python, npm, apt and yum, on fixture trees and on this host."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import sqlite3
import struct
import subprocess

import pytest

from collector.tables import _rpmheader as H


@pytest.fixture
def at(engine_at, fixtures):
    def make(name: str, root=None):
        return engine_at(root or fixtures / name)
    return make


@pytest.fixture
def live(engine):
    return engine


# --- deb ---------------------------------------------------------------------------------------------

def test_deb_packages_fixture(at):
    rows = {r["name"]: r for r in at("deb_packages").query("SELECT * FROM deb_packages").dicts()}
    assert set(rows) == {"alpha", "beta", "libdelta"}  # not-installed 'gamma' is skipped, config-files kept
    a = rows["alpha"]
    assert a["version"] == "1:2.5.0-3ubuntu1" and a["revision"] == "3ubuntu1"
    assert a["source"] == "alpha-src (1.0-1)" and a["size"] == 120 and a["arch"] == "amd64"
    assert a["status"] == "install ok installed" and a["maintainer"] == "Alice <alice@example.org>"
    assert a["section"] == "utils" and a["priority"] == "optional" and a["admindir"] == "/var/lib/dpkg"
    assert rows["beta"]["status"] == "deinstall ok config-files" and rows["beta"]["revision"] == ""
    assert rows["beta"]["source"] is None


def test_deb_admindir_and_namespace_constraints(at, fixtures):
    e = at("deb_packages")
    assert e.query("SELECT count(*) FROM deb_packages WHERE admindir = '/nonexistent'").rows == [(0,)]
    assert e.query("SELECT count(*) FROM deb_packages WHERE admindir = '/var/lib/dpkg'").rows == [(3,)]


def test_deb_package_files_fixture(at):
    e = at("deb_packages")
    paths = [r[0] for r in e.query("SELECT path FROM deb_package_files WHERE package = 'alpha'").rows]
    assert paths == ["/.", "/usr", "/usr/bin", "/usr/bin/alpha", "/usr/share/doc/alpha/copyright"]
    # Multi-Arch: same list name <pkg>:<arch>.list
    assert e.query("SELECT path FROM deb_package_files WHERE package = 'libdelta'").rows == [
        ("/usr/lib/x86_64-linux-gnu/libdelta.so.2",)]
    assert e.query("SELECT count(*) FROM deb_package_files").rows == [(7,)]


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="no dpkg on this host")
def test_deb_packages_live_vs_dpkg_query(live):
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\t${db:Status-Abbrev}\n"],
                         capture_output=True, text=True, check=True).stdout
    expected = {tuple(line.split("\t")[:3]) for line in out.splitlines() if line}
    got = {(n, v, a) for n, v, a in live.query("SELECT name, version, arch FROM deb_packages").rows}
    assert got == expected


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="no dpkg on this host")
def test_deb_package_files_live_vs_dpkg_query(live):
    pkg = live.query("SELECT name FROM deb_packages WHERE status = 'install ok installed' AND name LIKE 'lib%' "
                     "LIMIT 1").rows[0][0]
    out = subprocess.run(["dpkg-query", "-L", pkg], capture_output=True, text=True, check=True).stdout
    expected = [p for p in out.splitlines() if p and not p.startswith("package diverts")]
    got = [r[0] for r in live.query(f"SELECT path FROM deb_package_files WHERE package = '{pkg}'").rows]
    assert got[: len(expected)] == expected


# --- rpm ---------------------------------------------------------------------------------------------

def encode_header(tags: dict[int, tuple[int, object]]) -> bytes:
    """A minimal rpm header encoder (il, dl, index, data store) for fixtures."""
    index, data = [], b""
    for tag, (typ, value) in sorted(tags.items()):
        align = {H.INT16: 2, H.INT32: 4, H.INT64: 8}.get(typ, 1)
        data += b"\0" * (-len(data) % align)
        off = len(data)
        if typ == H.STRING:
            data += value.encode() + b"\0"; count = 1
        elif typ == H.STRING_ARRAY:
            data += b"".join(v.encode() + b"\0" for v in value); count = len(value)
        elif typ == H.BIN:
            data += value; count = len(value)
        else:
            fmt = {H.INT16: "H", H.INT32: "I", H.INT64: "Q"}[typ]
            data += struct.pack(">" + fmt * len(value), *value); count = len(value)
        index.append(struct.pack(">IIII", tag, typ, off, count))
    # A leading region tag as rpm writes it (must be ignored by the parser).
    region = struct.pack(">IIII", 63, H.BIN, len(data), 16)
    data += struct.pack(">IIII", 63, H.BIN, -(len(index) + 1) * 16 & 0xFFFFFFFF, 16)
    return struct.pack(">II", len(index) + 1, len(data)) + region + b"".join(index) + data


@pytest.fixture
def rpm_root(tmp_path):
    db = tmp_path / "var/lib/rpm"
    db.mkdir(parents=True)
    conn = sqlite3.connect(db / "rpmdb.sqlite")
    conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    bash = encode_header({
        H.NAME: (H.STRING, "bash"), H.VERSION: (H.STRING, "5.1.8"), H.RELEASE: (H.STRING, "6.el9"),
        H.EPOCH: (H.INT32, [2]), H.ARCH: (H.STRING, "x86_64"), H.SIZE: (H.INT32, [7738634]),
        H.SOURCERPM: (H.STRING, "bash-5.1.8-6.el9.src.rpm"), H.INSTALLTIME: (H.INT32, [1700000000]),
        H.VENDOR: (H.STRING, "Rocky"), H.GROUP: (H.STRING, "Unspecified"),
        H.SHA1HEADER: (H.STRING, "0123456789abcdef0123456789abcdef01234567"),
        H.DIRNAMES: (H.STRING_ARRAY, ["/usr/bin/", "/etc/skel/"]),
        H.BASENAMES: (H.STRING_ARRAY, ["bash", "sh", ".bashrc"]), H.DIRINDEXES: (H.INT32, [0, 0, 1]),
        H.FILEUSERNAME: (H.STRING_ARRAY, ["root", "root", "root"]),
        H.FILEGROUPNAME: (H.STRING_ARRAY, ["root", "root", "wheel"]),
        H.FILEMODES: (H.INT16, [0o100755, 0o120777, 0o100644]), H.FILESIZES: (H.INT32, [1389064, 4, 141]),
        H.FILEDIGESTS: (H.STRING_ARRAY, ["aa" * 32, "", "bb" * 32]), H.FILEDIGESTALGO: (H.INT32, [8]),
    })
    key = encode_header({H.NAME: (H.STRING, "gpg-pubkey"), H.VERSION: (H.STRING, "350d275d"),
                         H.RELEASE: (H.STRING, "6395f2a0"), H.SIZE: (H.INT32, [0])})
    md5 = encode_header({H.NAME: (H.STRING, "old"), H.VERSION: (H.STRING, "1"), H.RELEASE: (H.STRING, "1"),
                         H.ARCH: (H.STRING, "noarch"), H.LONGSIZE: (H.INT64, [5 << 32]),
                         H.DIRNAMES: (H.STRING_ARRAY, ["/opt/"]), H.BASENAMES: (H.STRING_ARRAY, ["x"]),
                         H.DIRINDEXES: (H.INT32, [0]), H.FILEDIGESTS: (H.STRING_ARRAY, ["cc" * 16])})
    for blob in (bash, key, md5, b"\x00\x00\x00\xff garbage"):
        conn.execute("INSERT INTO Packages (blob) VALUES (?)", (blob,))
    conn.commit()
    conn.close()
    return tmp_path


def test_rpm_packages_fixture(at, rpm_root):
    r = at("", rpm_root).query("SELECT * FROM rpm_packages")
    rows = {x["name"]: x for x in r.dicts()}
    assert set(rows) == {"bash", "gpg-pubkey", "old"}
    b = rows["bash"]
    assert (b["version"], b["release"], b["epoch"], b["arch"]) == ("5.1.8", "6.el9", 2, "x86_64")
    assert b["size"] == 7738634 and b["source"] == "bash-5.1.8-6.el9.src.rpm" and b["install_time"] == 1700000000
    assert b["vendor"] == "Rocky" and b["package_group"] == "Unspecified" and b["sha1"].startswith("0123")
    assert rows["gpg-pubkey"]["epoch"] is None and rows["old"]["size"] == 5 << 32
    assert any("could not be parsed" in w for w in r.warnings)


def test_rpm_package_files_fixture(at, rpm_root):
    rows = at("", rpm_root).query("SELECT * FROM rpm_package_files WHERE package = 'bash'").dicts()
    assert [r["path"] for r in rows] == ["/usr/bin/bash", "/usr/bin/sh", "/etc/skel/.bashrc"]
    assert [r["mode"] for r in rows] == ["0755", "0777", "0644"]
    assert rows[2]["groupname"] == "wheel" and rows[0]["size"] == 1389064 and rows[0]["sha256"] == "aa" * 32
    old = at("", rpm_root).query("SELECT path, sha256 FROM rpm_package_files WHERE package = 'old'").rows
    assert old == [("/opt/x", "")]  # MD5 digests are not sha256


def test_rpm_database_is_opened_read_only(at, rpm_root):
    db = rpm_root / "var/lib/rpm/rpmdb.sqlite"
    before = (db.stat().st_mtime_ns, db.read_bytes())
    at("", rpm_root).query("SELECT * FROM rpm_packages")
    assert (db.stat().st_mtime_ns, db.read_bytes()) == before
    assert not (db.parent / "rpmdb.sqlite-wal").exists()


def test_rpm_bdb_is_noted(at, tmp_path):
    (tmp_path / "var/lib/rpm").mkdir(parents=True)
    (tmp_path / "var/lib/rpm/Packages").write_bytes(b"\0" * 64)
    r = at("", tmp_path).query("SELECT * FROM rpm_packages")
    assert r.rows == [] and any("not supported" in w for w in r.warnings)


def test_rpm_absent_on_debian_host(live):
    if os.path.exists("/var/lib/rpm"):
        pytest.skip("host has an rpm database")
    assert live.query("SELECT * FROM rpm_packages").rows == []


# --- portage, python, npm ----------------------------------------------------------------------------

def test_portage_fixture(at):
    rows = at("portage_packages").query("SELECT * FROM portage_packages ORDER BY package").dicts()
    assert rows == [
        {"package": "app-editors/vim", "version": "9.0.1678-r1", "slot": "0", "build_time": 1700000000,
         "repository": "gentoo", "eapi": 8, "size": 4242, "world": 1},
        {"package": "dev-lang/python", "version": "3.11.8_p1", "slot": "3.11", "build_time": 1690000000,
         "repository": "gentoo", "eapi": 7, "size": 99999, "world": 0},
    ]


def test_python_packages_fixture(at):
    rows = {r["name"]: r for r in at("python_packages").query("SELECT * FROM python_packages").dicts()}
    assert set(rows) == {"requests", "chardet", "single", "tool"}
    r = rows["requests"]
    assert (r["version"], r["summary"], r["author"], r["license"]) == (
        "2.31.0", "Python HTTP for Humans.", "Kenneth Reitz", "Apache 2.0")
    assert r["path"] == "/usr/lib/python3/dist-packages/requests-2.31.0.dist-info"
    assert r["directory"] == "/usr/lib/python3/dist-packages" and r["uid"] is None
    assert rows["tool"]["license"] == "MIT" and rows["chardet"]["license"] == "LGPL"
    only = at("python_packages").query(
        "SELECT name FROM python_packages WHERE directory = '/usr/local/lib/python3.11/site-packages'").rows
    assert only == [("tool",)]


def test_python_packages_live_vs_importlib(live):
    rows = live.query("SELECT name, version, directory FROM python_packages").rows
    by_dir: dict[str, set] = {}
    for name, version, d in rows:
        by_dir.setdefault(d, set()).add((name, version))
    for d, got in by_dir.items():
        expected = {(dist.metadata["Name"], dist.version) for dist in importlib.metadata.distributions(path=[d])}
        assert got == expected, d


def test_npm_fixture(at):
    e = at("npm_packages")
    rows = {r["name"]: r for r in e.query("SELECT * FROM npm_packages").dicts()}
    assert set(rows) == {"left-pad", "@scope/thing", "dep", "deeper"}
    lp = rows["left-pad"]
    assert (lp["version"], lp["author"], lp["license"], lp["depth"]) == ("1.3.0", "azer", "WTFPL", 0)
    assert lp["path"] == "/usr/lib/node_modules/left-pad" and lp["directory"] == "/usr/lib"
    assert rows["@scope/thing"]["license"] == "MIT" and rows["deeper"]["depth"] == 2
    assert {r[0] for r in e.query("SELECT name FROM npm_packages WHERE max_depth = 0").rows} == {
        "left-pad", "@scope/thing"}
    assert e.query("SELECT name, depth FROM npm_packages WHERE directory = '/srv/app'").rows == [("localpkg", 0)]


def test_npm_live_global_matches_package_json(live):
    import json
    for path, version in live.query("SELECT path, version FROM npm_packages WHERE max_depth = 0").rows:
        with open(os.path.join(path, "package.json")) as f:
            assert json.load(f)["version"] == version


# --- apt, yum ----------------------------------------------------------------------------------------

def test_apt_sources_fixture(at):
    r = at("apt_sources").query("SELECT * FROM apt_sources")
    rows = {x["name"]: x for x in r.dicts()}
    assert set(rows) == {"archive.example.com/ubuntu jammy", "repo.example.net/apt stable",
                         "flat.example.org/repo ./", "vendor.example.io/debian bookworm",
                         "vendor.example.io/debian bookworm-updates"}
    j = rows["archive.example.com/ubuntu jammy"]
    assert j["source"] == "/etc/apt/sources.list" and j["base_uri"] == "http://archive.example.com/ubuntu"
    assert (j["release"], j["version"], j["maintainer"]) == ("jammy", "22.04", "Ubuntu")  # not the forged one
    assert j["components"] == "main restricted universe multiverse" and j["architectures"] == "amd64 i386"
    v = rows["vendor.example.io/debian bookworm"]
    assert v["source"] == "/etc/apt/sources.list.d/vendor.sources" and v["version"] == "12.5"
    assert rows["vendor.example.io/debian bookworm-updates"]["version"] is None
    assert any("Release" in w for w in r.warnings)


def test_apt_sources_live_vs_apt_lists(live):
    for base_uri, release in live.query("SELECT base_uri, release FROM apt_sources").rows:
        assert "://" in base_uri and not base_uri.endswith("/")


def test_yum_sources_fixture(at):
    rows = {r["name"]: r for r in at("yum_sources").query("SELECT * FROM yum_sources").dicts()}
    assert set(rows) == {"Local repo", "Rocky Linux $releasever - BaseOS", "EPEL"}
    assert rows["Local repo"]["source"] == "/etc/yum.conf" and rows["Local repo"]["enabled"] == "0"
    b = rows["Rocky Linux $releasever - BaseOS"]
    assert b["baseurl"] is None and b["mirrorlist"].startswith("https://mirrors") and b["gpgcheck"] == "1"
    assert rows["EPEL"]["baseurl"] == "http://a.example.org/epel/ http://b.example.org/epel/"
    assert rows["EPEL"]["metalink"].startswith("https://mirrors.example.org/metalink")
