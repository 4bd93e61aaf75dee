"""The ECS mapping file against ecs_flat.yml, and the documents collector/ecs.py builds from sample rows."""

from __future__ import annotations

import json
import re

import pytest

from collector.ecs import EcsMapper, HostFacts, AgentFacts, primary_table, query_tables
from collector.ecs_check import check, dynamic_type, load_ecs_flat
from collector.ecs_convert import CONVERTERS
from collector.ecs_mapping import MAPPING_PATH, load_mapping
from collector.errors import ConfigError
from collector.registry import all_tables
from tests.conftest import REPO, shared_path

T0 = 1779184800.25  # 2026-05-19T10:00:00.250Z
HOST = HostFacts(hostname="Web-01.example.org", id="3D1219C7-C4C5-404A-AA1F-6D2A48ADFDA4", architecture="x86_64",
                 os_name="Debian GNU/Linux", os_version="12 (bookworm)", os_platform="debian", os_family="debian",
                 os_kernel="6.1.0", ips=("192.0.2.2",), macs=("02-FC-00-00-00-01",))
AGENT = AgentFacts(id="5f1e0c1e-0000-4000-8000-000000000001", name="web-01", version="0.1.0")
# osquery's spec of the events engineer's table, until collector/tables/file_events.py lands
FILE_EVENTS_COLUMNS = {"target_path", "category", "action", "transaction_id", "inode", "uid", "gid", "mode", "size",
                       "atime", "mtime", "ctime", "md5", "sha1", "sha256", "hashed", "time", "eid"}
# ECS documents event.category:host with event.type [change, device] for device events (event.type "device")
# although "device" is in no category's expected_event_types list.
DOCUMENTED_PAIRS = {("host", "device")}


@pytest.fixture(scope="module")
def ecs():
    return load_ecs_flat(shared_path("ecs", "ecs_flat.yml"))


@pytest.fixture(scope="module")
def mapper():
    return EcsMapper()


def doc(mapper, row, table, action="snapshot", **kw):
    args = dict(table=table, action=action, query_name=f"pack_test_{table}", unix_time=T0, event_id="e1",
                reason="snapshot" if action == "snapshot" else "change", host=HOST, agent=AGENT, epoch=0, counter=3)
    args.update(kw)
    return mapper.document(row, **args)


def assert_valid(ecs, d):
    problems = check(d, ecs)
    assert problems == [], problems


# ------------------------------------------------------------------------------------------- the mapping
def _expected(ecs):
    return {a["name"]: set(a.get("expected_event_types") or ()) for a in ecs["event.category"]["allowed_values"]}


def test_mapping_targets_exist_in_ecs_with_compatible_types(ecs):
    raw = json.loads(MAPPING_PATH.read_text())
    assert raw["ecs_version"] == "9.4.0"
    _, plans = load_mapping()
    errors = []
    for table, plan in plans.items():
        for column, targets in plan.columns.items():
            for t in targets:
                where = f"{table}.{column} -> {t.field}"
                conv = CONVERTERS[t.converter]
                if t.vendor:
                    if conv.array:
                        errors.append(f"{where}: vendor fields are scalars")
                    continue
                spec = ecs.get(t.field)
                if spec is None:
                    errors.append(f"{where}: not an ECS 9.4 field")
                    continue
                if spec["type"] not in conv.ecs_types:
                    errors.append(f"{where}: ECS type {spec['type']}, converter {t.converter} feeds {conv.ecs_types}")
                if ("array" in spec["normalize"]) != conv.array:
                    errors.append(f"{where}: normalize {spec['normalize']} but converter {t.converter}")
        for path, _value in plan.constants:
            spec = ecs.get(".".join(path))
            if spec is None or spec["type"] != "keyword":
                errors.append(f"{table}: constant {'.'.join(path)} is not an ECS keyword")
        if plan.entity_id is not None:
            spec = ecs.get(".".join(plan.entity_id[0]))
            if spec is None or spec["type"] != "keyword":
                errors.append(f"{table}: entity_id target is not an ECS keyword")
    assert errors == [], "\n".join(errors)


