"""osquery's SQL functions and collations (osquery.md §7.2) through the engine, with exact values."""

from __future__ import annotations

import math
import os
import shutil
import time

import pytest

from collector.errors import QueryError


def one(engine, sql: str):
    rows = engine.query(sql).rows
    assert len(rows) == 1
    return rows[0][0] if len(rows[0]) == 1 else rows[0]


def fails(engine, sql: str, message: str) -> None:
    with pytest.raises(QueryError) as e:
        engine.query(sql)
    assert str(e.value) == message


# --- split / regex ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sql, want", [
    ("split('192.168.0.1', '.', 1)", "168"),
    ("split('192.168.0.1', '.0', 0)", "192"),  # any character of tokens splits
    ("split('192.168.0.1', '.0', 2)", "1"),  # empty pieces between '.' and '0' are dropped
    ("split(' a , b ,c', ',', 1)", "b"),  # pieces are trimmed
    ("split('a,,b', ',', 1)", "b"),
    ("split('a, ,b', ',', 1)", ""),  # dropped only if empty before trimming, as osquery::split
    ("split('a,b', ',', 2)", None),
    ("split('a,b', ',', -1)", None),
    ("split('a,b', ',', '1')", "b"),  # index converts like sqlite3_value_int
    ("split(12345, 3, 1)", "45"),  # numbers are split as their text
    ("split(NULL, ',', 0)", None),
    ("split('a', NULL, 0)", None),
    ("split('a', ',', NULL)", None),
    ("split('', ',', 0)", None),
])
def test_split(engine, sql, want):
    assert one(engine, f"select {sql}") == want


def test_split_empty_tokens_is_an_error(engine):
    fails(engine, "select split('a,b', '', 0)", "Invalid input to split function")
    fails(engine, "select regex_split('a,b', '', 0)", "Invalid input to split function")


@pytest.mark.parametrize("sql, want", [
    ("regex_split('192.168.0.1', '\\.', 1)", "168"),
    ("regex_split('192.168.0.1', '\\.0', 0)", "192.168"),
    ("regex_split('a1b22c333', '[0-9]+', 2)", "c"),
    ("regex_split('a1b22c333', '[0-9]+', 3)", None),  # a trailing empty piece is not yielded
    ("regex_split('1a', '[0-9]', 0)", ""),  # a leading empty piece is
    ("regex_split('abc', 'x', 0)", "abc"),
    ("regex_split('a(1)b', '\\(1\\)', 1)", "b"),
    ("regex_split('a-b_c', '([-_])', 1)", "b"),  # capture groups are not returned as pieces
    ("regex_split(NULL, ',', 0)", None),
])
def test_regex_split(engine, sql, want):
    assert one(engine, f"select {sql}") == want


@pytest.mark.parametrize("sql, want", [
    ("regex_match('foo123bar', '[0-9]+', 0)", "123"),
    ("regex_match('foo123bar', '([a-z]+)([0-9]+)', 1)", "foo"),
    ("regex_match('foo123bar', '([a-z]+)([0-9]+)', 2)", "123"),
    ("regex_match('foo123bar', '([a-z]+)([0-9]+)', 3)", None),
    ("regex_match('foo', '[0-9]+', 0)", None),
    ("regex_match('ab', 'a(x)?b', 1)", ""),  # an unmatched group is empty, as std::smatch
    ("regex_match('Linux 6.1.0-amd64', '([[:digit:]]+)\\.([[:digit:]]+)', 2)", "1"),  # POSIX classes
    ("regex_match('abc' || char(10), 'c$', 0)", None),  # ECMAScript $ does not match before a newline
    ("regex_match('abc', 'c$', 0)", "c"),
    ("regex_match('x=é', '\\w+', 0)", "x"),  # \\w is ASCII as in std::regex on bytes
    ("regex_match(NULL, 'a', 0)", None),
    ("regex_match('a', NULL, 0)", None),
    ("regex_match('a', 'a', NULL)", None),
])
def test_regex_match(engine, sql, want):
    assert one(engine, f"select {sql}") == want


