from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from collector.model import Decorators, QueryRun, ScheduledQuery
from collector.runtime import Runtime
from collector.scheduler import Scheduler, next_multiple, splay
from collector.state import State
from tests.daemon.schedhelp import START, FakeTime, Recorder, ScaledTime


@pytest.fixture
def state(tmp_path):
    s = State(tmp_path / "db")
    yield s
    s.close()


def q(name: str, interval: int = 60, sql: str | None = None, **kw) -> ScheduledQuery:
    return ScheduledQuery(name=name, sql=sql or f"SELECT '{name}' AS x", interval=interval, **kw)


def fake_scheduler(queries, state, *, jitter=0.0, **kw):
    ft = FakeTime(jitter=jitter)
    rec = Recorder(ft.clock)
    kw.setdefault("max_sleep", 1e9)
    sched = Scheduler(queries, state=state, run_query=rec.run_query, on_result=rec.on_result, clock=ft.clock,
                      sleep=ft.sleep, **kw)
    ft.sched = sched
    return sched, ft, rec


async def run_for(sched, seconds: float = 30.0):
    await asyncio.wait_for(sched.run(), timeout=seconds)


# --- splay --------------------------------------------------------------------------------------------------
def test_splay_range_is_osquerys():
    rng = random.Random(1)
    for interval in (10, 60, 3600, 86400):
        diff = interval * 10 // 100
        values = {splay(interval, 10, rng) for _ in range(3000)}
        assert min(values) >= max(1, interval - diff) and max(values) <= interval + diff
        if diff <= 360:  # both ends reachable (checked where 3000 draws cover the range)
            assert min(values) == interval - diff and max(values) == interval + diff
    assert {splay(7, 10, rng) for _ in range(50)} == {7}  # int(7 * 10 / 100) == 0: no splay
    assert {splay(1, 50, rng) for _ in range(50)} <= {1}  # never below 1
    assert max(splay(100, 0, rng) for _ in range(500)) > 100  # osquery forces a percent <= 1 back to 10
    assert splay(100, 150, rng) == 100


def test_splay_persists_across_restarts_until_the_interval_changes(state):
    queries = [q(f"q{i}", 3600) for i in range(20)]
    first = Scheduler(queries, state=state, run_query=None, on_result=None, rng=random.Random(1))
    splays = {x.name: first.splayed_interval(x.name) for x in queries}
    assert len(set(splays.values())) > 1 and all(3240 <= s <= 3960 for s in splays.values())
    assert state.get("splay", "q0") == {"interval": 3600, "splay": splays["q0"]}
    again = Scheduler(queries, state=state, run_query=None, on_result=None, rng=random.Random(99))
    assert {x.name: again.splayed_interval(x.name) for x in queries} == splays
    changed = Scheduler([q("q0", 600)], state=state, run_query=None, on_result=None, rng=random.Random(5))
    assert 540 <= changed.splayed_interval("q0") <= 660
    assert state.get("splay", "q0")["interval"] == 600


# --- placement on the clock -----------------------------------------------------------------------------------
async def test_runs_sit_on_multiples_of_the_interval_without_drift(tmp_path):
    n = 10_000
    # 30,000 small commits (executing_query, stats): on tmpfs when there is one, to keep the test quick
    shm = Path("/dev/shm")
    state = State(tempfile.mkdtemp(dir=shm) if shm.is_dir() and os.access(shm, os.W_OK) else tmp_path)
    sched, _ft, rec = fake_scheduler([q("a", 3600)], state, jitter=0.4, rng=random.Random(3))
    s = sched.splayed_interval("a")

    async def on_result(run, decorations):
        rec.delivered.append((run.query.name, decorations))
        if len(rec.delivered) == n:
            asyncio.ensure_future(sched.stop())

    sched._on_result = on_result
    await run_for(sched, 120)
    times = rec.times("a")
    assert len(times) == n
    planned = [t - (t % s) for t in times]  # the multiple each run belongs to (lateness < 1 s)
    assert all(t - p < 1.0 for t, p in zip(times, planned))
    assert all(b - a == s for a, b in itertools.pairwise(planned))  # every interval once, none twice
    assert planned[-1] == next_multiple(START, s) + (n - 1) * s  # after 10,000 intervals: no drift at all
    state.close()
    if str(state.path).startswith(str(shm)):
        shutil.rmtree(state.path.parent)