def test_mapping_categories_and_types_are_allowed_and_expected(ecs):
    expected = _expected(ecs)
    kinds = {a["name"] for a in ecs["event.kind"]["allowed_values"]}
    types = {a["name"] for a in ecs["event.type"]["allowed_values"]}
    _, plans = load_mapping()
    errors = []
    for table, plan in plans.items():
        assert plan.category, f"{table}: no event.category"
        if plan.kind not in kinds:
            errors.append(f"{table}: kind {plan.kind}")
        for c in plan.category:
            if c not in expected:
                errors.append(f"{table}: category {c!r} not allowed")
        sets = [plan.type, plan.added, plan.removed]
        for rule in plan.type_by + plan.snapshot_type_by:
            sets.extend(rule.values.values())
        for type_set in sets:
            for t in type_set:
                if t not in types:
                    errors.append(f"{table}: type {t!r} not allowed")
                elif not any(t in expected.get(c, ()) or (c, t) in DOCUMENTED_PAIRS for c in plan.category):
                    errors.append(f"{table}: type {t!r} is expected by none of {plan.category}")
    assert errors == [], "\n".join(errors)


def test_mapping_covers_every_registered_table_and_names_real_columns():
    _, plans = load_mapping()
    registered = all_tables()
    missing = sorted(set(registered) - set(plans))
    assert not missing, f"tables without an ECS mapping: {missing}"
    errors = []
    for table, plan in plans.items():
        if table in registered:
            columns = {c.name for c in registered[table].spec.columns}
        elif table == "file_events":
            columns = FILE_EVENTS_COLUMNS
        else:
            errors.append(f"{table}: not a registered table")
            continue
        named = set(plan.columns) | set(plan.related) | {r.column for r in plan.type_by + plan.snapshot_type_by}
        named |= {t.times for ts in plan.columns.values() for t in ts if t.times}
        named |= set(plan.entity_id[1]) if plan.entity_id else set()
        named |= {plan.timestamp} if plan.timestamp else set()
        errors += [f"{table}.{c}: no such column" for c in sorted(named - columns)]
    assert errors == [], "\n".join(errors)
    assert len(registered) >= 85


def test_no_unmapped_column_trips_an_ecs_dynamic_template():
    """osquery.<table>.<column> names that ecs@mappings would type as date/ip/geo_point must be mapped."""
    _, plans = load_mapping()
    hazards = []
    for table, reg in all_tables().items():
        plan = plans[table]
        for c in reg.spec.columns:
            if c.hidden or (c.platforms and "linux" not in c.platforms) or c.name in plan.columns:
                continue
            kind = dynamic_type(f"osquery.{table}.{c.name}")
            if kind is not None and not (kind == "float" and c.type != "TEXT"):
                hazards.append(f"{table}.{c.name} ({c.type}) would be mapped as {kind}")
    assert hazards == [], hazards


def test_broken_mapping_names_the_place(tmp_path):
    bad = json.loads(MAPPING_PATH.read_text())
    bad["tables"]["processes"]["columns"]["pid"]["as"] = "lng"
    p = tmp_path / "mapping.json"
    p.write_text(json.dumps(bad))
    with pytest.raises(ConfigError) as e:
        load_mapping(p)
    assert e.value.field == "tables.processes.columns.pid" and "lng" in str(e.value) and str(p) in str(e.value)
    bad["tables"]["processes"]["columns"]["pid"] = {"to": "osquery.users.pid", "as": "long"}
    p.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="osquery.processes"):
        load_mapping(p)
    p.write_text('{"ecs_version": "9.4.0",\n "tables": {,}}')
    with pytest.raises(ConfigError) as e:
        load_mapping(p)
    assert e.value.line == 2