def test_regex_errors(engine):
    fails(engine, "select regex_match('a', '(', 0)", "Invalid regex")
    fails(engine, "select regex_split('a', '[', 0)", "Invalid regex")
    big = "a" * 257
    fails(engine, f"select regex_match('a', '{big}', 0)", "Invalid regex: too big, max size is 256 bytes")
    fails(engine, f"select regex_split('a', '{big}', 0)", "Invalid regex")
    assert one(engine, f"select regex_match('{'a' * 256}', '{'a' * 256}', 0)") == "a" * 256


@pytest.mark.parametrize("sql, want", [
    ("inet_aton('1.0.1.5')", 16777477),
    ("inet_aton('255.255.255.255')", 4294967295),
    ("inet_aton('0.0.0.0')", 0),
    ("inet_aton('1.2.3')", None),
    ("inet_aton('256.1.1.1')", None),
    ("inet_aton('::1')", None),
    ("inet_aton('hello')", None),
    ("inet_aton(NULL)", None),
])
def test_inet_aton(engine, sql, want):
    assert one(engine, f"select {sql}") == want


@pytest.mark.parametrize("sql, want", [
    ("concat('a', 'b', 'c')", "abc"),
    ("concat('a', NULL, 1, 2.5)", "a12.5"),
    ("concat(NULL)", ""),
    ("concat()", None),
    ("concat_ws(',', 'a', 'b')", "a,b"),
    ("concat_ws(',', 'a', NULL, 'b')", "a,b"),
    ("concat_ws(',', NULL, 'b')", "b"),
    ("concat_ws(NULL, 'a', 'b')", "ab"),  # osquery: a NULL separator is empty
    ("concat_ws(' - ', 1, 2)", "1 - 2"),
    ("concat_ws(',')", None),
])
def test_concat(engine, sql, want):
    assert one(engine, f"select {sql}") == want


def test_concat_ws_without_separator(engine):
    fails(engine, "select concat_ws()", "Missing separator to concat_ws")


# --- hashing and encoding -------------------------------------------------------------------------------
def test_hashes(engine):
    assert one(engine, "select md5('abc')") == "900150983cd24fb0d6963f7d28e17f72"
    assert one(engine, "select sha1('abc')") == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert one(engine, "select sha256('abc')") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    assert one(engine, "select md5('')") == "d41d8cd98f00b204e9800998ecf8427e"
    assert one(engine, "select md5(123)") == "202cb962ac59075b964b07152d234b70"  # md5 of the text "123"
    assert one(engine, "select md5(NULL), sha1(NULL), sha256(NULL)") == (None, None, None)


# Published Community ID v1 examples (the spec's README and osquery's own tests).
COMMUNITY = [
    ("'128.232.110.120', '66.35.250.204', 34855, 80, 6", "1:LQU9qZlK+B5F3KDmev6m5PMibrg="),
    ("'128.232.110.120', '66.35.250.204', 34855, 80, 6, 1", "1:3V71V58M3Ksw/yuFALMcW0LAHvc="),
    ("'192.168.1.52', '8.8.8.8', 54585, 53, 17, 0", "1:d/FP5EW3wiY1vCndhwleRRKHowQ="),
    ("'192.168.1.52', '8.8.8.8', 54585, 53, 17, 1", "1:Q9We8WO3piVF8yEQBNJF4uiSVrI="),
    ("'192.168.170.8', '192.168.170.56', 7, 80, 132", "1:jQgCxbku+pNGw8WPbEc/TS/uTpQ="),
    ("'192.168.170.8', '192.168.170.56', 7, 80, 132, 1", "1:Y1/0jQg6e+I3ZwZZ9LP65DNbTXU="),
    ("'192.168.0.89', '192.168.0.1', 8, 0, 1", "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="),  # ICMP echo
    ("'127.0.0.1', 'fe80::14b0:de4a:f8e8:522f', 64, 10, 6", "1:Jww+Ua4pSUNl9TvSUwvSHL4n93w="),
]


