"""The daemon's state on disk: one SQLite database (apsw, WAL) under --database_path.

Domains (osquery keeps the same under RocksDB): last results per query (for differential results), splay
values, the denylist, per-query performance counters, the instance/host identity, and buffered events.
Values are JSON. Writes are transactions, so a crash leaves either the old or the new state.

    state = State("/var/lib/quarry")            # creates quarry.db inside
    state.put("splay", "pack_x_q", {"interval": 60, "splay": 57})
    state.get("splay", "pack_x_q")
    state.results("pack_x_q") -> Results | None
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw
import orjson

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv(domain TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
                              PRIMARY KEY (domain, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results(name TEXT PRIMARY KEY, sql TEXT NOT NULL, epoch INTEGER NOT NULL,
                                   counter INTEGER NOT NULL, rows BLOB NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, time INTEGER NOT NULL,
                                  row BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS events_tbl_time ON events(tbl, time);
"""


@dataclass
class Results:
    name: str
    sql: str
    epoch: int
    counter: int
    rows: list[dict[str, Any]]


class StateError(Exception):
    pass


class State:
    """Thread-safe: the scheduler's workers and the loop share one connection under a lock."""

    FILE = "quarry.db"

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        path = Path(directory)
        if path.suffix == ".db":
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            self.path = path
        else:
            path.mkdir(parents=True, exist_ok=True, mode=0o750)
            self.path = path / self.FILE
        self._lock = threading.RLock()
        try:
            self.db = apsw.Connection(str(self.path))
            self.db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            self.db.execute(SCHEMA)
        except apsw.Error as e:
            raise StateError(f"{self.path}: cannot open the state database: {e}") from e
        try:
            os.chmod(self.path, 0o640)
        except OSError:
            pass

    def close(self) -> None:
        with self._lock:
            self.db.close()

    # --- key/value domains -------------------------------------------------------------------
    def get(self, domain: str, key: str, default: Any = None) -> Any:
        with self._lock:
            for (value,) in self.db.execute("SELECT value FROM kv WHERE domain=? AND key=?", (domain, key)):
                try:
                    return orjson.loads(value)
                except orjson.JSONDecodeError:
                    return default
        return default

    def put(self, domain: str, key: str, value: Any) -> None:
        blob = orjson.dumps(value)
        with self._lock, self.db:
            self.db.execute("INSERT OR REPLACE INTO kv(domain, key, value) VALUES (?, ?, ?)", (domain, key, blob))

    def delete(self, domain: str, key: str) -> None:
        with self._lock, self.db:
            self.db.execute("DELETE FROM kv WHERE domain=? AND key=?", (domain, key))

    def items(self, domain: str) -> Iterator[tuple[str, Any]]:
        with self._lock:
            rows = list(self.db.execute("SELECT key, value FROM kv WHERE domain=? ORDER BY key", (domain,)))
        for key, value in rows:
            try:
                yield key, orjson.loads(value)
            except orjson.JSONDecodeError:
                continue

    # --- differential results ----------------------------------------------------------------
    def results(self, name: str) -> Results | None:
        """The stored last result set; raises StateError when it exists but cannot be decoded."""
        with self._lock:
            found = list(self.db.execute(
                "SELECT sql, epoch, counter, rows FROM results WHERE name=?", (name,)))
        if not found:
            return None
        sql, epoch, counter, blob = found[0]
        try:
            rows = orjson.loads(blob)
        except orjson.JSONDecodeError as e:
            raise StateError(f"stored results of {name} are unreadable: {e}") from e
        if not isinstance(rows, list):
            raise StateError(f"stored results of {name} are not a list")
        return Results(name, sql, epoch, counter, rows)

    def save_results(self, r: Results) -> None:
        blob = orjson.dumps(r.rows)
        with self._lock, self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO results(name, sql, epoch, counter, rows, updated) VALUES (?,?,?,?,?,?)",
                (r.name, r.sql, r.epoch, r.counter, blob, time.time()))

    def forget_results(self, name: str) -> None:
        with self._lock, self.db:
            self.db.execute("DELETE FROM results WHERE name=?", (name,))

    def result_names(self) -> list[str]:
        with self._lock:
            return [n for (n,) in self.db.execute("SELECT name FROM results ORDER BY name")]

    # --- buffered events (evented tables) ----------------------------------------------------
    def add_events(self, table: str, rows: list[dict[str, Any]]) -> None:
        with self._lock, self.db:
            self.db.executemany("INSERT INTO events(tbl, time, row) VALUES (?, ?, ?)",
                                [(table, int(r.get("time") or time.time()), orjson.dumps(r)) for r in rows])

    def events(self, table: str, since: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [orjson.loads(b) for (b,) in self.db.execute(
                "SELECT row FROM events WHERE tbl=? AND time>=? ORDER BY id", (table, since))]

    def expire_events(self, table: str, older_than: int, keep_max: int) -> int:
        """osquery's events_expiry / events_max: drop old events, then the oldest beyond the maximum."""
        with self._lock, self.db:
            before = self.db.total_changes()
            self.db.execute("DELETE FROM events WHERE tbl=? AND time<?", (table, older_than))
            self.db.execute(
                "DELETE FROM events WHERE tbl=? AND id NOT IN (SELECT id FROM events WHERE tbl=? "
                "ORDER BY id DESC LIMIT ?)", (table, table, keep_max))
            return self.db.total_changes() - before