def test_namespace_must_be_a_valid_data_stream_part():
    with pytest.raises(ValueError):
        EcsMapper(namespace="prod-eu")
    assert EcsMapper(namespace="prod_eu").namespace == "prod_eu"


# ------------------------------------------------------------------------------------------- tables of a query
@pytest.mark.parametrize("sql, tables", [
    ("SELECT * FROM processes", ("processes",)),
    ("select p.pid, u.username from Processes p join users u using (uid)", ("processes", "users")),
    ("SELECT * FROM logged_in_users liu, processes p WHERE liu.pid = p.pid", ("logged_in_users", "processes")),
    ("select * from time, osquery_info", ("time", "osquery_info")),
    ("SELECT * FROM (SELECT * FROM listening_ports) l JOIN processes USING (pid)", ("listening_ports", "processes")),
    ("select 'from users' as x -- from groups\n from /* from shadow */ \"hash\" where path = '/bin/ls'", ("hash",)),
    ("SELECT 1", ()),
])
def test_query_tables(sql, tables):
    assert query_tables(sql) == tables
    assert primary_table(sql) == (tables[0] if tables else None)


# ------------------------------------------------------------------------------------------- documents
PROCESS = {"pid": 4242, "name": "sshd", "path": "/usr/sbin/sshd", "cmdline": "sshd: alice [priv]", "state": "S",
           "cwd": "/", "root": "/", "uid": 0, "gid": 0, "euid": 1000, "egid": 1000, "suid": 0, "sgid": 0,
           "on_disk": 1, "resident_size": 1024, "start_time": 1779184000, "parent": 1, "pgroup": 4242,
           "threads": 1, "nice": 0, "cgroup_path": "/system.slice/ssh.service"}


def test_processes_document(ecs, mapper):
    d = doc(mapper, PROCESS, "processes", decorations={"host_uuid": "abc", "k8s.cluster": "c1", "n": 7})
    assert d["@timestamp"] == "2026-05-19T10:00:00.250Z"
    assert d["ecs"] == {"version": "9.4.0"}
    assert d["event"] == {"kind": "state", "category": ["process"], "type": ["info"], "action": "snapshot",
                          "module": "osquery", "provider": "osquery", "dataset": "osquery.processes",
                          "created": "2026-05-19T10:00:00.250Z", "reason": "snapshot", "id": "e1"}
    p = d["process"]
    assert p["pid"] == 4242 and p["parent"] == {"pid": 1} and p["group_leader"] == {"pid": 4242}
    assert p["executable"] == "/usr/sbin/sshd" and p["name"] == "sshd" and p["command_line"] == "sshd: alice [priv]"
    assert "args" not in p
    assert p["user"] == {"id": "1000"} and p["real_user"] == {"id": "0"} and p["saved_user"] == {"id": "0"}
    assert p["group"] == {"id": "1000"} and p["real_group"] == {"id": "0"}
    assert p["start"] == "2026-05-19T09:46:40.000Z"
    assert re.fullmatch(r"[0-9a-f]{32}", p["entity_id"])
    assert d["user"] == {"id": "0"} and d["group"] == {"id": "0"}
    assert d["osquery"]["processes"] == {"state": "S", "root": "/", "on_disk": 1, "resident_size": 1024,
                                         "threads": 1, "nice": 0, "cgroup_path": "/system.slice/ssh.service"}
    assert d["osquery"]["query"] == {"name": "pack_test_processes"}
    assert (d["osquery"]["epoch"], d["osquery"]["counter"]) == (0, 3)
    assert d["labels"] == {"host_uuid": "abc", "k8s_cluster": "c1", "n": "7"}
    assert d["host"] == {"name": "web-01.example.org", "hostname": "Web-01.example.org",
                         "id": "3D1219C7-C4C5-404A-AA1F-6D2A48ADFDA4", "architecture": "x86_64",
                         "ip": ["192.0.2.2"], "mac": ["02-FC-00-00-00-01"],
                         "os": {"type": "linux", "name": "Debian GNU/Linux", "version": "12 (bookworm)",
                                "platform": "debian", "family": "debian", "kernel": "6.1.0",
                                "full": "Debian GNU/Linux 12 (bookworm)"}}
    assert d["agent"] == {"type": "quarry", "name": "web-01", "version": "0.1.0", "id": AGENT.id}
    assert d["data_stream"] == {"type": "logs", "dataset": "osquery.processes", "namespace": "default"}
    assert_valid(ecs, d)
    # the entity id is stable for the same process and differs for a reused pid
    again = doc(mapper, PROCESS, "processes")["process"]["entity_id"]
    other = doc(mapper, {**PROCESS, "start_time": 1779184001}, "processes")["process"]["entity_id"]
    assert again == p["entity_id"] != other


