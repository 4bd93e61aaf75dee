"""kernel_modules, systemd_units and startup_items on fixture trees and on this host."""

from __future__ import annotations

import os
import subprocess

import pytest

from collector.tables import _systemd
from collector.tables.systemd_units import object_path


def test_kernel_modules_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "kernel_modules").query("SELECT * FROM kernel_modules").rows
    assert rows == [
        ("nf_tables", 299008, "nft_compat", "Live", "0xffffffffc0a3b000"),
        ("nft_compat", 20480, "-", "Live", "0x0000000000000000"),
        ("xt_conntrack", 16384, "nf_conntrack,nf_nat", "Loading", "0xffffffffc0a2e000"),
    ]


def test_kernel_modules_live(engine):
    r = engine.query("SELECT name, size FROM kernel_modules")
    if not os.path.exists("/proc/modules"):
        assert r.rows == [] and any("/proc/modules" in w for w in r.warnings)
        return
    with open("/proc/modules") as f:
        expected = [(line.split()[0], int(line.split()[1])) for line in f if line.strip()]
    assert r.rows == expected


def test_systemd_units_fixture(engine_at, fixtures):
    r = engine_at(fixtures / "startup_items").query("SELECT * FROM systemd_units")
    rows = {x["id"]: x for x in r.dicts()}
    assert set(rows) == {"web.service", "idle.service", "static.service", "journal.socket",
                         "getty@tty1.service", "masked.service"}  # no template, alias folded into web
    web = rows["web.service"]
    assert web["description"] == "Web server" and web["unit_file_state"] == "enabled"
    assert web["user"] == "www-data" and web["source_path"] == "/etc/web.conf" and web["load_state"] == "loaded"
    assert web["fragment_path"] == "/usr/lib/systemd/system/web.service"
    assert web["object_path"] == "/org/freedesktop/systemd1/unit/web_2eservice"
    assert web["active_state"] is None and any("active_state" in w for w in r.warnings)
    assert rows["idle.service"]["unit_file_state"] == "disabled"
    assert rows["static.service"]["unit_file_state"] == "static"
    assert rows["journal.socket"]["unit_file_state"] == "static"  # /usr/lib .wants links are not enablement
    assert rows["masked.service"]["unit_file_state"] == "masked" and rows["masked.service"]["load_state"] == "masked"
    assert rows["getty@tty1.service"]["fragment_path"] == "/usr/lib/systemd/system/getty@.service"
    assert rows["getty@tty1.service"]["unit_file_state"] == "enabled"


def test_object_path_escaping():
    assert object_path("dbus-org.freedesktop.hostname1.service") == \
        "/org/freedesktop/systemd1/unit/dbus_2dorg_2efreedesktop_2ehostname1_2eservice"
    assert object_path("getty@tty1.service") == "/org/freedesktop/systemd1/unit/getty_40tty1_2eservice"


def test_list_units_parser():
    text = ("● bad.service   not-found inactive dead  bad.service\n"
            "cron.service    loaded    active   running Regular background program processing daemon\n")
    assert list(_systemd.parse_list_units(text)) == [
        ("bad.service", "not-found", "inactive", "dead"), ("cron.service", "loaded", "active", "running")]


def test_systemd_units_live_match_unit_files(engine):
    rows = engine.query("SELECT id, fragment_path, unit_file_state FROM systemd_units").rows
    for uid, fragment, state in rows:
        if state == "masked":
            assert os.path.realpath(f"/etc/systemd/system/{uid}") == "/dev/null" or \
                os.readlink(next(p for p in (f"{d}/{uid}" for d in _systemd.SEARCH_PATH) if os.path.islink(p))) \
                == "/dev/null"
        else:
            assert os.path.isfile(fragment), fragment
    with open("/proc/1/comm") as f:
        if f.read().strip() == "systemd":
            out = subprocess.run(["systemctl", "list-unit-files", "--no-legend", "--no-pager"],
                                 capture_output=True, text=True).stdout
            listed = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.split()}
            for uid, _f, state in rows:
                if uid in listed and state in ("enabled", "masked", "static"):
                    assert listed[uid] == state, uid


def test_startup_items_fixture(engine_at, fixtures):
    rows = engine_at(fixtures / "startup_items").query("SELECT * FROM startup_items").dicts()
    by_name = {r["name"]: r for r in rows}
    agent = by_name["Sync Agent"]
    assert agent["path"] == "/opt/sync agent/bin/agent" and agent["args"] == "--daemon --level=2 %U"
    assert agent["source"] == "/etc/xdg/autostart" and agent["status"] == "enabled" and agent["username"] is None
    hidden = by_name["Hidden Thing"]
    assert hidden["status"] == "disabled" and hidden["username"] == "alice"
    assert hidden["source"] == "/home/alice/.config/autostart"
    assert by_name["hello.sh"]["path"] == "/home/alice/.config/autostart-scripts/hello.sh"
    assert by_name["ssh"]["status"] == "enabled" and by_name["legacy"]["status"] == "disabled"
    units = {r["name"]: r for r in rows if r["type"] == "systemd unit"}
    assert set(units) == {"web.service", "getty@tty1.service"}  # enabled units only (no systemd running)
    assert units["web.service"]["username"] == "www-data"


def test_startup_items_live_init_scripts(engine):
    rows = engine.query("SELECT name, path FROM startup_items WHERE source = '/etc/init.d'").rows
    expected = sorted(n for n in os.listdir("/etc/init.d") if os.path.isfile(f"/etc/init.d/{n}")) \
        if os.path.isdir("/etc/init.d") else []
    assert sorted(n for n, _ in rows) == expected