async def test_host_sleep_runs_once_and_clock_going_back_does_not_stall(state, caplog):
    sched, ft, rec = fake_scheduler([q("a", 60)], state, rng=random.Random(4))
    s = sched.splayed_interval("a")
    jumped: list[str] = []

    def hook(ft):
        count = len(rec.runs)
        if count == 3 and "fwd" not in jumped:
            jumped.append("fwd")
            ft.now += 10 * s + 7  # the laptop slept for ten intervals
        elif count == 6 and "back" not in jumped:
            jumped.append("back")
            ft.now -= 86400  # NTP stepped the clock back a day
        elif count == 9:
            asyncio.ensure_future(sched.stop())

    ft.hook = hook
    caplog.set_level(logging.INFO, "quarry.scheduler")
    await run_for(sched)
    t = rec.times("a")
    assert [t[1] - t[0], t[2] - t[1]] == [s, s]
    assert t[3] - t[2] == 11 * s + 7  # one run on waking, not eleven replayed
    assert t[4] % s == 0 and t[4] - t[3] < s  # then back on the multiples
    assert t[5] - t[4] == s
    assert t[6] < t[5] - 86400 + 2 * s and t[6] % s == 0  # after the jump back: within an interval
    assert "missed" in caplog.text and "clock went back" in caplog.text


# --- concurrency ----------------------------------------------------------------------------------------------
async def test_slow_query_stalls_neither_the_loop_nor_other_queries_and_never_runs_twice(state, caplog):
    st = ScaledTime(speed=10)
    rec = Recorder(st.clock)
    lock = threading.Lock()
    active = {"slow": 0, "max": 0}

    def slow(query):
        with lock:
            active["slow"] += 1
            active["max"] = max(active["max"], active["slow"])
        time.sleep(1.5)  # 15 scheduled intervals
        with lock:
            active["slow"] -= 1
        return QueryRun(query, [], [], st.clock())

    rec.behaviour["slow"] = slow
    sched = Scheduler([q("slow", 1), q("fast", 1)], state=state, run_query=rec.run_query,
                      on_result=rec.on_result, clock=st.clock, sleep=st.sleep, workers=2, schedule_timeout=25,
                      max_sleep=1.0)
    await run_for(sched)
    assert len(rec.times("fast")) >= 12  # ~24 expected; a stalled loop would give about 2
    assert active["max"] == 1
    assert 1 <= len(rec.times("slow")) <= 2
    assert sched.query_stats("slow").skipped >= 5
    assert "still running" in caplog.text


async def test_a_failing_query_is_logged_and_the_others_continue(state, caplog):
    sched, ft, rec = fake_scheduler([q("good", 5), q("raises", 5), q("errors", 5)], state, schedule_timeout=60)

    def raises(query):
        raise RuntimeError("boom")

    rec.behaviour["raises"] = raises
    rec.behaviour["errors"] = lambda query: QueryRun(query, [], [], ft.now, error="no such table: nope")
    await run_for(sched)
    assert len(rec.times("good")) == 11 and len(rec.times("raises")) == 11 and len(rec.times("errors")) == 11
    assert {n for n, _ in rec.delivered} == {"good"}  # failures are not delivered as empty results
    for name, text in (("raises", "RuntimeError: boom"), ("errors", "no such table: nope")):
        stats = sched.query_stats(name)
        assert stats.errors == stats.executions == 11 and stats.last_error == text
    assert "errors: query failed: no such table: nope" in caplog.text


async def test_run_at_start_and_startup_priority(state):
    queries = [q("now", 3600, run_at_start=True), q("later", 3600), q("p2", 3600, startup_priority=2),
               q("p1", 3600, startup_priority=1)]
    sched, _ft, rec = fake_scheduler(queries, state, schedule_timeout=5, rng=random.Random(2))
    await run_for(sched)
    assert rec.times("now") == [START]
    assert rec.times("later") == []
    order = [n for n, _ in rec.runs if n in ("p1", "p2")]
    assert order == ["p1", "p2"]