@pytest.mark.parametrize("args, want", COMMUNITY)
def test_community_id_vectors(engine, args, want):
    assert one(engine, f"select community_id_v1({args})") == want
    assert one(engine, f"select community_id_v1_strict({args})") == want


@pytest.mark.parametrize("fwd, rev", [
    ("'10.0.0.1', '10.0.0.2', 40000, 443, 6", "'10.0.0.2', '10.0.0.1', 443, 40000, 6"),
    ("'2001:db8::1', '2001:db8::2', 5353, 53, 17", "'2001:db8::2', '2001:db8::1', 53, 5353, 17"),
    ("'10.0.0.5', '10.0.0.5', 2000, 1000, 6", "'10.0.0.5', '10.0.0.5', 1000, 2000, 6"),  # same host: by port
    ("'192.168.0.89', '192.168.0.1', 8, 0, 1", "'192.168.0.1', '192.168.0.89', 0, 0, 1"),  # echo / reply
    ("'fe80::1', 'fe80::2', 128, 0, 58", "'fe80::2', 'fe80::1', 129, 0, 58"),  # ICMPv6 echo / reply
])
def test_community_id_is_symmetric(engine, fwd, rev):
    a = one(engine, f"select community_id_v1({fwd}, 7)")
    assert a.startswith("1:") and len(a) == 30
    assert a == one(engine, f"select community_id_v1({rev}, 7)")


def test_community_id_direction_matters_for_one_way_icmp(engine):
    # Destination unreachable (type 3) has no counterpart: the tuple is hashed as given.
    a = one(engine, "select community_id_v1('10.0.0.1', '10.0.0.2', 3, 1, 1)")
    b = one(engine, "select community_id_v1('10.0.0.2', '10.0.0.1', 3, 1, 1)")
    assert a != b


def test_community_id_ports_ignored_for_portless_protocols(engine):
    a = one(engine, "select community_id_v1('10.0.0.1', '10.0.0.2', 1, 2, 47)")
    assert a == one(engine, "select community_id_v1('10.0.0.1', '10.0.0.2', 0, 0, 47)")


@pytest.mark.parametrize("args, message", [
    ("'192.168.1.52', 'foo', 10, 53, 17, 0", "Community ID daddr cannot be parsed as IP"),
    ("'foo', '192.168.1.52', 10, 53, 17", "Community ID saddr cannot be parsed as IP"),
    ("'192.168.1.52', '192.168.1.1', 10, 53, 17, 100000000", "Community ID seed must fit in 2 bytes"),
    ("'192.168.1.52', '192.168.1.1', 10, 53, 17, 'x'", "Community ID seed must be an integer"),
    ("1, '192.168.1.1', 10, 53, 17", "Community ID IPs must be strings"),
    ("'192.168.1.52', '192.168.1.1', '10', 53, 17", "Community ID ports must be integers"),
    ("'192.168.1.52', '192.168.1.1', 70000, 53, 17", "Community ID ports must fit in 2 bytes"),
    ("'192.168.1.52', '192.168.1.1', 10, 53, NULL", "Community ID protocol must be an integer"),
    ("'192.168.1.52', '192.168.1.1', 10, 53, 256", "Community ID protocol must fit in 1 byte"),
])
def test_community_id_errors(engine, args, message):
    assert one(engine, f"select community_id_v1({args})") is None  # lenient form: NULL + warning
    fails(engine, f"select community_id_v1_strict({args})", message)


