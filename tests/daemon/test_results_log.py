"""FilesystemLogger (collector.results_log): osquery's file names, formats, status logs and failures."""

from __future__ import annotations

import json
import logging
import os
import stat

import pytest

from collector.events import LogContext, events_for
from collector.logfile import LogFileError
from collector.model import REASON_CHANGE, REASON_FIRST_RUN, REASON_SNAPSHOT, DiffResult, ScheduledQuery
from collector.results_log import RESULTS, SNAPSHOTS, STATUS_JSON, FilesystemLogger, glog_line, severity_of

Q = ScheduledQuery("pack_t_q", "SELECT pid FROM processes")


def ctx(**kw):
    return LogContext(host_identifier="h", clock=lambda: 1462228052, **kw)


def lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_bytes().splitlines()]


def test_results_file_created_empty_at_setup(tmp_path):
    logger = FilesystemLogger(tmp_path / "log", ctx())
    assert (tmp_path / "log" / RESULTS).read_bytes() == b""
    assert stat.S_IMODE(os.stat(tmp_path / "log" / RESULTS).st_mode) == 0o640
    assert not (tmp_path / "log" / SNAPSHOTS).exists()
    logger.close()


def test_event_format_writes_one_line_per_row(tmp_path):
    logger = FilesystemLogger(tmp_path, ctx())
    diff = DiffResult(Q.name, [{"pid": 2}], [{"pid": 1}], 0, 4, REASON_CHANGE)
    written = logger.log_diff(diff, Q)
    logger.close()
    got = lines(tmp_path / RESULTS)
    assert [(d["action"], d["columns"]) for d in got] == [("removed", {"pid": "1"}), ("added", {"pid": "2"})]
    assert written == (tmp_path / RESULTS).stat().st_size
    assert all(d["counter"] == 4 and d["hostIdentifier"] == "h" for d in got)


def test_reuses_the_daemons_events(tmp_path):
    logger = FilesystemLogger(tmp_path, ctx())
    diff = DiffResult(Q.name, [{"pid": 2}], [], 0, 1, REASON_CHANGE)
    events = events_for(diff, logger.ctx, Q)
    logger.log_diff(diff, Q, events=events)
    logger.close()
    assert (tmp_path / RESULTS).read_bytes() == events[0].osquery_line() + b"\n"


def test_batch_format_and_empty_diffs(tmp_path):
    logger = FilesystemLogger(tmp_path, ctx(), event_format=False)
    assert logger.log_diff(DiffResult(Q.name, [], [], 0, 0, REASON_FIRST_RUN), Q) > 0
    assert logger.log_diff(DiffResult(Q.name, [], [], 0, 0, REASON_CHANGE), Q) == 0
    logger.log_diff(DiffResult(Q.name, [{"pid": 1}], [], 0, 1, REASON_CHANGE), Q)
    logger.close()
    got = lines(tmp_path / RESULTS)
    assert [d["diffResults"] for d in got] == [{"removed": [], "added": []},
                                               {"removed": [], "added": [{"pid": "1"}]}]


def test_snapshots_go_to_their_own_file(tmp_path):
    logger = FilesystemLogger(tmp_path, ctx())
    snap = DiffResult("s", [], [], 0, 0, REASON_SNAPSHOT, snapshot=[{"a": "1"}, {"a": "2"}])
    logger.log_diff(snap)
    logger.ctx.snapshot_event_type = True
    logger.log_diff(snap)
    logger.close()
    assert (tmp_path / RESULTS).read_bytes() == b""
    got = lines(tmp_path / SNAPSHOTS)
    assert len(got) == 3
    assert got[0]["snapshot"] == [{"a": "1"}, {"a": "2"}] and got[0]["action"] == "snapshot"
    assert [d["columns"] for d in got[1:]] == [{"a": "1"}, {"a": "2"}]