def test_differential_rows_are_events_with_change_types(ecs, mapper):
    added = doc(mapper, PROCESS, "processes", action="added")
    removed = doc(mapper, PROCESS, "processes", action="removed", reason="change")
    assert added["event"]["kind"] == removed["event"]["kind"] == "event"
    assert (added["event"]["type"], removed["event"]["type"]) == (["start"], ["end"])
    assert added["event"]["action"] == "added" and added["event"]["reason"] == "change"
    pkg = {"name": "curl", "version": "7.88.1-10", "arch": "amd64", "size": 500, "source": "curl"}
    assert doc(mapper, pkg, "deb_packages", action="added")["event"]["type"] == ["installation"]
    assert doc(mapper, pkg, "deb_packages", action="removed")["event"]["type"] == ["deletion"]
    user = {"uid": 1000, "gid": 1000, "username": "alice"}
    assert doc(mapper, user, "users", action="added")["event"]["type"] == ["user", "creation"]
    km = {"name": "nf_tables", "size": 1, "used_by": "-", "status": "Live", "address": "0x0"}
    assert doc(mapper, km, "kernel_modules", action="removed")["event"]["type"] == ["end"]
    # a table without change types falls back to info
    assert doc(mapper, {"hostname": "x"}, "system_info", action="added")["event"]["type"] == ["info"]
    for d in (added, removed):
        assert_valid(ecs, d)


def test_unknown_start_time_stays_in_vendor_namespace(ecs, mapper):
    d = doc(mapper, {**PROCESS, "start_time": -1, "path": ""}, "processes")
    assert "start" not in d["process"] and "executable" not in d["process"]
    assert d["osquery"]["processes"]["start_time"] == -1 and d["osquery"]["processes"]["path"] == ""
    assert "entity_id" in d["process"]
    assert_valid(ecs, d)


def test_listening_ports_and_sockets(ecs, mapper):
    lp = {"pid": 812, "port": 22, "protocol": 6, "family": 10, "address": "::", "fd": 3, "socket": 20931,
          "path": "", "net_namespace": "4026531840"}
    d = doc(mapper, lp, "listening_ports")
    assert d["server"] == {"port": 22, "ip": "::", "address": "::"}
    assert d["network"] == {"iana_number": "6", "transport": "tcp", "type": "ipv6"}
    assert d["process"] == {"pid": 812} and "related" not in d  # :: is no pivot
    assert d["osquery"]["listening_ports"] == {"fd": 3, "socket": 20931, "path": "", "net_namespace": "4026531840"}
    assert_valid(ecs, d)
    unix = doc(mapper, {"pid": 1, "port": 0, "protocol": 0, "family": 1, "address": "", "path": "/run/x.sock"},
               "listening_ports")
    assert "server" not in unix and "network" not in unix
    assert unix["osquery"]["listening_ports"] == {"port": 0, "protocol": 0, "family": 1, "address": "",
                                                  "path": "/run/x.sock"}
    assert_valid(ecs, unix)
    sock = {"pid": 90, "fd": 4, "socket": 1, "family": 2, "protocol": 6, "local_address": "192.0.2.2",
            "remote_address": "198.51.100.7", "local_port": 50000, "remote_port": 443, "path": "",
            "state": "ESTABLISHED", "net_namespace": "1"}
    d = doc(mapper, sock, "process_open_sockets")
    assert d["event"]["type"] == ["connection"]
    assert d["source"] == {"ip": "192.0.2.2", "port": 50000} and d["destination"] == {"ip": "198.51.100.7", "port": 443}
    assert d["related"] == {"ip": ["192.0.2.2", "198.51.100.7"]}
    assert_valid(ecs, d)
    listen = doc(mapper, {**sock, "remote_address": "0.0.0.0", "remote_port": 0, "state": "LISTEN"},
                 "process_open_sockets")
    assert listen["event"]["type"] == ["info"] and "destination" not in listen
    assert doc(mapper, {**sock, "state": "LISTEN"}, "process_open_sockets", action="added")["event"]["type"] == ["start"]