@pytest.mark.parametrize("sql, want", [
    ("to_base64('hello')", "aGVsbG8="),
    ("to_base64('')", ""),
    ("to_base64(NULL)", None),
    ("to_base64(x'00ff')", "AP8="),
    ("from_base64('aGVsbG8=')", "hello"),
    ("from_base64('aGVsbG8')", "hello"),  # padding is optional
    ("from_base64('aGVs' || char(10) || 'bG8=')", "hello"),  # newlines are ignored
    ("from_base64('!!!')", ""),  # invalid input decodes to the empty string
    ("from_base64('AP8=')", b"\x00\xff"),  # bytes that are not UTF-8 come back as a BLOB
    ("from_base64(NULL)", None),
    ("conditional_to_base64('plain text')", "plain text"),
    ("conditional_to_base64('tab' || char(9))", "dGFiCQ=="),
    ("conditional_to_base64('é')", "w6k="),
    ("conditional_to_base64(NULL)", None),
])
def test_base64(engine, sql, want):
    assert one(engine, f"select {sql}") == want


@pytest.mark.parametrize("sql, want", [
    ("in_cidr_block('10.0.0.0/8', '10.1.2.3')", 1),
    ("in_cidr_block('10.0.0.0/8', '11.0.0.1')", 0),
    ("in_cidr_block('192.168.1.0/24', '192.168.1.0')", 0),  # network address: not a host (osquery)
    ("in_cidr_block('192.168.1.0/24', '192.168.1.255')", 0),  # broadcast: not a host (osquery)
    ("in_cidr_block('192.168.1.7/32', '192.168.1.7')", 1),
    ("in_cidr_block('192.168.1.5/24', '192.168.1.9')", 1),  # host bits in the block are ignored
    ("in_cidr_block('2001:db8::/32', '2001:db8::1')", 1),
    ("in_cidr_block('2001:db8::/32', '2001:db8::')", 1),
    ("in_cidr_block('2001:db8::/32', '2001:db9::1')", 0),
])
def test_in_cidr_block(engine, sql, want):
    assert one(engine, f"select {sql}") == want


@pytest.mark.parametrize("args, message", [
    ("NULL, '1.1.1.1'", "CIDR must be a string"),
    ("'10.0.0.0/8', 5", "IP address must be a string"),
    ("'10.0.0.0/8', 'nope'", "IP address cannot be parsed"),
    ("'10.0.0.0/33', '10.0.0.1'", "CIDR for IP address v4 cannot be parsed"),
    ("'10.0.0.0', '10.0.0.1'", "CIDR for IP address v4 cannot be parsed"),
    ("'10.0.0.0/8', '::1'", "CIDR for IP address v6 cannot be parsed"),
])
def test_in_cidr_block_errors(engine, args, message):
    fails(engine, f"select in_cidr_block({args})", message)


# --- versions --------------------------------------------------------------------------------------------
DPKG_ORDER = [  # each strictly less than the next (Debian policy 5.6.12 examples)
    "0:0.9", "1.0~~", "1.0~~a", "1.0~", "1.0~rc1", "1.0", "1.0-0.1", "1.0-1", "1.0-1ubuntu1", "1.0-2",
    "1.0-10", "1.0a", "1.0+dfsg", "1.0.1", "1.2", "1.10", "2.0", "1:0.9", "1:1.0", "2:0.1",
]
RPM_ORDER = [
    "1.0~rc1", "1.0", "1.0-1", "1.0-2.el9", "1.0-10", "1.0^git1", "1.0a", "1.0.1", "1.01.2",
    "1.2", "1.10", "2.0", "1:0.5",
]
ARCH_ORDER = ["1.0a", "1.0b", "1.0", "1.0.1", "1.1", "1.10", "2.0", "1:0.1"]


@pytest.mark.parametrize("flavour, order", [("DPKG", DPKG_ORDER), ("RHEL", RPM_ORDER), ("ARCH", ARCH_ORDER)])
def test_version_compare_orders(engine, flavour, order):
    for lo, hi in zip(order, order[1:]):
        assert one(engine, f"select version_compare('{lo}', '{hi}', '{flavour}')") == -1, (lo, hi)
        assert one(engine, f"select version_compare('{hi}', '{lo}', '{flavour}')") == 1, (hi, lo)