def test_rotation_flags_apply_to_results_and_snapshots(tmp_path):
    logger = FilesystemLogger(tmp_path, ctx(), rotate=True, rotate_size=100, max_files=2)
    diff = DiffResult(Q.name, [{"pid": 1}], [], 0, 1, REASON_CHANGE)
    snap = DiffResult("s", [], [], 0, 0, REASON_SNAPSHOT, snapshot=[{"a": "1"}])
    for _ in range(6):
        logger.log_diff(diff, Q)
        logger.log_diff(snap)
    logger.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    for base in (RESULTS, SNAPSHOTS):
        assert f"{base}.1" in names and f"{base}.2.zst" in names and f"{base}.3.zst" not in names


def test_status_logs_glog_files_and_json(tmp_path):
    logger = FilesystemLogger(tmp_path, ctx(decorations={"d": "1"}))
    logger.log_status(0, "info message", "scheduler.py", 10)
    logger.log_status(1, "warning message", "watchdog.py", 20)
    logger.log_status(2, "error message", "config.py", 30)
    logger.close()
    for sev in ("INFO", "WARNING", "ERROR"):
        link = tmp_path / f"osqueryd.{sev}"
        assert link.is_symlink() and os.readlink(link).startswith(f"osqueryd.{sev}.")
        assert stat.S_IMODE(os.stat(link).st_mode) == 0o640
    info = (tmp_path / "osqueryd.INFO").read_text().splitlines()
    assert info[0].startswith("Log file created at: ")
    body = [x for x in info if x[:1] in "IWEF" and "] " in x]
    assert [x.split("] ", 1)[1] for x in body] == ["info message", "warning message", "error message"]
    assert body[1].startswith("W") and " watchdog.py:20] " in body[1]
    warning = (tmp_path / "osqueryd.WARNING").read_text()
    assert "warning message" in warning and "error message" in warning and "info message" not in warning
    error = (tmp_path / "osqueryd.ERROR").read_text()
    assert "error message" in error and "warning message" not in error
    records = lines(tmp_path / STATUS_JSON)
    assert [(r["severity"], r["message"], r["filename"], r["line"]) for r in records] == [
        (0, "info message", "scheduler.py", 10), (1, "warning message", "watchdog.py", 20),
        (2, "error message", "config.py", 30)]
    assert all(r["hostIdentifier"] == "h" and r["decorations"] == {"d": "1"} for r in records)


def test_min_status_filters(tmp_path):
    logger = FilesystemLogger(tmp_path, ctx(), min_status=1)
    logger.log_status(0, "quiet", "f.py", 1)
    logger.log_status(1, "loud", "f.py", 2)
    logger.close()
    assert [r["message"] for r in lines(tmp_path / STATUS_JSON)] == ["loud"]


def test_glog_line_prefix():
    line = glog_line(1, "msg", "file.py", 7, when=0.5, thread=123)
    assert line.startswith(b"W") and line.endswith(b".500000 123 file.py:7] msg")
    assert len(line.split(b" ")[0]) == 5  # Lmmdd


def test_logging_handler_routes_quarry_logs(tmp_path):
    logger = FilesystemLogger(tmp_path, ctx())
    log = logging.getLogger("quarry.test_results_log")
    log.propagate = False
    handler = logger.handler()
    log.addHandler(handler)
    try:
        log.warning("denylisted %s", "pack_x_q")
        log.debug("not recorded at INFO level")
    finally:
        log.removeHandler(handler)
        logger.close()
    records = lines(tmp_path / STATUS_JSON)
    assert [(r["severity"], r["message"], r["filename"]) for r in records] == [
        (1, "denylisted pack_x_q", "test_results_log.py")]
    assert (severity_of(logging.INFO), severity_of(logging.ERROR), severity_of(logging.CRITICAL)) == (0, 2, 3)


def test_unwritable_results_log_raises(tmp_path):
    logger = FilesystemLogger(tmp_path, ctx())
    (tmp_path / RESULTS).unlink()
    (tmp_path / RESULTS).mkdir()
    with pytest.raises(LogFileError, match=RESULTS):
        logger.log_diff(DiffResult(Q.name, [{"pid": 1}], [], 0, 1, REASON_CHANGE), Q)
    logger.close()


def test_unusable_logger_path_raises_at_setup(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(LogFileError):
        FilesystemLogger(tmp_path / "f" / "logs", ctx())
