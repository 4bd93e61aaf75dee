"""Chaos 1: the real daemon shipping a steady stream to the lumberjack peer, SIGKILLed at random moments ten
times and restarted each time on the same --database_path. Every event of the daemon's own results log
must reach the peer at least once; a duplicate is the same event (same id) resent from the last
unacknowledged batches only; the spool is never reported corrupt (a torn tail, cut and reported, is fine).
"""

from __future__ import annotations

import json
import os
import random
import re
import time

import pytest

from tests.chaos.common import (
    DaemonRun,
    compare,
    logged,
    received_beats,
    results_lines,
    spool_position,
    stream_query,
    wait_until,
    write_config,
)

KILLS = 10
ROWS = 500  # per run, interval 1 s: 1,000 events/s (500 removed + 500 added), shipped in bursts
BATCH = 500
CONCURRENCY = 2
FSYNC_MS = 200
IN_FLIGHT = CONCURRENCY * BATCH  # windows a restart may send before its first resend is done


@pytest.mark.realserver
def test_ten_sigkills_lose_nothing_and_duplicate_only_the_unacknowledged_tail(tmp_path, lumberjack_server):
    seed = int(os.environ.get("QUARRY_CHAOS_SEED") or int.from_bytes(os.urandom(4), "big"))
    rng = random.Random(seed)
    print(f"chaos seed {seed}")
    conf = write_config(tmp_path / "quarry.conf",
                        # denylist false: a kill during a run would otherwise denylist the query at the next
                        # start (osquery's crash protection), and the stream would stop
                        {"stream": {"query": stream_query(ROWS), "interval": 1, "run_at_start": True,
                                    "denylist": False}},
                        {"beats": {"type": "logstash", "hosts": [f"{lumberjack_server.host}:{lumberjack_server.port}"],
                                   "batch": {"max_events": BATCH, "linger_ms": 100}, "concurrency": CONCURRENCY,
                                   "spool": {"fsync_ms": FSYNC_MS}, "retry": {"initial_s": 0.2, "max_s": 1}}})
    outputs = []
    unacked = []  # per kill: records after the saved cursor, which the restart sends again
    runs: list[DaemonRun] = []
    try:
        for round_no in range(KILLS + 1):
            # A file per round: the lines of round r that were already delivered before are the resends.
            outputs.append(lumberjack_server.switch_output(tmp_path / f"received.{round_no}.jsonl"))
            before = len(results_lines(tmp_path / "log"))
            d = DaemonRun(tmp_path, conf, round_no)
            runs.append(d)
            wait_until(lambda b=before, d=d: len(results_lines(tmp_path / "log")) > b or not d.alive(), 60,
                       f"round {round_no}: the first results")
            assert d.alive(), d.text()[-3000:]
            time.sleep(rng.uniform(0.0, 1.5))  # somewhere in the shipping of this run or the next one
            if round_no < KILLS:
                d.kill()
                spool = [p for p in (tmp_path / "db").rglob("beats") if (p / "lock").exists()]
                cursor, next_seq = spool_position(spool[0])
                unacked.append(next_seq - cursor)
            else:  # the last round stops gracefully, mid-stream too: what it could not send stays spooled
                assert d.stop() == 0, d.text()[-3000:]
        # A last start with no schedule sends what is left in the spool, and nothing new.
        conf.write_text(json.dumps({**json.loads(conf.read_text()), "schedule": {}}))
        sent = logged(tmp_path / "log")
        d = DaemonRun(tmp_path, conf, KILLS + 1)
        runs.append(d)
        wait_until(lambda: "health check" in d.text() or not d.alive(), 60, "the last start")
        wait_until(lambda: not compare(sent, [x for p in outputs for x in received_beats(p)])[0], 60,
                   "the spool to drain")
        assert d.stop() == 0
    finally:
        for d in runs:
            d.ensure_dead()
    per_round = [received_beats(p) for p in outputs]
    received = [x for r in per_round for x in r]
    lost, dups = compare(sent, received)
    assert len(sent) > KILLS * 2 * ROWS
    assert not lost, f"{len(lost)} of {len(sent)} logged events never arrived (seed {seed})"
    # A resend is only what the killed run had not yet acknowledged in its saved cursor: each round after a
    # kill sends at most the records past that cursor again, and sends them first (the restart reads the
    # spool from the cursor; IN_FLIGHT allows for the windows that overlap the resent ones).
    seen: set[bytes] = set()
    resends = []
    for round_no, lines in enumerate(per_round):
        resent_at = [i for i, (_, line) in enumerate(lines) if line in seen]
        if round_no:
            assert len(resent_at) <= unacked[round_no - 1], (round_no, len(resent_at), unacked, seed)
        assert not resent_at or max(resent_at) < len(resent_at) + IN_FLIGHT, (round_no, resent_at[-5:], seed)
        seen |= {line for _, line in lines}
        resends.append(len(resent_at))
    assert dups == sum(resends)  # no other duplicate than these resends
    # The spool was never reported corrupt: only a torn tail (a frame cut by the kill) may be cut off.
    logs = "\n".join(d.text() for d in runs)
    assert "corrupt" not in logs, [ln for ln in logs.splitlines() if "corrupt" in ln][:5]
    assert re.search(r"shipper beats \[stopped\]: queued 0 \(0 B\), spool 0 .* dropped 0,", runs[-1].text()), \
        runs[-1].text()[-2000:]
    print(f"sent {len(sent)}, received {len(received)}, duplicates {dups} over {KILLS} kills, "
          f"resent per round {resends}, unacknowledged per kill {unacked}, "
          f"torn tails {logs.count('torn tail')}")