@pytest.mark.parametrize("a, b, flavour, want", [
    ("1.0~rc1", "1.0", "dpkg", -1),  # flavour is case-insensitive
    ("1:0.9", "2.0", "DPKG", 1),
    ("1.0-1", "1.0-2", "DPKG", -1),
    ("1.0", "1.0-0", "DPKG", 0),  # an absent revision equals "0"
    ("1.00", "1.0", "DPKG", 0),
    ("0:1.0", "1.0", "DPKG", 0),
    ("1.0a", "1.0", "RHEL", 1),  # rpm: a trailing letter is newer
    ("1.0a", "1.0", "ARCH", -1),  # pacman: a trailing letter is a pre-release
    ("1.0-1", "1.0", "ARCH", 0),  # pacman ignores pkgrel when one side lacks it
    ("1.0-1", "1.0-2", "ARCH", -1),
    ("1.0_1", "1.0.1", "RHEL", 0),  # rpm: separators only separate
    ("2.6.32", "2.6.9", "RHEL", 1),
    ("1.10", "1.9", "", 1),  # generic: numbers compare as numbers
    ("5.22.1", "5.9.0", "", 1),
    ("1.2.3", "1.2.3", "", 0),
    ("1.2", "1.2.1", "", -1),
])
def test_version_compare_vectors(engine, a, b, flavour, want):
    assert one(engine, f"select version_compare('{a}', '{b}', '{flavour}')") == want


def test_version_compare_default_and_nulls(engine):
    assert one(engine, "select version_compare('1.10', '1.9')") == 1
    assert one(engine, "select version_compare('1.9', '1.10')") == -1
    assert one(engine, "select version_compare(NULL, '1')") is None
    fails(engine, "select version_compare('1', '2', 'GENTOO')",
          "Invalid version_compare flavor 'GENTOO': expected ARCH, DPKG or RHEL")


@pytest.mark.parametrize("collation, order", [
    ("VERSION_DPKG", DPKG_ORDER), ("VERSION_RHEL", RPM_ORDER), ("version_arch", ARCH_ORDER),
    ("VERSION", ["0.9", "1.2", "1.2.1", "1.9", "1.10", "2.0", "10.0"]),
])
def test_collations_sort(engine, collation, order):
    values = " union all ".join(f"select '{v}' as v" for v in reversed(order))
    rows = engine.query(f"select v from ({values}) order by v collate {collation}").rows
    assert [r[0] for r in rows] == order
    assert one(engine, f"select '{order[0]}' < '{order[-1]}' collate {collation}") == 1


def test_version_collation_on_a_column(engine):
    # osquery_info.version is declared COLLATE VERSION: the table must compile and compare by version.
    assert one(engine, "select count(*) from osquery_info where version >= '0.0.9'") == 1


# --- filesystem ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sql, want", [
    ("parent_directory('/usr/bin/python3')", "/usr/bin"),
    ("parent_directory('/usr/bin/')", "/usr/bin"),
    ("parent_directory('/usr')", ""),
    ("parent_directory('python3')", None),
])
def test_parent_directory(engine, sql, want):
    assert one(engine, f"select {sql}") == want


def test_parent_directory_requires_text(engine):
    for arg in ("NULL", "5"):
        fails(engine, f"select parent_directory({arg})", "Invalid inputs to parent_directory, TEXT was expected")


@pytest.fixture
def spaced(tmp_path):
    """'/tmp/.../my prog' and '/tmp/.../my prog --x' both exist: the command line is ambiguous."""
    d = tmp_path / "dir with space"
    d.mkdir()
    prog = d / "my prog"
    prog.write_text("#!/bin/sh\n")
    (d / "my prog --x").write_text("")
    return prog


