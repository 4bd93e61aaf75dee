from __future__ import annotations

import asyncio
import logging
import time

import pytest

from collector.engine import Engine
from collector.enginepool import EnginePool
from collector.model import ScheduledQuery
from collector.runtime import Runtime
from collector.scheduler import Scheduler
from collector.state import State
from collector.watchdog import Denylist, Watchdog, WatchdogLimits
from tests.daemon.schedhelp import START, FakeTime, Recorder

SPIN = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"
# ~260 MB of text if nothing stops it, growing for about two seconds
BALLOON = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000000) "
           "SELECT length(group_concat(hex(randomblob(64)))) FROM c")


@pytest.fixture
def state(tmp_path):
    s = State(tmp_path / "db")
    yield s
    s.close()


# --- limits and arithmetic ------------------------------------------------------------------------------------
def test_levels_and_overrides_are_osquerys():
    assert WatchdogLimits.for_level(0) == WatchdogLimits(200, 10, 12, 3.0)
    assert WatchdogLimits.for_level(1) == WatchdogLimits(100, 5, 6, 3.0)
    assert WatchdogLimits.for_level(-1) == WatchdogLimits(10000, 100, 1000, 3.0)
    assert WatchdogLimits.for_level(1, memory_limit=300, utilization_limit=20, latency_limit=30) == \
        WatchdogLimits(300, 20, 30, 3.0)
    with pytest.raises(ValueError, match="watchdog_level"):
        WatchdogLimits.for_level(2)


class FakeSupervised:
    def __init__(self, queries: dict[str, ScheduledQuery]) -> None:
        self.queries = queries
        self.now_running: dict[str, ScheduledQuery] = {}
        self.stopped: list[tuple[str, str]] = []
        self.denied: list[tuple[str, float, str]] = []

    def running(self):
        return dict(self.now_running)

    def query(self, name):
        return self.queries.get(name)

    def stop_query(self, name, reason):
        self.stopped.append((name, reason))
        return True

    def denylist_query(self, name, until, cause):
        self.denied.append((name, until, cause))


class Samples:
    """A fake process: CPU seconds and RSS set by the test, monotonic time advanced per check."""

    def __init__(self) -> None:
        self.cpu, self.rss, self.mono = 0.0, 50 << 20, 0.0

    def sample(self):
        return self.cpu, self.rss

    def step(self, cpu_s: float = 0.0, rss: int | None = None, dt: float = 3.0) -> None:
        self.cpu += cpu_s
        self.mono += dt
        if rss is not None:
            self.rss = rss


def make_dog(queries, *, delay=0.0, level=0):
    sup = FakeSupervised(queries)
    s = Samples()
    dog = Watchdog(sup, WatchdogLimits.for_level(level), delay=delay, sample=s.sample, cores=2,
                   clock=lambda: START, monotonic=lambda: s.mono)
    dog.check()  # baseline
    return dog, sup, s


def test_cpu_limit_needs_the_latency_of_consecutive_over_limit_checks():
    heavy = ScheduledQuery("heavy", "SELECT 1")
    dog, sup, s = make_dog({"heavy": heavy})
    sup.now_running = {"heavy": heavy}
    # allowed per 3 s check on 2 cores at 10 %: 2 * 3000 * 10 / 100 = 600 ms
    for _ in range(3):
        s.step(cpu_s=0.61)
        assert dog.check() == []
    s.step(cpu_s=0.5)  # one check under the limit resets the count
    assert dog.check() == []
    for _ in range(3):
        s.step(cpu_s=3.0)
        assert dog.check() == []
    s.step(cpu_s=3.0)  # the 4th consecutive: 12 s at the limit
    [event] = dog.check()
    assert sup.stopped and sup.stopped[0][0] == "heavy" and "watchdog" in sup.stopped[0][1]
    assert sup.denied == [("heavy", START + 86400, "cpu")]
    assert event["cause"] == "cpu" and event["value"] == 50.0 and event["limit"] == 10
    assert event["stopped"] and event["denylisted"] and event["expiry"] == START + 86400
    assert event["duration_s"] == 12.0 and event["query"] == "heavy"