def test_users_packages_files(ecs, mapper):
    d = doc(mapper, {"uid": 1000, "gid": 100, "uid_signed": 1000, "gid_signed": 100, "username": "alice",
                     "description": "Alice A", "directory": "/home/alice", "shell": "/bin/bash", "uuid": ""}, "users")
    assert d["user"] == {"id": "1000", "group": {"id": "100"}, "name": "alice", "full_name": "Alice A"}
    assert d["related"] == {"user": ["alice"]} and d["event"]["type"] == ["user", "info"]
    assert_valid(ecs, d)
    d = doc(mapper, {"name": "curl", "version": "7.88.1-10", "arch": "amd64", "size": 500, "source": "curl"},
            "deb_packages")
    assert d["package"] == {"name": "curl", "version": "7.88.1-10", "architecture": "amd64", "size": 512000,
                            "type": "deb"}
    assert_valid(ecs, d)
    d = doc(mapper, {"name": "bash", "version": "5.1.8", "release": "6.el9", "size": 7738634, "arch": "x86_64",
                     "epoch": 0, "install_time": 1700000000, "sha1": "ab" * 20}, "rpm_packages")
    assert d["package"]["installed"] == "2023-11-14T22:13:20.000Z" and d["package"]["checksum"] == "ab" * 20
    assert d["osquery"]["rpm_packages"] == {"release": "6.el9", "epoch": 0}
    assert_valid(ecs, d)
    # file JOIN hash: the joined table's ECS columns apply to columns the primary table lacks
    row = {"path": "/bin/ls", "directory": "/bin", "filename": "ls", "inode": 1311, "uid": 0, "gid": 0,
           "mode": "0755", "device": 0, "size": 142312, "block_size": 4096, "atime": 1779184000, "mtime": 1700000000,
           "ctime": 1700000000, "btime": 0, "hard_links": 1, "symlink": 0, "type": "regular",
           "md5": "d41d8cd98f00b204e9800998ecf8427e", "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}
    d = doc(mapper, row, "file", joined=("hash",))
    f = d["file"]
    assert (f["path"], f["directory"], f["name"], f["type"]) == ("/bin/ls", "/bin", "ls", "file")
    assert (f["inode"], f["uid"], f["gid"], f["mode"], f["size"]) == ("1311", "0", "0", "0755", 142312)
    assert f["mtime"] == f["ctime"] == "2023-11-14T22:13:20.000Z" and "created" not in f
    assert f["hash"] == {"md5": row["md5"], "sha256": row["sha256"]}
    assert d["related"] == {"hash": [row["md5"], row["sha256"]]}
    assert d["osquery"]["file"] == {"block_size": 4096, "btime": 0, "hard_links": 1, "symlink": 0}
    assert_valid(ecs, d)
    without_join = doc(mapper, row, "file")
    assert "hash" not in without_join["file"] and without_join["osquery"]["file"]["md5"] == row["md5"]
    d = doc(mapper, {"path": "/usr/bin/su", "directory": "/usr/bin", "md5": "", "sha1": "", "sha256": "ff" * 32}, "hash")
    assert d["file"] == {"path": "/usr/bin/su", "name": "su", "directory": "/usr/bin", "hash": {"sha256": "ff" * 32}}
    assert d["osquery"]["hash"] == {"md5": "", "sha1": ""}
    assert_valid(ecs, d)


def test_event_time_tables_use_the_row_time(ecs, mapper):
    d = doc(mapper, {"username": "alice", "tty": "pts/0", "pid": 777, "type": 7, "type_name": "user-process",
                     "time": 1779100000, "host": "198.51.100.9"}, "last")
    assert d["@timestamp"] == "2026-05-18T10:26:40.000Z" and d["event"]["created"] == "2026-05-19T10:00:00.250Z"
    assert d["event"]["kind"] == "event" and d["event"]["category"] == ["authentication", "session"]
    assert d["event"]["type"] == ["start"]
    assert d["source"] == {"address": "198.51.100.9", "ip": "198.51.100.9"} and d["user"] == {"name": "alice"}
    assert d["related"] == {"user": ["alice"], "ip": ["198.51.100.9"]}
    assert_valid(ecs, d)
    d = doc(mapper, {"username": "bob", "tty": "pts/1", "pid": 9, "type": 8, "type_name": "dead-process",
                     "time": 1779100000, "host": "jump.example.org"}, "last")
    assert d["event"]["type"] == ["end"] and d["source"] == {"address": "jump.example.org"}
    assert d["related"] == {"user": ["bob"], "hosts": ["jump.example.org"]}
    d = doc(mapper, {"uid": 1000, "time": 0, "command": "ls -la", "history_file": "/home/a/.bash_history"},
            "shell_history")
    assert d["@timestamp"] == "2026-05-19T10:00:00.250Z" and d["event"]["kind"] == "event"
    assert d["process"] == {"command_line": "ls -la"} and d["user"] == {"id": "1000"}
    assert_valid(ecs, d)
    d = doc(mapper, {"target_path": "/etc/passwd", "category": "etc", "action": "UPDATED", "inode": 5, "uid": 0,
                     "gid": 0, "mode": "0644", "size": 10, "atime": 1, "mtime": 1779184700, "ctime": 1779184700,
                     "md5": "", "sha1": "", "sha256": "aa" * 32, "hashed": 1, "time": 1779184701,
                     "transaction_id": 0, "eid": "0000000001"}, "file_events", action="added")
    assert d["event"]["type"] == ["change"] and d["@timestamp"] == "2026-05-19T09:58:21.000Z"
    assert d["file"]["path"] == "/etc/passwd" and d["file"]["name"] == "passwd" and d["file"]["directory"] == "/etc"
    assert d["osquery"]["file_events"]["action"] == "UPDATED"
    assert_valid(ecs, d)


def test_host_tables_and_conversions(ecs, mapper):
    d = doc(mapper, {"interface": "eth0", "mac": "02:fc:0a:0b:0c:0d", "type": 1, "mtu": 1500}, "interface_details")
    assert d["host"]["mac"] == ["02-FC-00-00-00-01", "02-FC-0A-0B-0C-0D"]  # joins the host's own list
    assert_valid(ecs, d)
    lo = doc(mapper, {"interface": "lo", "mac": "00:00:00:00:00:00"}, "interface_details")
    assert lo["host"]["mac"] == ["02-FC-00-00-00-01"] and lo["osquery"]["interface_details"]["mac"] == "00:00:00:00:00:00"
    d = doc(mapper, {"name": "Ubuntu", "version": "22.04.4 LTS (Jammy Jellyfish)", "major": 22, "platform": "ubuntu",
                     "platform_like": "debian", "codename": "jammy", "arch": "x86_64"}, "os_version")
    assert d["host"]["os"]["name"] == "Ubuntu" and d["host"]["os"]["platform"] == "ubuntu"
    assert d["osquery"]["os_version"] == {"major": 22, "codename": "jammy"}
    assert_valid(ecs, d)
    d = doc(mapper, {"days": 1, "hours": 0, "minutes": 0, "seconds": 5, "total_seconds": 86405}, "uptime")
    assert d["host"]["uptime"] == 86405 and d["event"]["kind"] == "metric"
    assert_valid(ecs, d)
    d = doc(mapper, {"device": "/dev/sda1", "path": "/", "type": "ext4", "blocks_size": 4096, "blocks": 1000,
                     "blocks_free": 10}, "mounts")
    assert d["volume"] == {"device_name": "/dev/sda1", "mount_name": "/", "file_system_type": "ext4",
                           "size": 4096000}
    assert_valid(ecs, d)
    d = doc(mapper, {"name": "System RAM", "start": "0x00001000", "end": "0x0009fbff"}, "memory_map")
    assert d["osquery"]["memory_map"] == {"name": "System RAM", "start_address": "0x00001000",
                                          "end_address": "0x0009fbff"}
    d = doc(mapper, {"filter_name": "filter", "chain": "INPUT", "src_ip": "10.0.0.0", "dst_ip": "", "protocol": 6},
            "iptables")
    assert d["osquery"]["iptables"] == {"filter_name": "filter", "chain": "INPUT", "src_ip": "10.0.0.0", "protocol": 6}
    assert d["related"] == {"ip": ["10.0.0.0"]}
    assert_valid(ecs, d)
    d = doc(mapper, {"address": "127.0.0.1", "hostnames": "localhost localhost.localdomain"}, "etc_hosts")
    assert d["related"] == {"ip": ["127.0.0.1"], "hosts": ["localhost", "localhost.localdomain"]}


def test_unknown_tables_columns_and_blobs(ecs, mapper):
    d = doc(mapper, {"count(*)": 3, "created": 1779184000, "blob": b"\xffab"}, None)
    assert d["event"]["dataset"] == d["data_stream"]["dataset"] == "osquery.result"
    assert "category" not in d["event"] and "type" not in d["event"]
    # "created" would be typed as a date by Elasticsearch's ecs@mappings: renamed, value kept
    assert d["osquery"]["result"] == {"count": 3, "created_value": 1779184000, "blob": "\ufffdab"}
    assert_valid(ecs, d)
    d = doc(mapper, {"x": 1}, "some_extension_table", pack="incident-response")
    assert d["osquery"]["some_extension_table"] == {"x": 1} and d["osquery"]["pack"] == "incident-response"
    assert_valid(ecs, d)


def test_document_matches_the_json_schema(mapper):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "schemas" / "ecs" / "document.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    good = doc(mapper, PROCESS, "processes", decorations={"a": 1})
    assert list(v.iter_errors(good)) == []
    bad = json.loads(json.dumps(good))
    bad["process"]["pid"] = "4242"
    bad["labels"]["nested"] = {"x": "y"}
    del bad["ecs"]
    assert len(list(v.iter_errors(bad))) == 3


# ------------------------------------------------------------------------------------------- the checker
def test_checker_catches_what_ecs_md_warns_about(ecs):
    base = {"@timestamp": "2026-05-19T10:00:00.000Z", "ecs": {"version": "9.4.0"}}

    def problems(extra):
        return check({**base, **extra}, ecs)

    assert problems({}) == []
    assert check({"ecs": {"version": "9.4.0"}}, ecs) == ["@timestamp: required field missing"]
    assert "multi-field" in problems({"host": {"os": {"name": {"text": "x"}}}})[0]
    assert "not an ECS 9.4 field" in problems({"host": {"disk": {"name": "sda"}}})[0]
    assert "not an ECS 9.4 field" in problems({"process": {"pgid": 1}})[0]
    assert "not a valid long" in problems({"process": {"pid": "1"}})[0]
    assert "not a valid keyword" in problems({"user": {"id": 1000}})[0]
    assert "not a valid date" in problems({"process": {"start": 1779184000}})[0]
    assert "not a valid ip" in problems({"source": {"ip": "example.org"}})[0]
    assert "must be a list" in problems({"event": {"category": "process"}})[0]
    assert "not an allowed value" in problems({"event": {"category": ["processes"]}})[0]
    assert "not an allowed value" in problems({"event": {"kind": "snapshot"}})[0]
    assert "single" in problems({"process": {"pid": [1, 2]}})[0]
    assert "lower case" in problems({"network": {"transport": "TCP"}})[0]
    assert "RFC 7042" in problems({"host": {"mac": ["aa:bb:cc:dd:ee:ff"]}})[0]
    assert "expected value" in problems({"host": {"os": {"type": "debian"}}})[0]
    assert "must not be nested" in problems({"labels": {"a": {"b": "c"}}})[0]
    assert "must be strings" in problems({"labels": {"a": 1}})[0]
    assert "dotted key" in problems({"process.pid": 1})[0]
    assert "differs" in problems({"event": {"dataset": "osquery.a"}, "data_stream": {"dataset": "osquery.b"}})[0]
    assert "date" in problems({"osquery": {"memory_map": {"start": "0x0"}}})[0]
    assert problems({"osquery": {"anything": {"goes": [1, {"x": None}]}}}) == []
    warnings: list[str] = []
    assert check({**base, "event": {"category": ["process"], "type": ["installation"]}}, ecs, warnings=warnings) == []
    assert warnings and "installation" in warnings[0]


def test_event_document_from_a_results_event(ecs, mapper):
    from collector.events import Event
    from collector.model import ScheduledQuery

    q = ScheduledQuery(name="pack_it_hashes", sql="SELECT * FROM file JOIN hash USING (path) WHERE path = '/bin/ls'",
                       pack="it")
    ev = Event(name=q.name, action="added", columns={"path": "/bin/ls", "size": 10, "sha256": "ab" * 32},
               host_identifier="web-01", unix_time=1779184800, calendar_time="", epoch=2, counter=5,
               decorations={"host_uuid": "u"}, reason="first run", table="file", query=q)
    d = mapper.event_document(ev, host=HOST, agent=AGENT)
    assert d["event"]["id"] == ev.event_id and d["event"]["reason"] == "first run"
    assert d["event"]["dataset"] == "osquery.file" and d["event"]["type"] == ["creation"]
    assert d["osquery"]["pack"] == "it" and (d["osquery"]["epoch"], d["osquery"]["counter"]) == (2, 5)
    assert d["file"] == {"path": "/bin/ls", "size": 10, "hash": {"sha256": "ab" * 32}}
    assert d["labels"] == {"host_uuid": "u"} and d["@timestamp"] == "2026-05-19T10:00:00.000Z"
    assert_valid(ecs, d)


def test_status_events_render_as_valid_ecs_documents(ecs):
    from collector.shipping import Item, render

    status = {"host": "web-1", "time": T0, "severity": "warning", "message": "query q denylisted for 24 h",
              "query": "pack_x_q", "pid": 4242, "id": "st-1"}
    r = render(Item(None, status), "ecs")
    d = json.loads(r.payload)
    assert_valid(ecs, d)
    assert (r.id, r.kind, r.table, d["event"]["id"]) == ("st-1", "status", "status", "st-1")
    assert d["osquery"] == {"status": {"query": "pack_x_q", "pid": 4242}}
    # the osquery format keeps the daemon's own JSON
    assert json.loads(render(Item(None, status), "osquery").payload) == status
