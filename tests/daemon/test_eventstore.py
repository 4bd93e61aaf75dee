"""EventStore: eids, osquery's events_expiry (on query) and events_max (newest kept), persistence."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from collector.engine import Engine
from collector.eventstore import EventStore, store_of
from collector.publishers import attach
from collector.runtime import Runtime
from collector.state import State


class Clock:
    def __init__(self, now: float = 1_700_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def state(tmp_path):
    s = State(tmp_path)
    yield s
    s.close()


def test_add_assigns_time_and_increasing_eids(state):
    clock = Clock()
    store = EventStore(state, clock=clock)
    assert store.add("hardware_events", [{"action": "add"}, {"action": "remove", "time": 5}]) == 2
    clock.now += 10
    store.add("hardware_events", [{"action": "change"}])
    rows = state.events("hardware_events")
    assert [r["eid"] for r in rows] == ["0000000001", "0000000002", "0000000003"]
    assert [r["time"] for r in rows] == [1_700_000_000, 5, 1_700_000_010]
    assert store.add("file_events", [{"action": "CREATED"}]) == 1
    assert state.events("file_events")[0]["eid"] == "0000000001"  # ids are per table


def test_expiry_happens_when_the_table_is_queried(state):
    clock = Clock()
    store = EventStore(state, expiry=3600, clock=clock)
    store.add("file_events", [{"target_path": "/old", "time": int(clock.now) - 4000}])
    store.add("file_events", [{"target_path": "/new", "time": int(clock.now) - 10}])
    # Unqueried events stay in the database, however old.
    assert len(state.events("file_events")) == 2
    assert [r["target_path"] for r in store.rows("file_events")] == ["/new"]
    assert [r["target_path"] for r in state.events("file_events")] == ["/new"]  # deleted, not hidden
    assert store.stats("file_events").expired == 1
    clock.now += 3600  # the second one expires later
    assert store.rows("file_events") == []


def test_zero_expiry_keeps_events(state):
    store = EventStore(state, expiry=0)
    store.add("file_events", [{"target_path": "/a", "time": 1}])
    assert len(store.rows("file_events")) == 1


def test_max_keeps_the_newest(state):
    store = EventStore(state, max_events=3, expiry=0)
    for i in range(5):
        store.add("hardware_events", [{"path": f"/dev/d{i}"}])
    rows = store.rows("hardware_events")
    assert [r["path"] for r in rows] == ["/dev/d2", "/dev/d3", "/dev/d4"]
    assert [r["eid"] for r in rows] == ["0000000003", "0000000004", "0000000005"]


def test_add_trims_beyond_the_maximum_without_a_query(state):
    store = EventStore(state, max_events=10, expiry=0)
    for i in range(300):
        store.add("file_events", [{"target_path": f"/f{i}"}])
    stored = state.events("file_events")
    assert len(stored) <= 10 + 64  # lazily trimmed in batches, bounded
    assert stored[-1]["target_path"] == "/f299"
    assert len(store.rows("file_events")) == 10


def test_events_and_eids_survive_reopening_the_state(tmp_path):
    s1 = State(tmp_path)
    EventStore(s1, expiry=0).add("file_events", [{"target_path": "/a"}, {"target_path": "/b"}])
    s1.close()
    s2 = State(tmp_path)
    store = EventStore(s2, expiry=0)
    assert [r["target_path"] for r in store.rows("file_events")] == ["/a", "/b"]
    store.add("file_events", [{"target_path": "/c"}])
    assert [r["eid"] for r in store.rows("file_events")] == ["0000000001", "0000000002", "0000000003"]
    s2.close()


def test_stats_count_since_start(state):
    clock = Clock()
    store = EventStore(state, clock=clock)
    assert store.stats("file_events").events == 0
    store.add("file_events", [{"target_path": "/a"}, {"target_path": "/b", "time": int(clock.now) + 5}])
    s = store.stats("file_events")
    assert (s.events, s.last_event) == (2, int(clock.now) + 5)


def test_configure_applies_new_flags(state):
    clock = Clock()
    store = EventStore(state, expiry=3600, clock=clock)
    store.add("file_events", [{"target_path": "/a", "time": int(clock.now) - 100}])
    store.configure(expiry=50)
    assert store.rows("file_events") == []


def test_runtime_and_engine_find_the_store(state):
    store = EventStore(state, expiry=0)
    assert store_of(Runtime.for_shell()) is None
    assert store_of(None) is None
    rt = Runtime()
    attach(rt, store)
    assert store_of(rt) is store
    assert store_of(SimpleNamespace(events=store)) is store  # a bare namespace as the runtime
    store.add("hardware_events", [{"action": "add", "path": "/dev/sdz", "type": "disk", "time": 7}])
    rows = Engine(runtime=rt).query("SELECT action, path, type, time, eid FROM hardware_events").rows
    assert rows == [("add", "/dev/sdz", "disk", 7, "0000000001")]
    # osquery_events lists both publishers and subscribers once, inactive until a publisher starts.
    names = Engine(runtime=rt).query("SELECT type, name, active FROM osquery_events ORDER BY type, name").rows
    assert names == [("publisher", "inotify", 0), ("publisher", "udev", 0),
                     ("subscriber", "file_events", 0), ("subscriber", "hardware_events", 0)]
