"""A real daemon whose shipper queue fills under the `block` policy: the scheduler delays the query's next run,
logs it, and osquery_scheduler shows it (queried by the daemon's own schedule, rows in its results log)."""

from __future__ import annotations

import re
import time

from tests.daemon.test_daemon import Daemon, write_config

SCHEDULER_SQL = ("SELECT name, waiting, waiting_since, delayed_runs, backpressure_ms, last_backpressure_ms, "
                 "last_delay_time FROM osquery_scheduler WHERE name = 'changing'")
HOLD_S = 2.0  # how long the test keeps the stuck shipper stuck once the run is seen waiting


def test_a_full_block_queue_delays_the_query_and_osquery_scheduler_shows_it(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the stuck shipper needs a folder: every write fails and is retried\n")
    schedule = {
        # two events (removed + added) every run, all to the stuck shipper
        "changing": {"query": "SELECT random() AS r", "interval": 1, "run_at_start": True,
                     "shippers": ["stuck"]},
        "delays": {"query": SCHEDULER_SQL, "interval": 1, "run_at_start": True, "shippers": ["working"]},
    }
    shippers = {
        "stuck": {"type": "file", "dir": str(blocker / "out"), "queue": {"max_events": 2, "when_full": "block"},
                  "batch": {"max_events": 1, "linger_ms": 10}, "retry": {"initial_s": 0.2, "max_s": 0.5}},
        "working": {"type": "file", "dir": str(tmp_path / "working")},
    }
    conf = tmp_path / "quarry.conf"
    write_config(conf, schedule, shippers=shippers)
    d = Daemon(tmp_path, conf)
    try:
        waiting = d.wait_for(lambda x: x["name"] == "delays" and x["action"] == "added"
                             and x["columns"]["waiting"] == "1", timeout=60)[0]["columns"]
        assert waiting["delayed_runs"] == "0" and int(waiting["waiting_since"]) <= time.time()
        time.sleep(HOLD_S)
        blocker.unlink()  # the folder can be made now: the queue drains, the held run goes
        delayed = d.wait_for(lambda x: x["name"] == "delays" and x["action"] == "added"
                             and int(x["columns"]["delayed_runs"]) >= 1, timeout=60)[0]["columns"]
    finally:
        assert d.stop() == 0
    # the held run waited from its due time until the queue had room: at least HOLD_S
    assert int(delayed["backpressure_ms"]) >= max(int(delayed["last_backpressure_ms"]), HOLD_S * 1000)
    assert abs(int(delayed["last_delay_time"]) - time.time()) < 60
    log = d.stderr.read_text()
    assert re.search(r"changing: run delayed \d+\.\d s by backpressure", log), log[-3000:]
    assert "query changing: shippers applied backpressure" in log
    assert "Traceback" not in log
    # the stuck shipper got the held runs once its folder existed
    assert (blocker / "out" / "osqueryd.results.log").read_text().count('"name":"changing"') >= 3