def test_find_file_path_in_cmd(engine, spaced):
    sh = shutil.which("sh") or "/bin/sh"
    sh = os.path.realpath(sh)
    assert one(engine, f"select find_file_path_in_cmd('{sh} -c true')") == sh
    assert one(engine, f"select find_file_path_in_cmd('  {sh}')") == sh
    assert one(engine, "select find_file_path_in_cmd('/no/such/program --flag')") == ""
    assert one(engine, f"select find_file_path_in_cmd('{spaced} --x')") == str(spaced)  # shortest wins
    quoted = f'"{spaced}" --y'
    assert one(engine, f"select find_file_path_in_cmd('{quoted}', 1)") == str(spaced)
    escaped = str(spaced).replace(" ", "\\ ")
    assert one(engine, f"select find_file_path_in_cmd('{escaped} --y', 0)") == str(spaced)
    assert one(engine, f"select find_file_path_in_cmd('{str(spaced).replace(' ', '^ ')} --y', 0, '^')") == str(spaced)
    fails(engine, "select find_file_path_in_cmd(NULL)", "Invalid inputs to find_binary_path_from_cmd")
    fails(engine, f"select find_file_path_in_cmd('{sh}', 0, 'ab')", "Invalid inputs to find_binary_path_from_cmd")


def test_is_path_deterministic(engine, spaced):
    sh = os.path.realpath(shutil.which("sh") or "/bin/sh")
    assert one(engine, f"select is_path_deterministic('{sh} -c true')") == 1
    assert one(engine, f"select is_path_deterministic('{sh}')") == 1
    assert one(engine, "select is_path_deterministic('/no/such/thing arg')") == 1
    assert one(engine, f"select is_path_deterministic('{spaced} --x')") == 0  # two programs could be meant
    fails(engine, "select is_path_deterministic(NULL)", "Invalid inputs to is_path_deterministic")


@pytest.fixture
def host_root(tmp_path):
    """A host tree shaped like Debian's alternatives, with names this machine does not have."""
    root = tmp_path / "host"
    jdk = root / "opt/quarry-fixture-jdk/bin"
    jdk.mkdir(parents=True)
    (jdk / "java").write_text("")
    (root / "etc/alternatives").mkdir(parents=True)
    # Absolute targets: resolved inside the root, not in the collector's own filesystem.
    (root / "etc/alternatives/quarry-java").symlink_to("/opt/quarry-fixture-jdk/bin/java")
    (root / "usr/bin").mkdir(parents=True)
    (root / "usr/bin/qjava").symlink_to("/etc/alternatives/quarry-java")
    (root / "usr/bin/quarry-fixture-tool").write_text("")
    (root / "usr/bin/loop").symlink_to("/usr/bin/loop")
    (root / "usr/bin/up").symlink_to("../" * 40 + "opt/quarry-fixture-jdk/bin/java")  # `..` stops at the root
    return root


def test_find_file_path_in_cmd_under_hostfs(engine_at, engine, host_root):
    host = engine_at(f"{host_root}/")
    sh = os.path.realpath(shutil.which("sh") or "/bin/sh")
    tool = "/usr/bin/quarry-fixture-tool --flag"
    assert one(engine, f"select find_file_path_in_cmd('{tool}')") == ""
    # The answer is the host's path, as tables report paths: no root prefix.
    assert one(host, f"select find_file_path_in_cmd('{tool}')") == "/usr/bin/quarry-fixture-tool"
    assert one(engine, f"select find_file_path_in_cmd('{sh} -c true')") == sh
    assert one(host, f"select find_file_path_in_cmd('{sh} -c true')") == ""
    assert one(host, "select find_file_path_in_cmd('/usr/bin/qjava -jar x.jar')") == "/usr/bin/qjava"
    assert one(host, "select find_file_path_in_cmd('/usr/bin/up -x')") == "/usr/bin/up"
    assert one(host, "select find_file_path_in_cmd('/usr/bin/loop -x')") == ""
    assert one(host, "select find_file_path_in_cmd('/usr/bin -x')") == ""  # a directory is no program
    assert one(host, "select find_file_path_in_cmd('/usr/bin/quarry-fixture-tool/ -x')") == ""  # ENOTDIR
    assert one(host, f"select find_file_path_in_cmd('{host_root}/usr/bin/quarry-fixture-tool')") == ""
    assert one(host, "select is_path_deterministic('/usr/bin/qjava -jar x.jar')") == 1
    (host_root / "usr/bin/qjava -jar").write_text("")
    assert one(host, "select is_path_deterministic('/usr/bin/qjava -jar x.jar')") == 0
    assert one(engine, "select is_path_deterministic('/usr/bin/qjava -jar x.jar')") == 1


