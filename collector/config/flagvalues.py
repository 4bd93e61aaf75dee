"""Flag values from the command line, the flagfile and the config's `options`, resolved by precedence.

Quarry's precedence is command line > flagfile > config `options` (the issue's rule; osquery lets `options`
override non-CLI-only flags). Values are parsed by the catalogue type (collector.flags) with gflags' rules, so
a bad value is an error naming the flag and where it was given. This module adds what the catalogue does not
carry: which flags osquery only reads from the command line (CLI_ONLY: in `options` they are refused loudly),
the osquery flags the config layer needs beyond the catalogue (EXTRA), and osquery flag names Quarry knows but
does not implement (IGNORED: a warning, not an "unknown flag" error).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collector import flags as flagdefs
from collector.model import Diagnostic, Place

CLI_ONLY = frozenset({
    # osquery's CLI_FLAGs: read once at start, before any config is loaded.
    "flagfile", "config_plugin", "config_path", "config_check", "config_dump", "database_path",
    "disable_database", "pidfile", "logger_plugin", "watchdog_level", "watchdog_memory_limit",
    "watchdog_utilization_limit", "watchdog_latency_limit", "watchdog_delay", "disable_watchdog",
    "extensions_socket", "extensions_autoload", "disable_extensions", "daemonize", "ephemeral",
    # Quarry: the engine's filesystem root and the user are fixed when the daemon starts.
    "hostfs", "run_as_user", "run_as_capabilities",
})

EXTRA: dict[str, flagdefs.Flag] = {
    "pack_delimiter": flagdefs.Flag("pack_delimiter", "string", "_", "Delimiter for pack and query names"),
    "pack_refresh_interval": flagdefs.Flag("pack_refresh_interval", "uint64", "3600",
                                           "Cache expiration for a packs discovery queries"),
}

IGNORED = frozenset({
    "audit_allow_config", "audit_allow_process_events", "audit_allow_sockets", "audit_persist",
    "aws_access_key_id", "aws_region", "aws_secret_access_key", "buffered_log_max", "carver_block_size",
    "carver_disable_function", "config_accelerated_refresh", "config_enable_backup", "config_tls_endpoint",
    "config_tls_max_attempts", "config_tls_refresh", "disable_audit", "disable_carver", "disable_distributed",
    "disable_enrollment", "disable_hash_cache", "disable_tables", "distributed_interval",
    "distributed_plugin",
    "distributed_tls_max_attempts", "distributed_tls_read_endpoint", "distributed_tls_write_endpoint",
    "enable_extensions_watchdog", "enable_file_events", "enable_monitor", "enable_syslog", "enable_tables",
    "enable_watchdog_debug", "enroll_always", "enroll_secret_env", "enroll_secret_path",
    "enroll_tls_endpoint",
    "events_enforce_denylist", "extensions_interval", "extensions_require", "extensions_timeout", "force",
    "hash_cache_max", "hash_delay", "logger_kinesis_stream", "logger_firehose_stream",
    "logger_syslog_facility",
    "logger_tls_compress", "logger_tls_endpoint", "logger_tls_max_lines", "logger_tls_period",
    "malloc_trim_threshold", "schedule_reload", "syslog_pipe_path", "tls_client_cert", "tls_client_key",
    "tls_hostname", "tls_server_certs", "watchdog_forced_shutdown_delay", "watchdog_max_delay",
    "worker_threads",
})

COMMAND_LINE = "<command line>"

_BOOL = {"true": True, "t": True, "yes": True, "y": True, "1": True,
         "false": False, "f": False, "no": False, "n": False, "0": False}
_RANGES = {"int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1), "uint64": (0, 2**64 - 1),
           "int64": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True)
class Setting:
    """A flag's effective value and where it came from (origin: default, options, flagfile, cli)."""

    name: str
    value: bool | int | str
    text: str
    origin: str = "default"
    place: Place | None = None


@dataclass(frozen=True)
class Given:
    """A flag as written somewhere, not yet parsed."""

    name: str  # as written, without dashes
    raw: Any
    place: Place


def normalize(name: str) -> str:
    """`--a-b`, `-a_b`, `a_b` -> a_b, with osquery's aliases resolved."""
    return flagdefs.canonical(name.lstrip("-").replace("-", "_"))


def lookup(name: str) -> flagdefs.Flag | None:
    n = normalize(name)
    return flagdefs.FLAGS.get(n) or EXTRA.get(n)


def catalogue() -> list[flagdefs.Flag]:
    return [*flagdefs.CATALOGUE, *EXTRA.values()]


