"""Event publishers: the uevent netlink reader (parser, trust, live socket, fail-soft) and FIM planning."""

from __future__ import annotations

import glob
import logging
import os
import socket
import struct
import time

import pytest

from collector.engine import Engine
from collector.eventstore import EventStore
from collector.publishers import EventStatus, attach
from collector.publishers.fim import FimPublisher
from collector.publishers.fim_paths import Planner, compile_excludes, compile_pattern, translate
from collector.publishers.uevent import GROUP_KERNEL, GROUP_UDEV, UeventPublisher
from collector.runtime import Runtime
from collector.state import State


@pytest.fixture
def store(tmp_path):
    state = State(tmp_path / "state")
    yield EventStore(state, expiry=0)
    state.close()


def wait_for(predicate, timeout: float = 10.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


# --- uevent: parsing and trust ----------------------------------------------------------------------------
DISK_CHANGE = (b"change@/devices/virtual/block/loop3\0ACTION=change\0DEVPATH=/devices/virtual/block/loop3\0"
               b"SUBSYSTEM=block\0MAJOR=7\0MINOR=3\0DEVNAME=loop3\0DEVTYPE=disk\0SEQNUM=900\0")
NET_CHANGE = b"change@/devices/virtual/net/lo\0ACTION=change\0SUBSYSTEM=net\0INTERFACE=lo\0SEQNUM=901\0"


def udev_message(props: dict[str, str]) -> bytes:
    body = b"".join(f"{k}={v}".encode() + b"\0" for k, v in props.items())
    header = b"libudev\0" + struct.pack("!I", 0xFEEDCAFE) + struct.pack("=III", 40, 40, len(body))
    return header.ljust(40, b"\0") + body


def test_kernel_message_becomes_a_row(store):
    pub = UeventPublisher(store, lookup_names=False)
    row = pub.to_row(DISK_CHANGE, now=1234)
    assert row == {"action": "change", "path": "/dev/loop3", "type": "disk", "driver": "", "vendor": "",
                   "vendor_id": "", "model": "", "model_id": "", "serial": "", "revision": "", "time": 1234}
    assert pub.to_row(NET_CHANGE) is None  # no DEVTYPE: osquery's subscriber drops it
    assert pub.to_row(b"garbage without an at sign") is None and pub.dropped == 1


def test_udev_message_carries_database_names(store):
    msg = udev_message({"ACTION": "add", "DEVPATH": "/devices/pci0000:00/usb1/1-2", "SUBSYSTEM": "usb",
                        "DEVNAME": "/dev/bus/usb/001/004", "DEVTYPE": "usb_device", "ID_VENDOR_ID": "0781",
                        "ID_MODEL_ID": "5567", "ID_REVISION": "0100", "ID_SERIAL_SHORT": "4C53",
                        "ID_VENDOR_FROM_DATABASE": "SanDisk Corp.", "ID_MODEL_FROM_DATABASE": "Cruzer Blade",
                        "DRIVER": "usb"})
    row = UeventPublisher(store, lookup_names=False).to_row(msg, now=1)
    assert row is not None
    assert (row["vendor"], row["model"], row["serial"], row["path"]) == (
        "SanDisk Corp.", "Cruzer Blade", "4C53", "/dev/bus/usb/001/004")


def test_forged_messages_are_not_trusted(store):
    pub = UeventPublisher(store)
    pub.group = GROUP_KERNEL
    assert pub._trusted((0, 1), [])
    assert not pub._trusted((4242, 1), [])  # a user-space sender on the kernel group
    pub.group = GROUP_UDEV
    root = struct.pack("iII", 77, 0, 0)
    user = struct.pack("iII", 77, 1000, 1000)
    assert pub._trusted((77, 2), [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, root)])
    assert not pub._trusted((77, 2), [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, user)])
    assert not pub._trusted((77, 2), [])


