"""osquery's SQL functions and collations (filled in by the SQL-functions work)."""

from __future__ import annotations

import apsw


def register(conn: apsw.Connection) -> None:
    pass
