"""osquery_scheduler (Quarry's own table): the scheduler's timing, backpressure delays, skips and failures per
scheduled query, read through SQL from an engine thread while the scheduler runs on the loop."""

from __future__ import annotations

import asyncio
import random

import pytest

from collector.engine import Engine
from collector.model import QueryRun, ScheduledQuery
from collector.runtime import Runtime
from collector.scheduler import Scheduler
from collector.state import State
from tests.daemon.schedhelp import FakeTime, Recorder, ScaledTime


@pytest.fixture
def state(tmp_path):
    s = State(tmp_path / "db")
    yield s
    s.close()


def q(name: str, interval: int = 60, sql: str | None = None) -> ScheduledQuery:
    return ScheduledQuery(name=name, sql=sql or f"SELECT '{name}' AS x", interval=interval)


def rows(rt: Runtime) -> dict[str, dict]:
    return {r["name"]: r for r in Engine(runtime=rt).query("SELECT * FROM osquery_scheduler").dicts()}


def test_empty_outside_the_daemon():
    assert Engine().query("SELECT count(*) AS n FROM osquery_scheduler").dicts() == [{"n": 0}]


async def test_a_delayed_run_shows_while_it_waits_and_after(state):
    st = ScaledTime(speed=10)
    rec = Recorder(st.clock)
    rt = Runtime.for_shell()
    seen: dict[str, dict] = {}
    calls = 0

    async def on_result(run, decorations):
        nonlocal calls
        calls += 1
        if calls == 2:  # the pipeline is full for 6 intervals; look at the table meanwhile, from a thread
            await asyncio.sleep(0.3)
            seen.update(await asyncio.to_thread(rows, rt))
            await asyncio.sleep(0.3)

    sched = Scheduler([q("a", 1), q("b", 60)], state=state, run_query=rec.run_query, on_result=on_result,
                      clock=st.clock, sleep=st.sleep, schedule_timeout=15, runtime=rt, rng=random.Random(1))
    await asyncio.wait_for(sched.run(), 30)
    during = seen["a"]
    assert during["phase"] == "delivering" and during["waiting"] == 1
    assert 0 < st.clock() - during["waiting_since"] < 15 and during["delayed_runs"] == 0
    after = rows(rt)["a"]
    stats = sched.query_stats("a")
    assert after["waiting"] == 0 and after["waiting_since"] is None and after["phase"] == "idle"
    assert after["delayed_runs"] == stats.delayed_runs == 1
    assert after["backpressure_ms"] == after["last_backpressure_ms"] == stats.backpressure_ms
    assert 300 <= after["backpressure_ms"] <= 700
    assert during["waiting_since"] <= after["last_delay_time"] <= st.clock()
    assert after["skipped"] == stats.skipped >= 2  # due times during the wait collapse into the delayed run
    assert after["splayed_interval"] == sched.splayed_interval("a") == 1
    assert after["next_run"] == int(sched.next_run("a"))
    b = rows(rt)["b"]  # never delayed, never run: only its timing
    assert (b["delayed_runs"], b["backpressure_ms"], b["last_delay_time"], b["errors"]) == (0, 0, None, 0)
    assert 54 <= b["splayed_interval"] <= 66 and b["next_run"] == int(sched.next_run("b"))


async def test_failures_survive_a_restart_and_reset_when_the_query_changes(state):
    ft = FakeTime()
    rec = Recorder(ft.clock)
    rec.behaviour["bad"] = lambda query: QueryRun(query, [], [], ft.now, error="no such table: nope")
    rt = Runtime.for_shell()
    sched = Scheduler([q("bad", 5), q("ok", 5)], state=state, run_query=rec.run_query, on_result=rec.on_result,
                      clock=ft.clock, sleep=ft.sleep, max_sleep=1e9, schedule_timeout=30, runtime=rt)
    ft.sched = sched
    await asyncio.wait_for(sched.run(), 30)
    bad, runs = rows(rt)["bad"], len(rec.times("bad"))
    assert runs >= 5 and bad["errors"] == runs and bad["last_error"] == "no such table: nope"
    assert bad["last_error_time"] == int(rec.times("bad")[-1])
    assert rows(rt)["ok"]["errors"] == 0 and rows(rt)["ok"]["last_error"] is None

    rt2 = Runtime.for_shell()  # a restart: the counters come back from the state
    again = Scheduler([q("bad", 5), q("ok", 5)], state=state, run_query=rec.run_query, on_result=rec.on_result,
                      clock=ft.clock, sleep=ft.sleep, runtime=rt2)
    assert rows(rt2)["bad"]["errors"] == runs and rows(rt2)["bad"]["last_error"] == "no such table: nope"
    await again.update([q("bad", 5, sql="SELECT 2")])  # new SQL: afresh, as osquery_schedule; "ok" removed
    assert set(rows(rt2)) == {"bad"} and set(rt2.schedule) == {"bad"}
    assert rows(rt2)["bad"]["errors"] == 0 and rows(rt2)["bad"]["last_error"] is None
    assert rows(rt2)["bad"]["next_run"] == int(again.next_run("bad"))
