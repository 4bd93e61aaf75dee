"""The `quarry` command: shell, query, tables, schema, run, check-config, status.

Flags keep osquery's names where osquery has the flag (`--json`, `--csv`, `--line`, `--separator`,
`--header`, `--nullvalue`); `--hostfs` points every table at a host root mounted elsewhere.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from collector import __version__, printer
from collector.errors import QueryError


def _engine(args: argparse.Namespace):  # noqa: ANN202 - Engine import is deferred for start-up time
    from collector.engine import Engine
    from collector.table import Limits

    limits = Limits()
    if getattr(args, "read_max", None):
        limits.read_max = args.read_max
    return Engine(root=args.hostfs, limits=limits)


def _output_options(p: argparse.ArgumentParser) -> None:
    fmt = p.add_mutually_exclusive_group()
    for mode in ("json", "json_pretty", "csv", "line", "list", "pretty", "column"):
        fmt.add_argument(f"--{mode}", dest="mode", action="store_const", const=mode, help=f"{mode} output")
    p.add_argument("--separator", default=None, help="separator for list/csv output (default |)")
    p.add_argument("--header", dest="header", action=argparse.BooleanOptionalAction, default=True,
                   help="print column headers (default on)")
    p.add_argument("--nullvalue", default="", help="text printed for NULL")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hostfs", default="/", help="host root the tables read (default /; e.g. /host in a container)")
    p.add_argument("--read_max", type=int, default=None, help="largest file hashed or read, bytes")


def _style(args: argparse.Namespace, default: str = "pretty") -> printer.Style:
    mode = args.mode or default
    sep = args.separator or ("," if mode == "csv" else "|")
    return printer.Style(mode=mode, headers=args.header, nullvalue=args.nullvalue, separator=sep)


def cmd_query(args: argparse.Namespace) -> int:
    sql = args.sql
    if args.query_file:
        with open(args.query_file, encoding="utf-8") as f:
            sql = f.read()
    if sql is None:
        sql = sys.stdin.read()
    if not sql.strip():
        print("Error: no query given (pass SQL as an argument, with --query_file, or on stdin)", file=sys.stderr)
        return 1
    engine = _engine(args)
    try:
        result = engine.query(sql, timeout=args.timeout)
    except QueryError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    for w in result.warnings:
        print(f"Warning: {w}", file=sys.stderr)
    if args.mode in ("json", "json_pretty"):
        sys.stdout.write(printer.json_rows(result.columns, result.rows, pretty=args.mode == "json_pretty"))
    else:
        sys.stdout.write(printer.render(result.columns, result.rows, _style(args)))
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    from collector.shell import Shell, interactive

    shell = Shell(_engine(args), style=_style(args))
    if args.sql:
        shell.run_text(args.sql)
        return 1 if shell.failed else 0
    if not sys.stdin.isatty():
        shell.run_text(sys.stdin.read())
        return 1 if shell.failed else 0
    return interactive(shell)


def cmd_tables(args: argparse.Namespace) -> int:
    from collector.registry import all_tables

    for name in all_tables():
        print(name)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from collector.registry import all_tables

    tables = all_tables()
    missing = [t for t in args.tables if t not in tables]
    if missing:
        print(f"Error: no such table: {', '.join(missing)}", file=sys.stderr)
        return 1
    for name in args.tables or tables:
        print(tables[name].spec.schema_sql())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from collector import startsignals

    early = startsignals.record()  # before the daemon's import, which takes a moment
    from collector.daemon import main as run_daemon

    return run_daemon(args.flags, early_signals=early)


def cmd_check_config(args: argparse.Namespace) -> int:
    from collector.config.check import check_config

    code, text = check_config(args.flags)
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return code


def cmd_status(args: argparse.Namespace) -> int:
    from collector.status import show

    return show(args.database_path, as_json=args.json, max_age_s=args.max_age)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quarry", description="osquery-compatible host telemetry as SQL")
    p.add_argument("--version", action="version", version=f"quarry {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("query", help="run one query and print the result")
    q.add_argument("sql", nargs="?", help="SQL to run (default: read from stdin)")
    q.add_argument("--query_file", help="read the SQL from this file")
    q.add_argument("--timeout", type=float, default=None, help="cancel after this many seconds")
    _output_options(q)
    _common(q)
    q.set_defaults(func=cmd_query)

    s = sub.add_parser("shell", help="interactive shell with osqueryi's meta-commands")
    s.add_argument("sql", nargs="?", help="run these statements/meta-commands and exit")
    _output_options(s)
    _common(s)
    s.set_defaults(func=cmd_shell)

    r = sub.add_parser("run", help="the daemon (osqueryd): schedule, differential results, logs, shippers",
                       description="Flags use osquery's names: --config_path, --flagfile, --database_path, "
                                   "--logger_path, --host_identifier, --hostfs, ...")
    r.add_argument("flags", nargs=argparse.REMAINDER, help="osquery-style flags (--name=value)")
    r.set_defaults(func=cmd_run)

    cc = sub.add_parser("check-config", help="validate a config (osquery --config_check); --explain shows selection")
    cc.add_argument("flags", nargs=argparse.REMAINDER, help="--config_path, --flagfile, --explain, other flags")
    cc.set_defaults(func=cmd_check_config)

    st = sub.add_parser("status", help="the running daemon's shippers and scheduler (from its status.json)",
                        description="Exit status: 0 the daemon runs, 1 it does not (stale status), "
                                    "2 no status.")
    st.add_argument("--database_path", default="/var/osquery/osquery.db",
                    help="the daemon's --database_path (status.json is kept beside its state)")
    st.add_argument("--json", action="store_true", help="print the raw status document")
    st.add_argument("--max_age", type=float, default=None,
                    help="seconds after which the status counts as stale (default: 3 intervals, >= 15)")
    st.set_defaults(func=cmd_status)

    t = sub.add_parser("tables", help="list the tables")
    t.set_defaults(func=cmd_tables)

    sc = sub.add_parser("schema", help="print CREATE TABLE statements")
    sc.add_argument("tables", nargs="*")
    sc.set_defaults(func=cmd_schema)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # run and check-config take osquery's flags verbatim; argparse must not interpret them.
    passthrough = {"run": cmd_run, "check-config": cmd_check_config}
    if argv and argv[0] in passthrough and not {"-h", "--help"} & set(argv[1:]):
        return int(passthrough[argv[0]](argparse.Namespace(flags=argv[1:])))
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