def test_sleep(engine):
    started = time.monotonic()
    assert one(engine, "select sleep(1)") == 1
    assert time.monotonic() - started >= 0.95
    assert one(engine, "select sleep(-3)") == 0
    assert one(engine, "select sleep(0)") == 0


# --- math ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sql, want", [
    ("sqrt(16)", 4.0), ("sqrt('2.25')", 1.5), ("acos(1)", 0.0), ("asin(1)", math.pi / 2),
    ("atan(1)", math.pi / 4), ("cos(0)", 1.0), ("sin(0)", 0.0), ("tan(0)", 0.0),
    ("cot(1)", 1 / math.tan(1)), ("exp(1)", math.e), ("log(100)", math.log(100)),  # natural log, as osquery
    ("log10(1000)", 3.0), ("power(2, 10)", 1024.0), ("power(2, 0.5)", math.sqrt(2)),
    ("degrees(pi())", 180.0), ("radians(180)", math.pi), ("pi()", math.pi),
    ("ceil(1.2)", 2), ("ceil(-1.2)", -1), ("floor(1.8)", 1), ("floor(-1.2)", -2), ("ceil(7)", 7),
    ("floor(9007199254740993)", 9007199254740993),  # integers pass through untouched
    ("sqrt(NULL)", None), ("power(NULL, 2)", None), ("ceil(NULL)", None),
])
def test_math(engine, sql, want):
    got = one(engine, f"select {sql}")
    if isinstance(want, float):
        assert isinstance(got, float) and got == pytest.approx(want, rel=1e-12, abs=1e-15)
    else:
        assert got == want and type(got) is type(want)


def test_math_types(engine):
    assert engine.query("select typeof(ceil(1.5)), typeof(sqrt(4)), typeof(pi())").rows == [
        ("integer", "real", "real")]


@pytest.mark.parametrize("sql, message", [
    ("sqrt(-1)", os.strerror(33)), ("acos(2)", os.strerror(33)), ("log(-1)", os.strerror(33)),
    ("log(0)", os.strerror(34)), ("exp(1000)", os.strerror(34)), ("power(0, -1)", os.strerror(34)),
    ("power(-8, 0.5)", os.strerror(33)),
])
def test_math_errors(engine, sql, message):
    fails(engine, f"select {sql}", message)


def test_every_documented_function_is_registered(engine):
    names = {r[0] for r in engine.query("select name from pragma_function_list").rows}
    documented = {
        "split", "regex_split", "regex_match", "inet_aton", "concat", "concat_ws", "md5", "sha1", "sha256",
        "community_id_v1", "community_id_v1_strict", "to_base64", "from_base64", "conditional_to_base64",
        "in_cidr_block", "version_compare", "parent_directory", "find_file_path_in_cmd",
        "is_path_deterministic", "sleep", "sqrt", "acos", "asin", "atan", "cos", "sin", "tan", "cot", "exp",
        "log", "log10", "power", "ceil", "floor", "degrees", "radians", "pi",
    }
    assert documented <= names
    assert "carve" not in names  # no carver in Quarry
    collations = {r[1].upper() for r in engine.query("pragma collation_list").rows}
    assert {"VERSION", "VERSION_ARCH", "VERSION_DPKG", "VERSION_RHEL"} <= collations