def test_memory_limit_is_growth_over_the_start_footprint_and_respects_the_delay():
    q = ScheduledQuery("big", "SELECT 1", denylist=False)
    dog, sup, s = make_dog({"big": q}, delay=10, level=1)
    sup.now_running = {"big": q}
    s.step(rss=(50 << 20) + (101 << 20), dt=3)  # over 100 MB but inside the 10 s delay
    assert dog.check() == []
    s.step(rss=(50 << 20) + (99 << 20), dt=9)  # after the delay, under the limit
    assert dog.check() == []
    s.step(rss=(50 << 20) + (101 << 20))
    [event] = dog.check()
    assert event["cause"] == "memory" and event["value"] == 101 << 20 and event["limit"] == 100 << 20
    assert event["stopped"] and not event["denylisted"] and event["expiry"] is None
    assert sup.denied == []  # denylist: false
    s.step(dt=3)  # after the stop the footprint becomes the new baseline: no second victim
    sup.now_running = {"other": ScheduledQuery("other", "SELECT 2")}
    assert dog.check() == [] and dog.check() == []


def test_a_query_that_finished_inside_the_over_limit_window_is_still_denylisted():
    q = ScheduledQuery("burst", "SELECT 1")
    dog, sup, s = make_dog({"burst": q}, level=1)  # 5 %, 6 s: two checks
    sup.now_running = {"burst": q}
    s.step(cpu_s=3.0)
    assert dog.check() == []
    sup.now_running = {}
    s.step(cpu_s=3.0)
    [event] = dog.check()
    assert event["query"] == "burst" and not event["stopped"] and event["denylisted"]
    assert sup.stopped == [] and sup.denied[0][0] == "burst"


# --- the real thing: heavy SQL in the scheduler's workers -----------------------------------------------------
async def run_heavy(state, queries, limits, *, runtime=None, stop_when=lambda events: bool(events)):
    pool = EnginePool(factory=lambda: Engine(tables=[]))
    rec = Recorder(time.time)
    sched = Scheduler(queries, state=state, run_query=pool.run, on_result=rec.on_result, interrupt=pool.interrupt,
                      runtime=runtime, workers=2)
    events: list[dict] = []
    dog = Watchdog(sched, limits, delay=0, on_status=events.append)
    tasks = [asyncio.ensure_future(sched.run()), asyncio.ensure_future(dog.run())]
    deadline = time.monotonic() + 20
    while not stop_when(events) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await sched.wait_idle()
    dog.stop()
    await sched.stop(timeout=5)
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    return sched, events


async def test_cpu_hog_is_stopped_and_denylisted_for_a_day(state, caplog):
    rt = Runtime.for_shell()
    hog = ScheduledQuery("pack_bad_hog", SPIN, interval=3600, run_at_start=True)
    limits = WatchdogLimits(memory_mb=10000, utilization=5, latency=0.3, interval=0.1)
    t0 = time.time()
    sched, events = await run_heavy(state, [hog], limits, runtime=rt)
    [event] = [e for e in events if e["query"] == "pack_bad_hog"]
    assert event["cause"] == "cpu" and event["stopped"] and event["denylisted"] and event["unit"] == "percent"
    assert event["limit"] == 5 and event["value"] > 5
    assert t0 + 86400 - 5 <= event["expiry"] <= time.time() + 86400
    assert "pack_bad_hog" in event["message"] and "denylisted until" in event["message"]
    stored = state.get("denylist", "pack_bad_hog")
    assert stored == event["expiry"]
    assert Denylist(state).until("pack_bad_hog", time.time()) == stored  # persisted for the next process
    stats = sched.query_stats("pack_bad_hog")
    assert stats.stopped == 1 and stats.errors == 1 and "watchdog" in stats.last_error
    assert stats.denylisted and stats.denylisted_until == stored
    assert rt.schedule["pack_bad_hog"].denylisted
    assert "system performance limits exceeded" in caplog.text
    assert state.get("executing_query", "pack_bad_hog") is None
    # the next scheduled run is skipped while denylisted
    sched._due(sched._entries["pack_bad_hog"], time.time())
    assert sched.query_stats("pack_bad_hog").denylist_skips == 1