def parse(flag: flagdefs.Flag, raw: Any) -> bool | int | str:
    """raw (text, or a JSON value from `options`) as the flag's type; ValueError saying what was expected."""
    if isinstance(raw, (dict, list)) or raw is None:
        kind = "null" if raw is None else "an object" if isinstance(raw, dict) else "a list"
        raise ValueError(f"--{flag.name} takes a {flag.type} value, not {kind}")
    if flag.type == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, (int, float)):
            key = "1" if raw == 1 else "0" if raw == 0 else "?"
        else:
            key = str(raw).strip().lower()
        if key in _BOOL:
            return _BOOL[key]
        raise ValueError(f"--{flag.name} takes a boolean (true/false), got {raw!r}")
    if flag.type in _RANGES:
        low, high = _RANGES[flag.type]
        if isinstance(raw, bool):
            raise ValueError(f"--{flag.name} takes a number ({flag.type}), got {str(raw).lower()}")
        if isinstance(raw, float):
            if not raw.is_integer():
                raise ValueError(f"--{flag.name} takes a whole number ({flag.type}), got {raw}")
            value = int(raw)
        elif isinstance(raw, int):
            value = raw
        else:
            text = str(raw).strip()
            try:
                value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
            except ValueError:
                raise ValueError(f"--{flag.name} takes a number ({flag.type}), got {raw!r}") from None
        if not low <= value <= high:
            raise ValueError(f"--{flag.name}: {value} is out of range for {flag.type} ({low}..{high})")
        return value
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def parse_argv(args: Sequence[str], source: str = COMMAND_LINE) -> tuple[list[Given], list[Diagnostic]]:
    """gflags' command-line forms: --name=value, --name value, --bool, --nobool (both - and _ spellings)."""
    given: list[Given] = []
    diags: list[Diagnostic] = []
    place = Place(source)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("-") or arg in ("-", "--"):
            diags.append(Diagnostic("error", f"unexpected argument {arg!r} (flags are --name=value)", place))
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        flag = lookup(name)
        if eq:
            given.append(Given(name, value, place))
        elif flag is not None and flag.type == "bool":
            given.append(Given(name, "true", place))
        elif flag is None and name.startswith("no") and getattr(lookup(name[2:]), "type", "") == "bool":
            given.append(Given(name[2:], "false", place))
        elif i < len(args) and not args[i].startswith("--"):
            given.append(Given(name, args[i], place))
            i += 1
        else:
            diags.append(Diagnostic("error", f"flag --{name} is missing its value", place))
    return given, diags


def read_flagfile(path: str | Path,
                  _seen: frozenset[str] = frozenset()) -> tuple[list[Given], list[Diagnostic]]:
    """A gflags flagfile: one --name=value per line, `#` comments; values are taken literally (no quotes)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return [], [Diagnostic("error", "flagfile does not exist", Place(file))]
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or e
        return [], [Diagnostic("error", f"cannot read flagfile: {why}", Place(file))]
    given: list[Given] = []
    diags: list[Diagnostic] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith("//"):
            continue
        column = raw.index(line[0]) + 1
        place = Place(file, lineno, column)
        if not line.startswith("-"):
            diags.append(_warn(f"line ignored: gflags flagfile lines start with --, got {line!r}", place))
            continue
        found, bad = parse_argv([line], file)
        diags.extend(Diagnostic(d.severity, d.message, place) for d in bad)
        for g in found:
            g = Given(g.name, g.raw, place)
            if normalize(g.name) == "flagfile":
                nested = str(Path(file).parent / g.raw) if not Path(g.raw).is_absolute() else g.raw
                if nested in _seen or nested == file:
                    diags.append(Diagnostic("error", f"flagfile {nested} includes itself", place))
                    continue
                more, more_diags = read_flagfile(nested, _seen | {file})
                given.extend(more)
                diags.extend(more_diags)
                continue
            if isinstance(g.raw, str) and len(g.raw) >= 2 and g.raw[0] == g.raw[-1] and g.raw[0] in "\"'":
                diags.append(Diagnostic("warning", f"--{g.name}: the quotes are part of the value "
                                                   f"(gflags does not remove them): {g.raw}", place))
            given.append(g)
    return given, diags


def _check_known(g: Given, where: str) -> tuple[flagdefs.Flag | None, Diagnostic | None]:
    name = normalize(g.name)
    flag = lookup(name)
    if flag is not None:
        return flag, None
    if name in IGNORED:
        return None, _warn(f"--{name} is an osquery flag Quarry does not implement; ignored", g.place)
    return None, Diagnostic("error", f"unknown flag --{g.name} ({where})", g.place)


def resolve(cli: Iterable[Given], flagfile: Iterable[Given],
            options: Iterable[Given]) -> tuple[dict[str, Setting], dict[str, Any], list[Diagnostic]]:
    """(effective settings of every known flag, custom_* options, diagnostics)."""
    settings = {f.name: Setting(f.name, parse(f, f.default), f.default) for f in catalogue()}
    custom: dict[str, Any] = {}
    diags: list[Diagnostic] = []

    for g in options:  # lowest precedence first; later sources override earlier ones
        name = normalize(g.name)
        if name.startswith("custom_"):
            custom[name] = g.raw
            continue
        if name in CLI_ONLY:
            diags.append(_err(f"option {g.name!r}: --{name} only works on the command line or in the "
                              "flagfile (osquery treats it as CLI-only); ignored here", g.place))
            continue
        flag = lookup(name)
        if flag is None:
            if name in IGNORED:
                diags.append(_warn(f"option {g.name!r}: an osquery flag Quarry does not implement; ignored",
                                   g.place))
            else:
                diags.append(_warn(f"unknown option {g.name!r}: not an osquery flag (custom options must "
                                   "start with custom_); ignored", g.place))
            continue
        _apply(settings, flag, g, "options", diags)
    for origin, items in (("flagfile", flagfile), ("cli", cli)):
        for g in items:
            flag, diag = _check_known(g, "flagfile" if origin == "flagfile" else "command line")
            if diag:
                diags.append(diag)
            if flag is not None:
                _apply(settings, flag, g, origin, diags)
    return settings, custom, diags


def _apply(settings: dict[str, Setting], flag: flagdefs.Flag, g: Given, origin: str,
           diags: list[Diagnostic]) -> None:
    try:
        value = parse(flag, g.raw)
    except ValueError as e:
        diags.append(Diagnostic("error", f"bad value: {e}; keeping {settings[flag.name].text!r}", g.place))
        return
    settings[flag.name] = Setting(flag.name, value, flagdefs.render(value), origin, g.place)


def _err(message: str, place: Place) -> Diagnostic:
    return Diagnostic("error", message, place)


def _warn(message: str, place: Place) -> Diagnostic:
    return Diagnostic("warning", message, place)


def from_mapping(values: Mapping[str, Any], source: str = COMMAND_LINE) -> list[Given]:
    return [Given(k.lstrip("-"), v, Place(source)) for k, v in values.items()]