def test_start_fails_soft_with_one_warning(store, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(socket, "socket", refuse)
    rt = Runtime()
    attach(rt, store)
    pub = UeventPublisher(store, runtime=rt)
    with caplog.at_level(logging.WARNING, logger="quarry.publishers.uevent"):
        assert pub.start() is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "hardware_events disabled" in warnings[0].getMessage()
    assert not pub.active
    pub.stop()  # harmless when never started
    active = Engine(runtime=rt).query("SELECT active FROM osquery_events WHERE name = 'udev'").rows
    assert active == [(0,)]


def _virtual_disk() -> str | None:
    for path in sorted(glob.glob("/sys/devices/virtual/block/*/uevent")):
        name = path.split("/")[-2]
        if name.startswith(("loop", "zram", "ram")):
            return path
    return None


def test_live_uevent_socket_delivers_a_synthetic_event(store):
    if os.geteuid() != 0:
        pytest.skip("writing to /sys/.../uevent needs root")
    rt = Runtime()
    attach(rt, store)
    pub = UeventPublisher(store, runtime=rt, source="kernel", lookup_names=False)
    if not pub.start():
        pytest.skip("this kernel/sandbox does not allow a NETLINK_KOBJECT_UEVENT socket")
    try:
        with open("/sys/class/net/lo/uevent", "w") as f:  # delivered, then filtered (no DEVTYPE)
            f.write("change")
        assert wait_for(lambda: pub.received >= 1, 5), "the kernel delivered no uevent within 5 s"
        disk = _virtual_disk()
        if disk is None:
            pytest.skip("no virtual block device to trigger a hardware_events row")
        with open(disk, "w") as f:
            f.write("change")
        name = disk.split("/")[-2]
        got = wait_for(lambda: [r for r in store.rows("hardware_events") if r["path"] == f"/dev/{name}"], 5)
        assert got and got[0]["action"] == "change" and got[0]["type"] == "disk"
        rows = Engine(runtime=rt).query(
            "SELECT name, type, subscriptions, events >= 1, active FROM osquery_events "
            "WHERE publisher = 'udev' ORDER BY type").rows
        assert rows == [("udev", "publisher", 1, 1, 1), ("hardware_events", "subscriber", 1, 1, 1)]
    finally:
        pub.stop()
    assert not pub.active
    assert Engine(runtime=rt).query("SELECT active FROM osquery_events WHERE name = 'udev'").rows == [(0,)]


# --- FIM patterns and the watch plan ----------------------------------------------------------------------
def test_pattern_translation():
    assert translate("/etc/**") == "/etc/.*"
    assert translate("/tmp/*") == "/tmp/[^/]*"
    rx = compile_pattern("c", "/etc/ssh/sshd_config", lambda p: False).regex
    assert rx.fullmatch("/etc/ssh/sshd_config") and not rx.fullmatch("/etc/ssh/sshdXconfig")  # `_` literal
    rx = compile_pattern("c", "/home/%/.ssh/%%", lambda p: False).regex
    assert rx.fullmatch("/home/bob/.ssh/keys/id") and not rx.fullmatch("/home/bob/x/.ssh/id")
    rx = compile_pattern("c", "/var/log/[ab]?.log", lambda p: False).regex
    assert rx.fullmatch("/var/log/a1.log") and not rx.fullmatch("/var/log/c1.log")
    pat = compile_pattern("c", "/etc/ssh", lambda p: True)  # a plain directory: it and its entries
    assert pat.regex.fullmatch("/etc/ssh/moduli") and not pat.regex.fullmatch("/etc/ssh/a/b")
    with pytest.raises(ValueError, match="absolute"):
        compile_pattern("c", "etc/%%", lambda p: False)


def test_plan_does_not_follow_symlink_loops(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "loop").symlink_to(tmp_path / "a")
    (tmp_path / "a" / "out").symlink_to("/etc")
    planner = Planner()
    plan = planner.plan([compile_pattern("c", f"{tmp_path}/a/%%", planner.is_dir)], {})
    assert set(plan.dirs) == {f"{tmp_path}/a", f"{tmp_path}/a/b"}
    assert plan.notes == []


def test_plan_bounds_the_watched_directories(tmp_path):
    for i in range(12):
        (tmp_path / "t" / f"d{i:02d}").mkdir(parents=True)
    planner = Planner(max_dirs=5)
    plan = planner.plan([compile_pattern("c", f"{tmp_path}/t/%%", planner.is_dir)], {})
    assert len(plan.dirs) == 5 and plan.truncated
    assert any("watch limit of 5 directories" in n for n in plan.notes)


def test_plan_expands_directory_wildcards_and_prunes_excluded_trees(tmp_path):
    for user in ("alice", "bob"):
        (tmp_path / "home" / user / ".ssh" / "keys").mkdir(parents=True)
    (tmp_path / "home" / "carol").mkdir()  # no .ssh: nothing to watch
    (tmp_path / "home" / "bob" / ".ssh" / "keys" / "old").mkdir()
    planner = Planner()
    pattern = compile_pattern("ssh", f"{tmp_path}/home/%/.ssh/%%", planner.is_dir)
    excludes = {"ssh": compile_excludes([f"{tmp_path}/home/bob/.ssh/keys/%%"])}
    plan = planner.plan([pattern], excludes)
    assert set(plan.dirs) == {f"{tmp_path}/home/alice/.ssh", f"{tmp_path}/home/alice/.ssh/keys",
                              f"{tmp_path}/home/bob/.ssh"}


def test_update_reports_unusable_entries(store, caplog):
    fim = FimPublisher(store)
    with caplog.at_level(logging.WARNING, logger="quarry.publishers.fim"):
        problems = fim.update({"etc": ["/etc/%%", "relative/%"], "bad": "/not/a/list"},
                              {"nosuch": ["/x"]}, ["etc"])
    assert any("file_paths.etc: 'relative/%': not an absolute path" in p for p in problems)
    assert any("file_paths.bad: expected a list" in p for p in problems)
    assert any("exclude_paths.nosuch: no such category" in p for p in problems)
    assert any("file_accesses" in p for p in problems)
    assert len(caplog.records) == len(problems)


def test_fim_without_watchfiles_fails_soft(store, monkeypatch, caplog):
    import builtins

    real_import = builtins.__import__

    def no_watchfiles(name, *args, **kwargs):
        if name == "watchfiles":
            raise ImportError("no watchfiles")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_watchfiles)
    fim = FimPublisher(store)
    with caplog.at_level(logging.WARNING, logger="quarry.publishers.fim"):
        assert fim.start() is False
    assert "watchfiles package is not installed" in caplog.text and not fim.active


