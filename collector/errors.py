"""Quarry's error tree. Every error carries the place it concerns.

    QuarryError
    ├── ConfigError        file, line, column, field
    ├── QueryError         a query failed: SQL error, refused statement, missing required column
    │   ├── QueryCancelled interrupted or past its deadline
    │   └── QueryDenied    refused by the read-only authorizer
    └── TableError         a generator failed in a way the table cannot report as missing data
"""

from __future__ import annotations


class QuarryError(Exception):
    retriable = False


class ConfigError(QuarryError):
    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 column: int | None = None, field: str | None = None) -> None:
        self.file, self.line, self.column, self.field = file, line, column, field
        self.bare = message
        super().__init__(self.render())

    def render(self) -> str:
        place = ""
        if self.file:
            place = self.file
            if self.line is not None:
                place += f":{self.line}"
                if self.column is not None:
                    place += f":{self.column}"
            place += ": "
        field = f"{self.field}: " if self.field else ""
        return f"{place}{field}{self.bare}"


class QueryError(QuarryError):
    pass


class QueryCancelled(QueryError):
    pass


class QueryDenied(QueryError):
    pass


class TableError(QuarryError):
    def __init__(self, table: str, message: str) -> None:
        self.table = table
        super().__init__(f"{table}: {message}")