async def test_schedule_timeout_stops_the_scheduler(state):
    sched, _ft, rec = fake_scheduler([q("a", 5)], state, schedule_timeout=60)
    await run_for(sched)
    assert rec.times("a") == [START + 5 * k for k in range(1, 12)]
    real = Scheduler([q("b", 1)], state=state, run_query=Recorder(time.time).run_query,
                     on_result=Recorder(time.time).on_result, schedule_timeout=0.5)
    t0 = time.monotonic()
    await run_for(real, 10)
    assert time.monotonic() - t0 < 5


async def test_hot_update_keeps_unchanged_queries(state):
    rt = Runtime.for_shell()
    queries = [q("keep", 60), q("edit", 120), q("gone", 60), q("touch", 60, description="a")]
    sched, ft, rec = fake_scheduler(queries, state, runtime=rt, schedule_timeout=600, rng=random.Random(8))
    before: dict = {}

    async def reload(ft):
        if ft.now >= START + 300 and not before:
            before.update(next=sched.next_run("keep"), splay=sched.splayed_interval("keep"),
                          execs=sched.query_stats("keep").executions, at=ft.now)
            change = await sched.update([q("keep", 60), q("edit", 120, sql="SELECT 2 AS x"),
                                         q("touch", 60, description="b"), q("new", 60)])
            before["change"] = change
            assert sched.next_run("keep") == before["next"] and sched.splayed_interval("keep") == before["splay"]
            assert sched.query_stats("keep").executions == before["execs"] > 0
            assert sched.query_stats("edit").executions == 0 and sched.query_stats("gone") is None
            assert "gone" not in rt.schedule and "new" in rt.schedule

    ft.hook = reload
    await run_for(sched)
    change = before["change"]
    assert (change.added, change.removed, change.changed, change.updated, change.unchanged) == (
        ["new"], ["gone"], ["edit"], ["touch"], ["keep"])
    assert rec.times("gone") and all(t <= before["at"] for t in rec.times("gone"))
    assert rec.times("new") and all(t > before["at"] for t in rec.times("new"))
    s = before["splay"]
    assert all(t % s == 0 for t in rec.times("keep"))  # same multiples before and after the reload
    assert sched.query_stats("keep").executions == len(rec.times("keep"))


async def test_backpressure_delays_the_next_run_and_is_recorded(state, caplog):
    st = ScaledTime(speed=10)
    rec = Recorder(st.clock)
    delivering = {"now": False, "overlap": 0, "calls": 0}

    def run_query(query):
        if delivering["now"]:
            delivering["overlap"] += 1
        return rec.run_query(query)

    async def on_result(run, decorations):
        delivering["calls"] += 1
        if delivering["calls"] == 2:
            delivering["now"] = True
            await asyncio.sleep(0.6)  # the pipeline is full for 6 intervals
            delivering["now"] = False

    sched = Scheduler([q("a", 1)], state=state, run_query=run_query, on_result=on_result, clock=st.clock,
                      sleep=st.sleep, schedule_timeout=15)
    await run_for(sched)
    stats = sched.query_stats("a")
    assert delivering["overlap"] == 0  # no run of the query while its previous result was being delivered
    assert 300 <= stats.backpressure_ms == stats.last_backpressure_ms <= 700
    assert sched.backpressure_ms == stats.backpressure_ms
    assert stats.skipped >= 2  # due times during the wait collapse into one delayed run
    assert "backpressure" in caplog.text
    assert state.get("stats", "a")["backpressure_ms"] == stats.backpressure_ms


async def test_stats_survive_a_restart_and_reach_the_runtime(state):
    sched, ft, rec = fake_scheduler([q("a", 5)], state, schedule_timeout=30)
    rec.behaviour["a"] = lambda query: QueryRun(query, ["x"], [{"x": "abc"}, {"x": "de"}], ft.now, wall_ms=7,
                                                user_ms=3, system_ms=2, memory=1000)
    await run_for(sched)
    stored = state.get("stats", "a")
    assert stored["executions"] == 5 and stored["rows"] == 10 and stored["wall_time_ms"] == 35
    assert stored["output_size"] == 5 * len(b'[{"x":"abc"},{"x":"de"}]')
    assert state.get("executing_query", "a") is None
    rt = Runtime.for_shell()
    again, *_ = fake_scheduler([q("a", 5)], state, runtime=rt)
    row = rt.schedule["a"]
    assert (row.executions, row.wall_time_ms, row.user_time, row.system_time, row.average_memory) == (
        5, 35, 15, 10, 1000)
    assert again.query_stats("a").rows == 10
    fresh, *_ = fake_scheduler([q("a", 5, sql="SELECT 2")], state, runtime=rt)
    assert fresh.query_stats("a").executions == 0 and rt.schedule["a"].executions == 0