def test_hot_reload_changes_the_watch_set(store, tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two" / "sub").mkdir(parents=True)
    rt = Runtime()
    attach(rt, store)
    fim = FimPublisher(store, runtime=rt)
    fim.update({"a": [f"{tmp_path}/one/%"]})
    assert fim.start() and fim.wait_ready(10)
    try:
        assert fim.watched == {f"{tmp_path}/one"}
        fim.update({"b": [f"{tmp_path}/two/%%"]})
        assert fim.wait_ready(10)
        assert fim.watched == {f"{tmp_path}/two", f"{tmp_path}/two/sub"}
        (tmp_path / "one" / "ignored").write_text("x")  # no longer watched
        (tmp_path / "two" / "sub" / "seen").write_text("x")
        got = wait_for(lambda: store.rows("file_events"))
        assert [(r["target_path"], r["category"]) for r in got] == [(f"{tmp_path}/two/sub/seen", "b")]
        pub, sub = fim.status.snapshot()
        assert (pub.active, sub.active, sub.subscriptions, pub.refreshes) == (True, True, 1, 1)
    finally:
        fim.stop()
    assert not fim.active and fim.status.snapshot()[0].active is False


def test_event_status_without_runtime_counts_locally():
    status = EventStatus(None, "file_events")
    status.set_active(True, 3)
    status.fired(2)
    status.added(1)
    pub, sub = status.snapshot()
    assert (pub.name, pub.events, sub.name, sub.events, sub.subscriptions) == ("inotify", 2, "file_events", 1, 3)



def test_directories_that_appear_later_are_watched(store, tmp_path):
    (tmp_path / "home" / "alice").mkdir(parents=True)
    fim = FimPublisher(store, recheck_s=0.3)
    problems = fim.update({"ssh": [f"{tmp_path}/home/%/.ssh/%%"]})
    assert problems == []
    assert fim.start() and fim.wait_ready(10)
    try:
        assert fim.watched == frozenset()
        assert any("nothing to watch yet" in n for n in fim.notes)
        (tmp_path / "home" / "alice" / ".ssh").mkdir()
        assert wait_for(lambda: fim.watched == {f"{tmp_path}/home/alice/.ssh"})
        assert fim.wait_ready(10)
        (tmp_path / "home" / "bob" / ".ssh").mkdir(parents=True)  # a second match of the wildcard
        # Written before the new directory is watched: reported when it is, from a scan.
        (tmp_path / "home" / "bob" / ".ssh" / "early").write_text("x")
        assert wait_for(lambda: f"{tmp_path}/home/bob/.ssh" in fim.watched)
        assert fim.wait_ready(10)
        (tmp_path / "home" / "bob" / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA")
        got = wait_for(lambda: len(store.rows("file_events")) >= 2)
        got = store.rows("file_events")
        assert [(r["target_path"], r["action"]) for r in got] == [
            (f"{tmp_path}/home/bob/.ssh/early", "CREATED"),
            (f"{tmp_path}/home/bob/.ssh/authorized_keys", "CREATED")]
    finally:
        fim.stop()
