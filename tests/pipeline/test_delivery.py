"""Batching, retry, Partial, TooLarge, Rejected, dead letters, concurrency and rate limits (fake shipper)."""

from __future__ import annotations

import asyncio
import base64
import os
import stat
import time

import orjson

from collector.pipeline import Delivered, Health, Partial, Pipeline, Record, Rejected, Retry, TooLarge
from collector.pipeline.sender import RateLimiter, backoff
from tests.pipeline.fake import FakeShipper, ids_of, rec, settings, wait_for


async def run(shipper, n=200, spool=True, status=None, **kw):
    p = Pipeline([shipper], {shipper.name: settings(shipper.name, spool=spool, **kw)}, kw.pop("dir", "."),
                 on_status=status.append if status is not None else None, status_interval_s=0.02)
    await p.start()
    await p.submit_many([rec(i) for i in range(n)])
    return p


def dead_letters(p: Pipeline, name: str = "fake") -> list[dict]:
    path = p.runners[name].deadletter.path
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


async def test_at_least_once_through_an_outage(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper()
    sh.dead = True
    p = await run(sh, n=500)
    await wait_for(lambda: sh.calls >= 10)
    snap = p.snapshot()["fake"]
    assert snap["health"] == "retrying" and snap["acked"] == 0 and snap["retried"] > 0
    assert snap["last_error"] == "connection refused"
    await p.submit_many([rec(i) for i in range(500, 1000)])  # more arrives during the outage
    sh.dead = False
    await wait_for(lambda: len({r.id for r in sh.delivered}) == 1000)
    snap = p.snapshot()["fake"]
    assert snap["acked"] == 1000 and snap["health"] == "ok" and snap["dead_lettered"] == 0
    assert sorted(ids_of(sh.delivered)) == list(range(1000))  # each exactly once: acks came back
    await p.stop(1)
    assert p.snapshot()["fake"]["spool_events"] == 0


async def test_temporary_errors_are_retried_without_an_attempt_limit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper(fail_times=25)
    p = await run(sh, n=10, spool=False)
    await wait_for(lambda: len(sh.delivered) == 10)
    assert sh.calls == 26 and p.snapshot()["fake"]["retried"] == 250
    await p.stop(1)


async def test_partial_delivers_the_rest_retries_listed_and_dead_letters_rejected(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def answer(req, call):
        ids = ids_of(req.records)
        if call == 1:
            return Partial(retry=(ids.index(3), ids.index(5)), rejected=((ids.index(7), "mapper_parsing_exception"),),
                           retry_reason="es 429")
        return None

    sh = FakeShipper(answer=lambda req, call: answer(req, call) or Delivered())
    p = await run(sh, n=10, spool=True, batch={"max_events": 10, "linger_ms": 50})
    await wait_for(lambda: p.snapshot()["fake"]["spool_events"] == 0)
    assert sh.requests[0] == list(range(10)) and sh.requests[1] == [3, 5]
    assert sorted(ids_of(sh.delivered)) == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    dl = dead_letters(p)
    assert [(d["id"], d["reason"], d["payload"]["i"]) for d in dl] == [("id-7", "mapper_parsing_exception", 7)]
    snap = p.snapshot()["fake"]
    assert snap["acked"] == 9 and snap["dead_lettered"] == 1 and snap["retried"] == 2
    await p.stop(1)


async def test_too_large_splits_down_to_singles_and_dead_letters_a_single_too_large(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def answer(req, call):
        if len(req.records) > 2:
            return TooLarge("413 Request Entity Too Large")
        if 13 in ids_of(req.records) and len(req.records) == 1:
            return TooLarge("413 event too large")
        if 13 in ids_of(req.records):
            return TooLarge("413")
        return Delivered()

    sh = FakeShipper(answer=answer)
    p = await run(sh, n=16, spool=True, batch={"max_events": 16, "linger_ms": 50})
    await wait_for(lambda: p.snapshot()["fake"]["spool_events"] == 0)
    assert sh.requests[0] == list(range(16))
    assert sh.requests[1] == list(range(8))  # halves, in order
    assert sorted(ids_of(sh.delivered)) == [i for i in range(16) if i != 13]
    assert max(len(r) for r in sh.requests[1:]) <= 8 and [13] in sh.requests
    dl = dead_letters(p)
    assert [(d["id"], d["reason"]) for d in dl] == [("id-13", "too large for the destination: 413 event too large")]
    assert p.snapshot()["fake"]["splits"] >= 4
    await p.stop(1)


async def test_a_single_event_too_large_is_truncated_with_a_marker_when_the_answer_tells_the_limit(tmp_path,
                                                                                                  monkeypatch):
    """A destination that only learns its limit from the answer (413): the shipper declares max_event_bytes
    then, and the event refused alone is cut to it and sent once more."""
    monkeypatch.chdir(tmp_path)
    status: list[dict] = []
    limit = 2_000

    def answer(req, call):
        if req.size > limit:
            sh.max_event_bytes = limit
            return TooLarge("413 event too large")
        return Delivered()

    sh = FakeShipper(answer=answer)
    sh.max_event_bytes = 0
    p = Pipeline([sh], {"fake": settings("fake", spool=True, batch={"max_events": 1, "linger_ms": 10})}, ".",
                 on_status=status.append, status_interval_s=0.02)
    await p.start()
    await p.submit_many([rec(0), rec(1, size=50_000), rec(2)])
    await wait_for(lambda: p.snapshot()["fake"]["spool_events"] == 0)
    assert sorted(ids_of(sh.delivered)) == [0, 1, 2] and dead_letters(p) == []
    big = next(r for r in sh.delivered if r.id == "id-1")
    doc = orjson.loads(big.payload)
    assert big.size <= limit and doc["quarry_truncated"] == ["pad"] and "…[truncated " in doc["pad"]
    assert p.snapshot()["fake"]["notices"] == {"truncation": 1}
    await wait_for(lambda: any(s["event"] == "truncation" for s in status))
    ev = next(s for s in status if s["event"] == "truncation")
    assert ev["query"] == "pack_q" and ev["rows"] == 1 and ev["bytes"] > 50_000 and "cut to" in ev["reason"]
    await p.stop(1)


async def test_an_event_above_max_event_bytes_is_cut_and_reported_once_however_often_it_is_retried(tmp_path,
                                                                                                    monkeypatch):
    monkeypatch.chdir(tmp_path)
    status: list[dict] = []
    limit = 2_000
    attempts: list[dict[int, int]] = []  # per send(): payload size by record number

    def answer(req, call):
        attempts.append({orjson.loads(r.payload)["i"]: r.size for r in req.records})
        return Retry("broker not reachable") if call <= 3 else Delivered()

    sh = FakeShipper(answer=answer)
    sh.max_event_bytes = limit
    p = Pipeline([sh], {"fake": settings("fake", spool=True, batch={"max_events": 10, "linger_ms": 50})}, ".",
                 on_status=status.append, status_interval_s=0.02)
    await p.start()
    await p.submit_many([rec(0), rec(1, size=50_000), rec(2)])
    await wait_for(lambda: p.snapshot()["fake"]["spool_events"] == 0)
    assert len(attempts) == 4 and all(sorted(a) == [0, 1, 2] for a in attempts)  # one batch, 3 retries
    assert all(a[1] <= limit for a in attempts)  # cut before the first attempt, the same cut every time
    assert sorted(ids_of(sh.delivered)) == [0, 1, 2] and dead_letters(p) == []
    assert orjson.loads(next(r for r in sh.delivered if r.id == "id-1").payload)["quarry_truncated"] == ["pad"]
    snap = p.snapshot()["fake"]
    assert snap["notices"] == {"truncation": 1} and snap["retried"] == 9
    await p.stop(1)
    assert sum(s["rows"] for s in status if s["event"] == "truncation") == 1


async def test_an_event_that_cannot_be_cut_goes_as_it_is_and_is_dead_lettered_when_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    limit = 2_000
    fields = Record(id="many", payload=orjson.dumps({"i": 1, **{f"c{n}": "v" for n in range(1_000)}}),
                    name="pack_q", host="h1")

    def answer(req, call):
        return TooLarge("413 event too large") if req.size > limit else Delivered()

    sh = FakeShipper(answer=answer)
    sh.max_event_bytes = limit
    p = Pipeline([sh], {"fake": settings("fake", spool=True, batch={"max_events": 10, "linger_ms": 50})}, ".")
    await p.start()
    await p.submit_many([rec(0), fields, rec(2)])
    await wait_for(lambda: p.snapshot()["fake"]["spool_events"] == 0)
    assert sorted(ids_of(sh.delivered)) == [0, 2]
    assert [(d["id"], d["reason"]) for d in dead_letters(p)] == [
        ("many", "too large for the destination: 413 event too large")]
    assert p.snapshot()["fake"]["notices"] == {}
    await p.stop(1)


async def test_a_shipper_probe_that_cannot_reach_the_destination_shows_in_health_until_it_can(tmp_path,
                                                                                              monkeypatch):
    from collector.status import failing

    monkeypatch.chdir(tmp_path)
    sh = FakeShipper()
    sh.on_health = None  # a shipper that watches its destination between sends: the pipeline sets this
    p = await run(sh, n=0)
    await wait_for(lambda: p.snapshot()["fake"]["health"] == "ok")
    sh.on_health(Health(False, "metadata request failed: timed out"))
    snap = p.snapshot()["fake"]
    assert snap["health"] == "unreachable" and failing(snap)
    assert snap["last_error"] == "health check: metadata request failed: timed out"
    sh.dead = True  # failing sends say more than the probe: retrying
    await p.submit_many([rec(0)])
    await wait_for(lambda: p.snapshot()["fake"]["health"] == "retrying")
    sh.dead = False
    await wait_for(lambda: p.snapshot()["fake"]["acked"] == 1)
    assert p.snapshot()["fake"]["health"] == "unreachable"  # until the probe says otherwise
    sh.on_health(Health(True, "1 broker(s)"))
    snap = p.snapshot()["fake"]
    assert snap["health"] == "ok" and not failing(snap)
    await p.stop(1)


async def test_rejected_dead_letters_every_record_with_reason_and_status(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status: list[dict] = []
    sh = FakeShipper(answer=lambda req, call: Rejected("HEC code 6: invalid data format"))
    p = await run(sh, n=5, spool=True, status=status)
    await wait_for(lambda: p.snapshot()["fake"]["dead_lettered"] == 5)
    dl = dead_letters(p)
    assert [d["id"] for d in dl] == [f"id-{i}" for i in range(5)]
    d = dl[0]
    assert d["shipper"] == "fake" and d["type"] == "fake" and d["query"] == "pack_q" and d["host"] == "h1"
    assert d["reason"] == "HEC code 6: invalid data format" and d["payload"] == {"i": 0, "pad": ""}
    assert d["table"] == "processes" and d["kind"] == "result" and d["time"].endswith("Z")
    mode = stat.S_IMODE(os.stat(p.runners["fake"].deadletter.path).st_mode)
    assert mode == 0o640
    await wait_for(lambda: sum(s["rows"] for s in status if s["event"] == "dead_letter") == 5)
    ev = next(s for s in status if s["event"] == "dead_letter")
    assert ev["shipper"] == "fake" and ev["query"] == "pack_q" and ev["host"] == "h1" and ev["bytes"] > 0
    await p.stop(1)


async def test_dead_letter_payload_that_is_not_json_is_base64(tmp_path):
    from collector.logfile import compressed_suffix
    from collector.pipeline.deadletter import DeadLetterFile

    dl = DeadLetterFile(tmp_path / "d.jsonl", shipper="s", type="kafka", max_bytes=4096, max_files=2)
    r = Record(id="x", payload=b"\xff\x00raw", name="q")
    assert dl.write([(r, "bad")])
    line = orjson.loads((tmp_path / "d.jsonl").read_bytes())
    assert base64.b64decode(line["payload_b64"]) == b"\xff\x00raw" and "payload" not in line
    for _ in range(100):  # rotation keeps the size bounded
        dl.write([(r, "x" * 200)])
    dl.close()
    # osquery's rotation: .1 plain, .2 compressed, nothing kept beyond max_files
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["d.jsonl", "d.jsonl.1", f"d.jsonl.2{compressed_suffix()}"]
    one_line = len(dl.line(r, "x" * 200))
    assert all(p.stat().st_size < 4096 + one_line for p in tmp_path.iterdir())
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o640 for p in tmp_path.iterdir())


async def test_max_elapsed_sends_to_the_dead_letter_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper()
    sh.dead = True
    p = await run(sh, n=3, spool=True, retry={"max_elapsed_s": 0.1})
    await wait_for(lambda: p.snapshot()["fake"]["dead_lettered"] == 3)
    assert dead_letters(p)[0]["reason"] == "gave up after 0.1s of retries: connection refused"
    assert p.snapshot()["fake"]["spool_events"] == 0
    await p.stop(1)


async def test_retry_after_is_honoured(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen: list[float] = []

    def answer(req, call):
        seen.append(time.monotonic())
        return Retry("429", after=0.3) if call == 1 else Delivered()

    sh = FakeShipper(answer=answer)
    p = await run(sh, n=1, spool=False)
    await wait_for(lambda: len(sh.delivered) == 1)
    assert seen[1] - seen[0] >= 0.29  # backoff alone would be <= 0.01 s
    await p.stop(1)


async def test_hanging_send_times_out_and_is_retried(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper()
    sh.hang = True
    p = await run(sh, n=2, spool=True, request_timeout_s=0.05)
    await wait_for(lambda: sh.calls >= 2)
    assert "timed out" in p.snapshot()["fake"]["last_error"]
    sh.hang = False
    await wait_for(lambda: len(sh.delivered) == 2)
    await p.stop(1)


async def test_encode_failure_isolates_the_bad_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper()
    real = sh.encode

    def encode(batch):
        if 4 in ids_of(batch):
            raise ValueError("cannot encode")
        return real(batch)

    sh.encode = encode
    p = await run(sh, n=8, spool=True, batch={"max_events": 8, "linger_ms": 50})
    await wait_for(lambda: p.snapshot()["fake"]["spool_events"] == 0)
    assert sorted(ids_of(sh.delivered)) == [0, 1, 2, 3, 5, 6, 7]
    assert dead_letters(p)[0]["reason"] == "encode failed: ValueError: cannot encode"
    await p.stop(1)


async def test_out_of_order_acks_with_concurrency_two_keep_the_cursor_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    release_first = asyncio.Event()

    class Slow(FakeShipper):
        async def send(self, request):
            if ids_of(request.records)[0] == 0:
                self.requests.append(ids_of(request.records))
                await release_first.wait()  # the first request is slow, the second answers first
                self.delivered += request.records
                return Delivered()
            return await super().send(request)

    sh = Slow()
    p = Pipeline([sh], {"fake": settings(batch={"max_events": 10, "linger_ms": 0}, concurrency=2,
                                         queue={"max_events": 20})}, tmp_path)
    await p.start()
    await p.submit_many([rec(i) for i in range(20)])
    await wait_for(lambda: len(sh.delivered) == 10)  # the second batch, 10..19
    assert ids_of(sh.delivered) == list(range(10, 20))
    assert p.snapshot()["fake"]["in_flight_requests"] == 1
    spool = p.runners["fake"].spool
    assert spool.acks.cursor == 0 and spool.acks.is_done(15)  # acked ranges held, cursor not moved
    await spool.sync()
    p.abort()  # crash while the first batch is in flight
    sh2 = FakeShipper()
    p2 = Pipeline([sh2], {"fake": settings()}, tmp_path)
    await p2.start()
    await wait_for(lambda: len(sh2.delivered) == 20)
    # the cursor could not pass 0..9, so everything after it is sent again: duplicates, same ids
    assert sorted(ids_of(sh2.delivered)) == list(range(20))
    await p2.stop(1)


async def test_concurrency_limits_requests_in_flight(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper(delay=0.05)
    peak = 0

    async def watch():
        nonlocal peak
        while True:
            peak = max(peak, p.snapshot()["fake"]["in_flight_requests"])
            await asyncio.sleep(0.005)

    p = Pipeline([sh], {"fake": settings(batch={"max_events": 10, "linger_ms": 0}, concurrency=3)}, tmp_path)
    await p.start()
    w = asyncio.create_task(watch())
    await p.submit_many([rec(i) for i in range(200)])
    await wait_for(lambda: len(sh.delivered) == 200)
    w.cancel()
    assert peak == 3
    await p.stop(1)


async def test_drain_rate_limits_a_backlog(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper()
    start = time.monotonic()
    # 400 spooled events at 200/s: one second of burst (200), then 200 more at the rate, >= 1 s in all
    p = await run(sh, n=400, spool=True, drain_rate=200.0, batch={"max_events": 50, "linger_ms": 0})
    await wait_for(lambda: len(sh.delivered) == 400)
    took = time.monotonic() - start
    assert took >= 0.9
    assert p.snapshot()["fake"]["rate_wait_s"] >= 0.9
    await p.stop(1)


def test_backoff_is_full_jitter_with_a_cap():
    import random

    rng = random.Random(1)
    for attempt in range(1, 20):
        ceiling = min(30.0, 1.0 * 2 ** (attempt - 1))
        samples = [backoff(attempt, 1.0, 30.0, rng) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # spread over the whole range
    assert RateLimiter(0).rate == 0


async def test_a_shipper_bug_never_stalls_the_lane(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper(answer=lambda req, call: None if call == 1 else Delivered())  # not an Outcome
    p = await run(sh, n=3, spool=True)
    await wait_for(lambda: p.snapshot()["fake"]["spool_events"] == 0)
    assert sorted(ids_of(sh.delivered)) == [0, 1, 2] and "not an Outcome" in p.snapshot()["fake"]["last_error"]

    def boom(items):
        raise RuntimeError("bug")

    p.runners["fake"].sender.deliver = boom  # a bug in the pipeline itself: dead-lettered, not stuck
    await p.submit(rec(7))
    await wait_for(lambda: p.snapshot()["fake"]["spool_events"] == 0)
    assert dead_letters(p)[0]["reason"] == "internal error: RuntimeError: bug"
    await p.stop(1)


async def test_a_batch_in_long_backoff_wakes_when_the_destination_answers_again(tmp_path, monkeypatch):
    # Backoffs of up to 600 s: without the wake-up the first batch would sit out the drain after an outage.
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper()
    sh.dead = True
    p = Pipeline([sh], {"fake": settings(spool=True, batch={"max_events": 1, "linger_ms": 1},
                                         retry={"initial_s": 600, "max_s": 600})}, ".")
    await p.start()
    await p.submit_many([rec(0)])
    await wait_for(lambda: sh.calls >= 1)
    sh.dead = False  # the destination is back; the next batch gets through at once
    await p.submit_many([rec(1)])
    await wait_for(lambda: sorted(ids_of(sh.delivered)) == [0, 1], timeout=5)
    assert sh.requests[:3] == [[0], [1], [0]]
    await p.stop(1)


async def test_a_passing_health_check_ends_the_backoff_of_one_batch(tmp_path, monkeypatch):
    # Every batch draws a 600 s backoff; the lane's probe (every 0.1 s) sees the destination back and releases
    # one batch, whose success wakes the rest: the drain starts within a probe, not a backoff.
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper()
    sh.dead = True
    p = Pipeline([sh], {"fake": settings(spool=True, batch={"max_events": 1, "linger_ms": 1}, concurrency=3,
                                         retry={"initial_s": 600, "max_s": 600, "probe_s": 0.1})}, ".")
    await p.start()
    await p.submit_many([rec(i) for i in range(3)])
    await wait_for(lambda: sh.calls >= 3)
    await wait_for(lambda: sh.health_calls >= 3)  # probing while down: no batch released
    assert sh.calls == 3
    sh.dead = False
    started = time.monotonic()
    await wait_for(lambda: sorted(ids_of(sh.delivered)) == [0, 1, 2], timeout=5)
    assert time.monotonic() - started < 2
    assert p.snapshot()["fake"]["probes_ok"] == 1
    await p.stop(1)


async def test_a_healthy_destination_that_refuses_batches_gets_one_batch_per_probe(tmp_path, monkeypatch):
    # Up (the health check passes) but answering 503 to every batch: each probe releases a single batch, so
    # three batches in backoff make about one request per probe interval, not three.
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper(fail_times=10_000)
    p = Pipeline([sh], {"fake": settings(spool=True, batch={"max_events": 1, "linger_ms": 1}, concurrency=3,
                                         retry={"initial_s": 600, "max_s": 600, "probe_s": 0.2})}, ".")
    await p.start()
    await p.submit_many([rec(i) for i in range(3)])
    await wait_for(lambda: sh.calls >= 3)
    first = sh.calls
    await asyncio.sleep(1.1)
    retries = sh.calls - first
    assert 2 <= retries <= 6, retries
    await p.stop(0.1)


async def test_probe_off_keeps_the_backoff(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sh = FakeShipper()
    sh.dead = True
    p = Pipeline([sh], {"fake": settings(spool=True, batch={"max_events": 1, "linger_ms": 1},
                                         retry={"initial_s": 600, "max_s": 600, "probe_s": 0})}, ".")
    await p.start()
    await p.submit_many([rec(0)])
    await wait_for(lambda: sh.calls >= 1)
    at_open = sh.health_calls  # the runner's check at start
    sh.dead = False
    await asyncio.sleep(0.5)
    assert sh.calls == 1 and sh.health_calls == at_open and sh.delivered == []
    await p.stop(0.1)
