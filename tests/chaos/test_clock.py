"""Chaos 4: the daemon's wall clock jumps 5 h forward, then 2 h back, while it ships a steady stream, with a
sink outage across the backward jump.

Nothing may be lost; retry and backoff (monotonic) carry the outage through the jump and the backlog drains
once the sink is back; the scheduler keeps its pace — one run per second — neither flooding (replaying
the skipped hours) nor stopping (waiting for the clock to catch up with the 2 h it lost).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.chaos.common import (
    DaemonRun,
    compare,
    logged,
    received_beats,
    results_lines,
    stream_query,
    wait_until,
    write_config,
)
from tests.chaos.proxy import ThreadedProxy

ROWS = 50
BATCH = 100
CONCURRENCY = 2
FORWARD, BACK = 5 * 3600, -2 * 3600
# (wall clock offset, sink up, seconds)
PHASES = [(0, True, 3.0), (FORWARD, True, 3.0), (FORWARD, False, 2.0), (BACK, False, 2.0), (BACK, True, 3.0)]


@pytest.mark.realserver
def test_clock_jumps_lose_nothing_and_the_schedule_keeps_its_pace(tmp_path, lumberjack_server, lumberjack_output):
    offset = tmp_path / "clock_offset"
    offset.write_text("0")
    proxy = ThreadedProxy(lumberjack_server.host, lumberjack_server.port)
    conf = write_config(tmp_path / "quarry.conf",
                        {"stream": {"query": stream_query(ROWS), "interval": 1, "run_at_start": True,
                                    "denylist": False}},
                        {"beats": {"type": "logstash", "hosts": [proxy.address], "connect_timeout_s": 2,
                                   "ack_timeout_s": 5, "concurrency": CONCURRENCY,
                                   "batch": {"max_events": BATCH, "linger_ms": 100},
                                   "retry": {"initial_s": 0.2, "max_s": 1}}})
    d = DaemonRun(tmp_path, conf, 0, ("-m", "tests.chaos.clockchild", str(offset)))
    try:
        wait_until(lambda: results_lines(tmp_path / "log") or not d.alive(), 60, "the first results")
        assert d.alive(), d.text()[-3000:]
        start = time.monotonic()
        for shift, sink_up, seconds in PHASES:
            offset.write_text(str(shift))
            proxy.up() if sink_up else proxy.down()
            time.sleep(seconds)
        elapsed = time.monotonic() - start
        sent = logged(tmp_path / "log")
        back = time.monotonic()
        wait_until(lambda: not compare(sent, received_beats(lumberjack_output))[0], 30, "the backlog to drain")
        drained = time.monotonic() - back
        assert d.stop() == 0
    finally:
        d.ensure_dead()
        proxy.close()
    lost, dups = compare(sent, received_beats(lumberjack_output))
    assert not lost and dups <= proxy.proxy.cuts * CONCURRENCY * BATCH, (len(lost), dups)
    now = time.time()
    runs = {json.loads(x)["counter"]: json.loads(x)["unixTime"] for x in sent}
    ahead = [c for c, t in runs.items() if t > now + FORWARD - 600]
    behind = [c for c, t in runs.items() if t < now + BACK + 600]
    # one run per second in each clock phase, and in all: the jumps neither replayed nor paused the schedule
    assert len(ahead) >= 0.6 * (PHASES[1][2] + PHASES[2][2]) and len(behind) >= 0.6 * (PHASES[3][2] + PHASES[4][2])
    assert 0.6 * elapsed <= len(runs) <= elapsed + 3, (len(runs), elapsed)
    err = d.text()
    assert "clock went back" in err and "missed (host asleep or clock jumped)" in err, err[-3000:]
    retried = re.findall(r"shipper beats \[stopped\]: .* retried (\d+),", err)
    assert retried and int(retried[-1]) > 0, err[-2000:]
    print(f"{len(runs)} runs in {elapsed:.1f}s ({len(ahead)} at +5h, {len(behind)} at -2h), {len(sent)} events, "
          f"{dups} duplicates, backlog drained {drained:.1f}s after the end, {retried[-1]} retried")