async def test_decorators_load_interval_and_always_reach_each_result(state):
    calls: list[str] = []

    def run_decorators(kind, sqls):
        calls.append(kind)
        return {"kind": kind, kind: ",".join(sqls)}

    decorators = Decorators(load=("L",), always=("A",), interval=((60, ("I",)),))
    sched, _ft, rec = fake_scheduler([q("a", 9)], state, decorators=decorators, run_decorators=run_decorators,
                                    schedule_timeout=100)
    await run_for(sched)
    assert rec.times("a") == [START + 9 * k for k in range(1, 12)]
    assert calls[0] == "load" and calls.count("interval") == 1 and calls.count("always") == 11
    first, *_, last = [d for _, d in rec.delivered]
    assert first == {"kind": "always", "load": "L", "always": "A"}
    assert last == {"kind": "always", "load": "L", "interval": "I", "always": "A"}
    assert sched.decorations == {"kind": "interval", "load": "L", "interval": "I"}


async def test_removing_a_running_query_interrupts_it_and_drops_its_result(state):
    release = threading.Event()
    interrupted: list[int] = []

    def run_query(query):
        release.wait(10)
        return QueryRun(query, ["x"], [{"x": 1}], time.time())

    def interrupt(thread_id):
        interrupted.append(thread_id)
        release.set()

    delivered: list[str] = []

    async def on_result(run, decorations):
        delivered.append(run.query.name)

    sched = Scheduler([q("long", 3600, run_at_start=True)], state=state, run_query=run_query, on_result=on_result,
                      interrupt=interrupt)
    task = asyncio.ensure_future(sched.run())
    for _ in range(200):
        if sched.running():
            break
        await asyncio.sleep(0.01)
    assert list(sched.running()) == ["long"]
    change = await sched.update([])
    assert change.removed == ["long"] and len(interrupted) == 1
    await sched.wait_idle()
    assert delivered == [] and sched.query("long") is None
    await sched.stop()
    await asyncio.wait_for(task, 5)


async def test_stop_waits_then_interrupts_a_query_that_does_not_finish(state):
    release = threading.Event()
    interrupted: list[int] = []

    def run_query(query):
        release.wait(10)
        return QueryRun(query, [], [], time.time())

    def interrupt(thread_id):
        interrupted.append(thread_id)
        release.set()

    sched = Scheduler([q("stuck", 3600, run_at_start=True)], state=state, run_query=run_query,
                      on_result=Recorder(time.time).on_result, interrupt=interrupt)
    task = asyncio.ensure_future(sched.run())
    for _ in range(500):
        if sched.running():
            break
        await asyncio.sleep(0.01)
    t0 = time.monotonic()
    await asyncio.wait_for(sched.stop(timeout=0.3), 5)
    assert 0.25 <= time.monotonic() - t0 < 3 and len(interrupted) == 1
    await asyncio.wait_for(task, 5)
    stats = sched.query_stats("stuck")
    assert stats.errors == 1 and "shutting down" in stats.last_error
    assert state.get("executing_query", "stuck") is None


async def test_stop_during_start_runs_nothing(state):
    # SIGTERM right after the daemon's loop installed its handlers: stop() lands while run() reads the crash
    # records, before the run_at_start queries would start.
    rec = Recorder(time.time)
    sched = Scheduler([q("a", 60, run_at_start=True)], state=state, run_query=rec.run_query,
                      on_result=rec.on_result)
    task = asyncio.ensure_future(sched.run())
    await asyncio.sleep(0)  # run() is now in _start, waiting for the crash records
    await asyncio.wait_for(sched.stop(), 10)
    await asyncio.wait_for(task, 10)
    assert rec.runs == []
