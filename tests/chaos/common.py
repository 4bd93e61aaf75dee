"""Shared pieces of the chaos tests: a daemon subprocess per round, the stream query, and the sent/received
comparison that fails on any loss and bounds the duplicates.

Ground truth for the daemon tests is the daemon's own results log (osqueryd.results.log). The logstash
shipper with `format: osquery` sends each results line as it is, with `@metadata` (the event id) and
`@timestamp` spliced in front, so a line received by the lumberjack peer minus those two keys is the line
the daemon logged, byte for byte once both are decoded: the comparison needs no id reconstruction.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[2]


def stream_query(rows: int) -> str:
    """Every run returns `rows` new random rows: a differential query then logs `rows` removed (the last
    run's) and `rows` added per run, a steady stream of 2*rows events per interval."""
    return (f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) "
            "SELECT x AS n, abs(random()) AS r FROM c")


def write_config(path: Path, schedule: dict[str, Any], shippers: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"schedule": schedule, "shippers": shippers}, indent=2))
    return path


class DaemonRun:
    """One `quarry run` process on a state folder shared by every round (same --database_path)."""

    def __init__(self, tmp: Path, config: Path, round_no: int, launcher: Sequence[str] = ("-m", "collector.cli"),
                 *flags: str) -> None:
        self.tmp = tmp
        self.stderr = tmp / f"daemon.{round_no}.stderr"
        cmd = [sys.executable, *launcher, "run", f"--config_path={config}", f"--database_path={tmp / 'db'}",
               f"--logger_path={tmp / 'log'}", "--disable_watchdog", "--disable_events", *flags]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        with open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stderr=err, stdout=subprocess.DEVNULL)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        return self.stderr.read_text(errors="replace")


def results_lines(log_dir: Path) -> list[bytes]:
    """The results log's complete lines (a line torn by SIGKILL has no newline yet and is left out)."""
    p = log_dir / "osqueryd.results.log"
    if not p.exists():
        return []
    data = p.read_bytes()
    return [line for line in data[: data.rfind(b"\n") + 1].splitlines() if line.strip()]


def canonical(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def logged(log_dir: Path) -> list[bytes]:
    """The results log as canonical JSON, one entry per event line."""
    return [canonical(json.loads(line)) for line in results_lines(log_dir)]


def received_beats(path: Path) -> list[tuple[str, bytes]]:
    """(event id, canonical results line) per result event the lumberjack peer wrote to `path`."""
    out = []
    if not path.exists():
        return out
    data = path.read_bytes()
    for line in data[: data.rfind(b"\n") + 1].splitlines():
        doc = json.loads(line)
        if "columns" not in doc:  # a status event (drop/truncation notice), not a result
            continue
        meta = doc.pop("@metadata")
        doc.pop("@timestamp", None)
        out.append((meta["_id"], canonical(doc)))
    return out


def compare(sent: Sequence[bytes], received: Sequence[tuple[str, bytes]]) -> tuple[set[bytes], int]:
    """(lost lines, duplicate count). Fails when one line arrived under two event ids (a duplicate must be
    the same event resent, never a new event with the same content)."""
    ids: dict[bytes, str] = {}
    for event_id, line in received:
        assert ids.setdefault(line, event_id) == event_id, f"one line arrived with two ids: {line[:200]!r}"
    got = Counter(line for _, line in received)
    lost = set(sent) - set(got)
    dups = sum(n - 1 for n in got.values() if n > 1)
    return lost, dups


def wait_until(predicate, timeout: float, what: str, poll: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(poll)


def make_pipeline(state_dir: Path, shippers: dict[str, dict[str, Any]]):
    """An in-process Pipeline over real shippers built from config-style entries, as the daemon builds it."""
    from collector.pipeline import Pipeline, create_shipper, parse_settings, validate_shipper

    made, settings = [], {}
    for name, raw in shippers.items():
        assert not validate_shipper(name, raw), validate_shipper(name, raw)
        parsed, problems = parse_settings(name, raw)
        assert not problems, problems
        made.append(create_shipper(name, parsed, raw))
        settings[name] = parsed
    return Pipeline(made, settings, state_dir)


def beats_ids(path: Path) -> list[tuple[str, int]]:
    """(event id, payload "i") per line the lumberjack peer wrote for tests.pipeline.fake.rec records."""
    out = []
    if path.exists():
        data = path.read_bytes()
        for line in data[: data.rfind(b"\n") + 1].splitlines():
            doc = orjson.loads(line)
            out.append((doc["@metadata"]["_id"], doc["i"]))
    return out


async def wait_for(predicate, timeout: float, what: str, poll: float = 0.05) -> float:
    """Await until predicate() is true; returns the seconds it took (monotonic)."""
    import asyncio

    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(poll)
    return time.monotonic() - start


def spool_position(spool_dir: Path) -> tuple[int, int]:
    """(saved cursor, next seq) of a spool left by a killed daemon, read without changing anything: what a
    restart resends is at most next seq - cursor records."""
    from collector.pipeline.segment import list_segments, load_cursor, scan_tail

    segs = list_segments(spool_dir)
    try:
        cursor = load_cursor(spool_dir / "cursor.json")
    except FileNotFoundError:
        cursor = segs[0] if segs else 0
    last = scan_tail(spool_dir / f"{segs[-1]:020d}.seg").last_seq if segs else None
    next_seq = segs[-1] if last is None else last + 1
    return cursor, next_seq
