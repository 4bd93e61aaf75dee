"""The checks that need the engine, added to a Loaded's diagnostics: one list of every config defect.

    diagnostics = validate(loaded, engine)     # load-time diagnostics + these, sorted by place

Every query whose platform selectors pass on this host is compiled with `engine.columns` (nothing runs): an
unknown table or column, a syntax error or a refused statement is an error naming the query and its place.
Queries for other platforms are not compiled (their tables do not exist here by design). Decorators, views
and the discovery queries of packs for this platform are compiled too. Cross-references are checked:
kafka_topics naming unknown queries, exclude_paths categories absent from file_paths, queries routed to
shippers that are not defined.
"""

from __future__ import annotations

from collector.config.load import Loaded
from collector.config.selection import Config, SQLEngine
from collector.config.selectors import build_platform, check_platform
from collector.errors import QueryError
from collector.model import Diagnostic, Place


def _compile(engine: SQLEngine, sql: str) -> str | None:
    try:
        engine.columns(sql)
    except QueryError as e:
        return str(e)
    return None


def validate(loaded: Loaded, engine: SQLEngine, *, platform: str | None = None) -> list[Diagnostic]:
    if loaded.validated:
        return sort(loaded)
    build = platform or build_platform()
    config = loaded.config
    diags: list[Diagnostic] = []
    for q in config.schedule:
        if check_platform(q.platform, build) and (err := _compile(engine, q.sql)):
            diags.append(Diagnostic("error", f"query {q.name}: {err}", q.place))
    for p in config.packs:
        if not check_platform(p.platform, build):
            continue
        for i, sql in enumerate(p.discovery, 1):
            if err := _compile(engine, sql):
                diags.append(Diagnostic("error", f"pack {p.name}: discovery query {i}: {err}", p.place))
        for q in p.queries:
            if check_platform(q.platform, build) and (err := _compile(engine, q.sql)):
                diags.append(Diagnostic("error", f"query {q.name}: {err}", q.place))
    for label, sql, place in config.sql_places:
        if err := _compile(engine, sql):
            diags.append(Diagnostic("error", f"{label}: {err}", place))

    names = {q.name for q in config.queries()}
    for topic, queries in config.kafka_topics.items():
        for name in queries:
            if name not in names:
                diags.append(Diagnostic("warning", f"kafka_topics.{topic}: no scheduled query named {name!r}",
                                        config.key_places.get(("kafka_topics", topic))))
    for category in config.exclude_paths:
        if category not in config.file_paths:
            diags.append(Diagnostic("warning", f"exclude_paths.{category}: no file_paths category of that "
                                               "name (osquery ignores it)",
                                    config.key_places.get(("exclude_paths", category))))
    for q in config.queries():
        for shipper in q.shippers or ():
            if shipper not in config.shippers:
                diags.append(Diagnostic("warning", f"query {q.name}: shipper {shipper!r} is not defined "
                                                   "under `shippers`", q.place))
    diags.extend(_shippers(config))
    loaded.diagnostics.extend(diags)
    loaded.validated = True
    return sort(loaded)


def _shippers(config: Config) -> list[Diagnostic]:
    """Each shipper's settings through its own validator (the shipping layer), placed at its entry."""
    from collector.pipeline import validate_shipper

    out = []
    for name, raw in config.shippers.items():
        for problem in validate_shipper(name, raw):
            out.append(Diagnostic("error", problem, config.key_places.get(("shippers", name))))
    return out


def sort(loaded: Loaded) -> list[Diagnostic]:
    """Diagnostics by file (in load order), line and column; unplaced ones first."""
    order = {f: i for i, f in enumerate(loaded.files)}

    def key(d: Diagnostic) -> tuple[int, str, int, int]:
        p = d.place or Place("")
        return (order.get(p.file, -1 if not p.file or p.file.startswith("<") else len(order)), p.file,
                p.line or 0, p.column or 0)

    return sorted(loaded.diagnostics, key=key)
