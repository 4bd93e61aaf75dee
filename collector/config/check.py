"""`quarry check-config` (osquery's --config_check): every config defect as file:line:column, and --explain.

    code, text = check_config(["--config_path", "/etc/osquery/osquery.conf", "--explain"])

Exit 0 when there is no error (warnings allowed), 1 when there is at least one, 2 for unusable arguments.
`--explain` adds, for this host, each pack's state, the queries that would run, and for every query that
would not, why (platform, version, shard, discovery result, denylisted, SQL that does not compile).
"""

from __future__ import annotations

import socket
from collections.abc import Container, Mapping, Sequence

from collector import OSQUERY_COMPAT_VERSION
from collector.config.load import Loaded, load
from collector.config.selection import SQLEngine, Verdict
from collector.config.selectors import build_platform, machine_shard
from collector.config.validate import validate

USAGE = ("usage: quarry check-config [--config_path PATH] [--flagfile PATH] [--explain] "
         "[--<osquery flag>=VALUE ...]")


def _parse(args: Sequence[str]) -> tuple[str | None, str | None, bool, list[str]] | str:
    config_path = flagfile = None
    explain = False
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.lstrip("-").partition("=")
        name = name.replace("-", "_")
        i += 1
        if arg.startswith("-") and name == "explain" and not eq:
            explain = True
        elif arg.startswith("-") and name in ("config_path", "flagfile"):
            if not eq:
                if i >= len(args) or args[i].startswith("--"):
                    return f"--{name} needs a path"
                value, i = args[i], i + 1
            if name == "config_path":
                config_path = value
            else:
                flagfile = value
        else:
            rest.append(arg)
    return config_path, flagfile, explain, rest


def check_config(args: Sequence[str], *, engine: SQLEngine | None = None, hostname: str | None = None,
                 denylisted: Container[str] | Mapping[str, float] = ()) -> tuple[int, str]:
    parsed = _parse(args)
    if isinstance(parsed, str):
        return 2, f"error: {parsed}\n{USAGE}\n"
    config_path, flagfile, explain, rest = parsed
    loaded = load(config_path, flagfile=flagfile, cli_flags=rest)
    if engine is None:
        from collector.engine import Engine  # deferred: loading every table costs start-up time

        engine = Engine(root=str(loaded.flag("hostfs")))
    diags = validate(loaded, engine)
    lines = [str(d) for d in diags]
    errors = sum(d.severity == "error" for d in diags)
    warnings = len(diags) - errors
    config = loaded.config
    lines.append(f"{loaded.config_path}: {errors} error(s), {warnings} warning(s); {len(config.queries())} "
                 f"queries ({len(config.schedule)} scheduled, {len(config.packs)} packs) from "
                 f"{len(config.sources)} config file(s)")
    if explain and not loaded.fatal:
        lines += explain_lines(loaded, engine, hostname, denylisted)
    return (1 if errors else 0), "\n".join(lines) + "\n"


def explain_lines(loaded: Loaded, engine: SQLEngine, hostname: str | None,
                  denylisted: Container[str] | Mapping[str, float] = ()) -> list[str]:
    host = hostname if hostname is not None else socket.gethostname()
    config = loaded.config
    verdicts = config.explain(host, engine, denylisted=denylisted)
    out = ["", f"On this host ({host}: {build_platform()}, shard {machine_shard(host)}, osquery "
               f"{OSQUERY_COMPAT_VERSION} compatible):"]
    by_pack: dict[str, list[Verdict]] = {}
    for v in verdicts:
        if v.query.pack is not None:
            by_pack.setdefault(v.query.pack, []).append(v)
    if config.packs:
        out.append("packs:")
        for p in config.packs:
            vs = by_pack.get(p.name, [])
            gate = vs[0].pack_reasons if vs else []
            state = "inactive: " + "; ".join(gate) if gate else "active"
            out.append(f"  {p.name} ({len(p.queries)} queries, {sum(v.runs for v in vs)} would run) {state}"
                       f"  [{p.place}]")
    runs = [v for v in verdicts if v.runs]
    out.append(f"would run ({len(runs)}):")
    for v in runs:
        q = v.query
        mode = "snapshot" if q.snapshot else "differential"
        out.append(f"  {q.name}  every {q.interval} s, {mode}  [{q.place}]")
    # Queries of an inactive pack are summed up by the pack line; list the rest one by one.
    blocked = [v for v in verdicts if not v.runs and v.reasons]
    inactive = sum(1 for v in verdicts if not v.runs and not v.reasons)
    out.append(f"would not run ({len(blocked) + inactive}; {inactive} of them only because their pack is "
               "inactive):")
    for v in blocked:
        out.append(f"  {v.name}  [{v.query.place}]: {'; '.join(v.why_not)}")
    if config.dropped:
        out.append(f"skipped when loading ({len(config.dropped)}):")
        for d in config.dropped:
            out.append(f"  {d.name}  [{d.place}]: {d.reason}")
    dec = config.decorators
    if dec.load or dec.always or dec.interval:
        intervals = ", ".join(f"every {s} s: {len(q)}" for s, q in dec.interval)
        out.append(f"decorators: load {len(dec.load)}, always {len(dec.always)}"
                   + (f", interval ({intervals})" if intervals else ""))
    return out