async def test_memory_balloon_with_denylist_false_is_stopped_but_not_denylisted(state):
    q = ScheduledQuery("balloon", BALLOON, interval=3600, run_at_start=True, denylist=False)
    limits = WatchdogLimits(memory_mb=20, utilization=100, latency=1000, interval=0.05)
    sched, events = await run_heavy(state, [q], limits)
    [event] = [e for e in events if e["query"] == "balloon"]
    assert event["cause"] == "memory" and event["stopped"] and not event["denylisted"] and event["expiry"] is None
    assert event["value"] > 20 << 20 and event["limit"] == 20 << 20
    assert state.get("denylist", "balloon") is None
    stats = sched.query_stats("balloon")
    assert stats.stopped == 1 and not stats.denylisted and "watchdog" in stats.last_error


# --- osquery's crash rule ---------------------------------------------------------------------------------------
async def test_query_executing_when_the_process_died_is_denylisted_at_start(state, caplog):
    state.put("executing_query", "crasher", START - 30)
    state.put("executing_query", "exempt", START - 30)
    ft = FakeTime()
    rec = Recorder(ft.clock)
    seen: list[object] = []

    def run_query(query):
        seen.append(state.get("executing_query", query.name))  # recorded while it runs
        return rec.run_query(query)

    statuses: list[dict] = []
    queries = [ScheduledQuery("crasher", "SELECT 1", 5, run_at_start=True),
               ScheduledQuery("exempt", "SELECT 2", 5, run_at_start=True, denylist=False)]
    sched = Scheduler(queries, state=state, run_query=run_query, on_result=rec.on_result, clock=ft.clock,
                      sleep=ft.sleep, schedule_timeout=20, on_status=statuses.append, max_sleep=1e9)
    ft.sched = sched
    caplog.set_level(logging.WARNING)
    await asyncio.wait_for(sched.run(), 10)
    assert "Scheduled query may have failed: crasher" in caplog.text
    assert state.get("denylist", "crasher") == START + 86400 and state.get("denylist", "exempt") is None
    assert list(state.items("executing_query")) == []
    assert rec.times("crasher") == [] and len(rec.times("exempt")) == 4  # at start, +5, +10, +15
    assert seen == [START] * 1 + [START + 5, START + 10, START + 15]
    by_query = {e["query"]: e for e in statuses}
    assert by_query["crasher"]["cause"] == "crash" and by_query["crasher"]["denylisted"]
    assert by_query["crasher"]["expiry"] == START + 86400
    assert not by_query["exempt"]["denylisted"]
    assert sched.query_stats("crasher").denylisted and sched.query_stats("crasher").denylist_skips == 4


async def test_denylist_expires_and_the_query_runs_again(state, caplog):
    Denylist(state).add("q", START + 12)
    ft = FakeTime()
    rec = Recorder(ft.clock)
    sched = Scheduler([ScheduledQuery("q", "SELECT 1", 5)], state=state, run_query=rec.run_query,
                      on_result=rec.on_result, clock=ft.clock, sleep=ft.sleep, schedule_timeout=30, max_sleep=1e9)
    ft.sched = sched
    assert sched.query_stats("q").denylisted
    caplog.set_level(logging.INFO)
    await asyncio.wait_for(sched.run(), 10)
    assert rec.times("q") == [START + 15, START + 20, START + 25]
    assert sched.query_stats("q").denylist_skips == 2 and not sched.query_stats("q").denylisted
    assert state.get("denylist", "q") is None and "denylist expired" in caplog.text
