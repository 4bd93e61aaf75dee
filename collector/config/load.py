"""osquery's config loading for Quarry: flags, the config file, conf.d, packs, merged into one Config.

    loaded = load("/etc/osquery/osquery.conf", flagfile="/etc/osquery/osquery.flags", cli_flags=sys.argv[2:])
    loaded.config.queries(), loaded.flags["logger_path"].value, loaded.diagnostics

Order (osquery.md §1.1): the main file, then `<config_path>.d/*.conf` in lexical order; `options` of later
sources override earlier keys, each source's `schedule` is its own set (a later source redefining a query
name replaces it), packs are replaced per name. Flags: command line > flagfile > config `options`. Nothing
raises for bad content: every defect is a Diagnostic with its place, and whatever is valid is kept. Only an
unreadable or unparseable main file leaves the Config empty (`fatal`).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collector.config import flagvalues, schema
from collector.config.positions import Document, path_text, read_document
from collector.config.selection import Config, SQLEngine
from collector.errors import ConfigError
from collector.flags import FLAGS
from collector.model import Decorators, Diagnostic, Pack, Place, ScheduledQuery

DEFAULT_CONFIG_PATH = "/etc/quarry/quarry.conf"

# osquery parser keys Quarry does not act on: kept in Config.extra with a warning.
UNIMPLEMENTED_KEYS = frozenset({"file_paths_query", "file_accesses", "yara", "prometheus_targets",
                                "auto_table_construction", "feature_vectors", "logger"})
LIST_KEYS = ("file_paths", "exclude_paths", "events", "kafka_topics")


@dataclass
class Loaded:
    config: Config
    flags: dict[str, flagvalues.Setting]  # every known flag, canonical name -> effective setting
    config_path: str
    flagfile: str | None = None
    files: tuple[str, ...] = ()  # every file read: config sources, pack files, the flagfile
    watch: tuple[str, ...] = ()  # files and folders whose change means "reload"
    diagnostics: list[Diagnostic] = field(default_factory=list)
    hash: str = ""
    fatal: bool = False  # the main config could not be read or parsed: the Config is empty
    validated: bool = False  # validate() has added its diagnostics

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def flag(self, name: str) -> bool | int | str:
        return self.flags[flagvalues.normalize(name)].value

    def runtime_flags(self) -> dict[str, str]:
        """Catalogued flags as text, for Runtime.flag_states (osquery_flags)."""
        return {n: s.text for n, s in self.flags.items() if n in FLAGS}


@dataclass
class _Merge:
    schedule: dict[str, ScheduledQuery] = field(default_factory=dict)
    packs: dict[str, Pack] = field(default_factory=dict)
    load: list[str] = field(default_factory=list)
    always: list[str] = field(default_factory=list)
    interval: dict[int, list[str]] = field(default_factory=dict)
    lists: dict[str, dict[str, list[str]]] = field(default_factory=lambda: {k: {} for k in LIST_KEYS})
    views: dict[str, str] = field(default_factory=dict)
    shippers: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    dropped: list[schema.Dropped] = field(default_factory=list)
    sql_places: list[tuple[str, str, Place]] = field(default_factory=list)
    key_places: dict[tuple[str, ...], Place] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    watch: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    diags: list[Diagnostic] = field(default_factory=list)


CLIFlags = Sequence[str] | Mapping[str, Any]


def _cli_given(cli_flags: CLIFlags | None) -> tuple[list[flagvalues.Given], list[Diagnostic]]:
    if cli_flags is None:
        return [], []
    if isinstance(cli_flags, Mapping):
        return flagvalues.from_mapping(cli_flags), []
    return flagvalues.parse_argv(list(cli_flags))


def _last(given: list[flagvalues.Given], name: str) -> flagvalues.Given | None:
    found = [g for g in given if flagvalues.normalize(g.name) == name]
    return found[-1] if found else None


def load(config_path: str | Path | None = None, *, flagfile: str | Path | None = None,
         cli_flags: CLIFlags | None = None, engine: SQLEngine | None = None) -> Loaded:
    """Read flags, the config and its packs. With an engine, also validate() (compile every query)."""
    m = _Merge()
    cli, cli_diags = _cli_given(cli_flags)
    m.diags.extend(cli_diags)
    ff_given = _last(cli, "flagfile")
    ff = str(flagfile) if flagfile is not None else (str(ff_given.raw) if ff_given else None)
    ff_items: list[flagvalues.Given] = []
    if ff:
        ff_items, ff_diags = flagvalues.read_flagfile(ff)
        m.diags.extend(ff_diags)
        m.files.append(ff)
        m.watch.append(ff)
        with contextlib.suppress(OSError):  # read_flagfile has reported it
            m.texts.append(Path(ff).read_text(encoding="utf-8", errors="replace"))
    chosen = _last(cli, "config_path") or _last(ff_items, "config_path")
    path = str(config_path) if config_path is not None else str(chosen.raw) if chosen else DEFAULT_CONFIG_PATH

    docs: list[Document] = []
    fatal = False
    conf_d = path + ".d"
    m.watch += [path, conf_d]
    conf_d_files = sorted(str(p) for p in Path(conf_d).glob("*.conf"))
    for i, source in enumerate([path, *conf_d_files]):
        m.files.append(source)
        try:
            doc = read_document(source)
        except ConfigError as e:
            m.diags.append(Diagnostic("error", e.bare, Place(e.file or source, e.line, e.column)))
            fatal = fatal or i == 0
            continue
        docs.append(doc)
        m.texts.append(doc.text)
    if fatal:
        docs = []

    options: list[flagvalues.Given] = []
    for doc in docs:
        raw = doc.value.get("options", {})
        if not isinstance(raw, dict):
            m.diags.append(Diagnostic("warning", f"options: expected an object, got {schema.json_type(raw)}; "
                                                 "ignored", doc.place("options")))
            continue
        for key, value in raw.items():
            options.append(flagvalues.Given(key, value, doc.place("options", key)))
            m.options[key] = value
    settings, custom, flag_diags = flagvalues.resolve(cli, ff_items, options)
    m.diags.extend(flag_diags)
    origin = ("argument" if config_path is not None else "default" if chosen is None
              else "cli" if chosen.place.file == flagvalues.COMMAND_LINE else "flagfile")
    where = chosen.place if chosen else None
    settings["config_path"] = flagvalues.Setting("config_path", path, path, origin, where)
    if ff:
        settings["flagfile"] = flagvalues.Setting("flagfile", ff, ff, "cli", Place(flagvalues.COMMAND_LINE))

    delimiter = str(settings["pack_delimiter"].value)
    default_interval = int(settings["schedule_default_interval"].value)
    for doc in docs:
        _apply_source(m, doc, delimiter, default_interval)

    config = _build(m, docs, custom, int(settings["pack_refresh_interval"].value))
    loaded = Loaded(config=config, flags=settings, config_path=path, flagfile=ff, files=tuple(m.files),
                    watch=tuple(dict.fromkeys(m.watch)), diagnostics=m.diags,
                    hash=hashlib.sha256("\0".join(m.texts).encode()).hexdigest(), fatal=fatal)
    if engine is not None:
        from collector.config.validate import validate  # validate imports this module

        validate(loaded, engine)
    return loaded


def _apply_source(m: _Merge, doc: Document, delimiter: str, default_interval: int) -> None:
    r = schema.Report(doc)
    for path, kept, ignored in doc.duplicates():
        r.diagnostics.append(Diagnostic("warning", f"duplicate key {path_text(path)}: the first one ({kept}) "
                                                   "is used, this one is ignored", ignored))
    for key in doc.value:
        if key == "options":
            continue
        if key == "schedule":
            for q in schema.schedule(r, default_interval):
                _put_query(m, q)
        elif key == "packs":
            for p in _packs(m, r, delimiter, default_interval):
                old = m.packs.pop(p.name, None)
                if old is not None:
                    r.warn(("packs",), f"pack {p.name} replaces the pack of the same name at {old.place}")
                m.packs[p.name] = p
        elif key == "decorators":
            decorators, sqls = schema.decorators(r)
            m.load += decorators.load
            m.always += decorators.always
            for seconds, queries in decorators.interval:
                m.interval.setdefault(seconds, []).extend(queries)
            m.sql_places += sqls
        elif key in LIST_KEYS:
            for name, items in schema.string_lists(r, key).items():
                target = m.lists[key].setdefault(name, [])
                target += [i for i in items if i not in target]
                m.key_places[(key, name)] = doc.place(key, name)
            if key == "events":
                for name in doc.value[key] if isinstance(doc.value[key], dict) else ():
                    if name not in ("enable_subscribers", "disable_subscribers"):
                        r.warn(("events", name), f"events: unknown key {name!r} (osquery reads "
                                                 "enable_subscribers and disable_subscribers)")
        elif key == "views":
            for name, (sql, place) in schema.views(r).items():
                m.views[name] = sql
                m.sql_places.append((f"views.{name}", sql, place))
        elif key == "shippers":
            for name, body in schema.shippers(r).items():
                m.shippers[name] = body
                m.key_places[("shippers", name)] = doc.place("shippers", name)
        else:
            what = "osquery key Quarry does not implement" if key in UNIMPLEMENTED_KEYS else "unknown key"
            r.warn((key,), f"{key}: {what}; kept, not used")
            m.extra[key] = doc.value[key]
    m.diags += r.diagnostics
    m.dropped += r.dropped


def _put_query(m: _Merge, q: ScheduledQuery) -> None:
    old = m.schedule.pop(q.name, None)
    if old is not None:
        m.diags.append(Diagnostic("warning", f"query {q.name} replaces the one defined at {old.place}",
                                  q.place))
    m.schedule[q.name] = q


def _packs(m: _Merge, r: schema.Report, delimiter: str, default_interval: int) -> list[Pack]:
    value = r.doc.value["packs"]
    if not isinstance(value, dict):
        r.warn(("packs",), f"packs: expected an object of packs, got {schema.json_type(value)}; ignored")
        return []
    out: list[Pack] = []
    base = Path(r.doc.file).parent
    for name, body in value.items():
        if isinstance(body, dict):
            p = schema.pack(r, ("packs", name), name, delimiter, default_interval)
        elif isinstance(body, str) and body.strip():
            target = Path(body) if Path(body).is_absolute() else base / body
            if name == "*":
                out += _glob_packs(m, r, str(target), delimiter, default_interval)
                continue
            p = _file_pack(m, r, name, str(target), delimiter, default_interval)
        else:
            r.error(("packs", name), f"pack {name}: expected a pack object or a pack file path, got "
                                     f"{schema.json_type(body)}; skipped")
            continue
        if p is not None:
            out.append(p)
    return out


def _file_pack(m: _Merge, r: schema.Report, name: str, path: str, delimiter: str,
               default_interval: int) -> Pack | None:
    m.files.append(path)
    m.watch.append(path)
    reference = r.doc.place("packs", name)
    try:
        doc = read_document(path)
    except ConfigError as e:
        if e.line is None:
            what = e.bare.replace("config file", "pack file")
            r.diagnostics.append(Diagnostic("error", f"pack {name}: {path}: {what}; pack skipped", reference))
        else:
            r.diagnostics.append(Diagnostic("error", f"pack {name} (from {reference}): {e.bare}; pack "
                                            "skipped", Place(path, e.line, e.column)))
        return None
    m.texts.append(doc.text)
    pr = schema.Report(doc)
    p = schema.pack(pr, (), name, delimiter, default_interval)
    r.diagnostics += pr.diagnostics
    r.dropped += pr.dropped
    return p


def _glob_packs(m: _Merge, r: schema.Report, pattern: str, delimiter: str,
                default_interval: int) -> list[Pack]:
    """`"*": "/dir/*"`: each regular file matched is a pack named after its stem (osquery's `%` works too)."""
    if Path(pattern).is_dir():
        pattern = str(Path(pattern) / "*")
    pattern = pattern.replace("%%", "**").replace("%", "*")
    recursive = "**" in pattern
    folder = Path(pattern)
    while any(ch in folder.name for ch in "*?[") and folder != folder.parent:
        folder = folder.parent
    m.watch.append(str(folder))
    # glob.glob, not Path.glob: the pattern is usually absolute.
    files = sorted(f for f in glob.glob(pattern, recursive=recursive) if Path(f).is_file())  # noqa: PTH207
    if not files:
        r.warn(("packs", "*"), f"packs: {pattern} matches no pack files")
    out = []
    for f in files:
        p = _file_pack(m, r, Path(f).stem, f, delimiter, default_interval)
        if p is not None:
            out.append(p)
    return out


def _build(m: _Merge, docs: list[Document], custom: dict[str, Any], refresh: int) -> Config:
    # One scheduled name, one query: a pack query colliding with a schedule name would share its results.
    names = set(m.schedule)
    packs = []
    for p in m.packs.values():
        keep = []
        for q in p.queries:
            if q.name in names:
                first = m.schedule[q.name].place if q.name in m.schedule else "an earlier pack"
                m.diags.append(Diagnostic("error", f"query {q.name} of pack {p.name} has the same name as "
                                                   f"the query at {first}; skipped", q.place))
                continue
            names.add(q.name)
            keep.append(q)
        packs.append(Pack(p.name, tuple(keep), p.discovery, p.platform, p.version, p.shard, p.place))
    return Config(
        sources=tuple(d.file for d in docs), schedule=tuple(m.schedule.values()), packs=tuple(packs),
        decorators=Decorators(tuple(m.load), tuple(m.always),
                              tuple((s, tuple(q)) for s, q in sorted(m.interval.items()))),
        options=m.options, custom=custom,
        file_paths={k: tuple(v) for k, v in m.lists["file_paths"].items()},
        exclude_paths={k: tuple(v) for k, v in m.lists["exclude_paths"].items()},
        events={k: tuple(v) for k, v in m.lists["events"].items()},
        kafka_topics={k: tuple(v) for k, v in m.lists["kafka_topics"].items()},
        views=m.views, shippers=m.shippers, extra=m.extra, dropped=tuple(m.dropped),
        sql_places=tuple(m.sql_places), key_places=m.key_places, pack_refresh_interval=refresh,
    )
