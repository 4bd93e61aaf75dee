"""The catalogue of osquery flags Quarry honours: name, gflags type, default, description, shell-only.

Data, not behaviour: the CLI parses flags and flag files with it, `osquery_flags` lists it, and
`Runtime.flags` pairs each entry with its current value. Names, types, defaults and descriptions are
osquery's (Linux values) so `SELECT * FROM osquery_flags WHERE default_value <> value` reads the same.
Aliases (osquery's FLAG_ALIAS) set their target and are not listed as flags of their own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flag:
    name: str
    type: str  # gflags type name as osquery_flags shows it: string, bool, int32, uint32, uint64
    default: str
    description: str
    shell_only: bool = False
    quarry_only: bool = False  # not an osquery flag (e.g. hostfs)


def _f(name: str, type_: str, default: object, description: str, **kw: bool) -> Flag:
    if isinstance(default, bool):
        default = "true" if default else "false"
    return Flag(name, type_, str(default), description, **kw)


CATALOGUE: tuple[Flag, ...] = (
    # configuration
    _f("flagfile", "string", "", "load flags from file"),
    _f("config_plugin", "string", "filesystem", "Config plugin name"),
    _f("config_path", "string", "/etc/osquery/osquery.conf", "Path to JSON config file"),
    _f("config_refresh", "uint64", 0, "Optional interval in seconds to re-read configuration"),
    _f("config_check", "bool", False, "Check the format of an osquery config and exit"),
    _f("pidfile", "string", "/var/osquery/osqueryd.pidfile", "Path to the daemon pidfile mutex"),
    # state
    _f("database_path", "string", "/var/osquery/osquery.db",
       "If using a disk-based backing store, specify a path"),
    _f("disable_database", "bool", False, "Disable the persistent RocksDB storage"),
    # identity
    _f("host_identifier", "string", "hostname",
       "Field used to identify the host running osquery (hostname, uuid, instance, ephemeral, specified)"),
    _f("specified_identifier", "string", "",
       "Field used to specify the host_identifier when set to \"specified\""),
    # schedule
    _f("schedule_splay_percent", "uint64", 10, "Percent to splay config times"),
    _f("schedule_default_interval", "uint64", 3600, "Query interval to use if none is provided"),
    _f("schedule_timeout", "uint64", 0, "Limit the schedule, 0 for no limit"),
    _f("schedule_max_drift", "uint64", 60,
       "Max time drift in seconds. Scheduler tries to compensate the drift until the drift exceed this "
       "value. After it the drift will be reseted to zero and the compensation process will start from "
       "the beginning. It is needed to avoid the problem of endless compensation (which is CPU greedy) "
       "after a long SIGSTOP/SIGCONT pause or something similar. Set it to zero to switch off a drift "
       "compensation. Default: 60"),
    _f("schedule_epoch", "uint64", 0, "Epoch for scheduled queries"),
    _f("schedule_lognames", "bool", False, "Log the running scheduled query name"),
    _f("disable_caching", "bool", False, "Disable scheduled query caching"),
    _f("table_delay", "uint64", 0, "Add an optional microsecond delay between table scans"),
    _f("read_max", "uint64", 50 * 1024 * 1024, "Maximum file read size"),
    # watchdog
    _f("watchdog_level", "int32", 0, "Performance limit level (0=normal, 1=restrictive, -1=off)"),
    _f("watchdog_memory_limit", "uint64", 0, "Override watchdog profile memory limit (e.g., 300, for 300MB)"),
    _f("watchdog_utilization_limit", "uint64", 0, "Override watchdog profile CPU utilization limit"),
    _f("watchdog_latency_limit", "uint64", 0, "Override watchdog profile latency limit (seconds at the limit)"),
    _f("watchdog_delay", "uint64", 60, "Initial delay in seconds before watchdog starts enforcing limits"),
    _f("disable_watchdog", "bool", False, "Disable userland watchdog process"),
    # events
    _f("disable_events", "bool", False, "Disable osquery publish/subscribe system"),
    _f("events_expiry", "uint64", 3600, "Timeout to expire event subscriber results"),
    _f("events_max", "uint64", 50000, "Maximum number of events per type to buffer"),
    _f("events_optimize", "bool", True, "Optimize subscriber select queries (scheduler only)"),
    # logging
    _f("logger_plugin", "string", "filesystem", "Logger plugin name"),
    _f("logger_path", "string", "/var/log/osquery/",
       "Directory path for ERROR/WARN/INFO and results logging"),
    _f("logger_event_type", "bool", True, "Log scheduled results as events"),
    _f("logger_snapshot_event_type", "bool", False, "Log scheduled snapshot results as events"),
    _f("logger_numerics", "bool", False, "Use numeric JSON syntax for numeric values"),
    _f("logger_min_status", "int32", 0, "Minimum level for status log recording"),
    _f("logger_min_stderr", "int32", 0, "Minimum level for statuses written to stderr"),
    _f("logger_stderr", "bool", True, "Write status logs to stderr"),
    _f("logger_rotate", "bool", False, "Zip and rotate logs"),
    _f("logger_rotate_size", "uint64", 25 * 1024 * 1024, "Size in bytes of log rotation"),
    _f("logger_rotate_max_files", "uint64", 25, "Max number of log files"),
    _f("logger_mode", "string", "0640", "Octal mode for log files (default '0640')"),
    _f("log_result_reason", "bool", False,
       "Quarry: add the reason rows are new (first run, epoch, SQL change, lost state) to results lines"),
    _f("logger_kafka_brokers", "string", "",
       "Bootstrap broker(s) as a comma-separated list of host or host:port (default port 9092)"),
    _f("logger_kafka_topic", "string", "", "Kafka topic to publish logs under"),
    _f("logger_kafka_acks", "string", "all",
       "The number of acknowledgments the leader has to receive (0, 1, 'all')"),
    _f("logger_kafka_compression", "string", "none",
       "Compression codec to use for compressing message sets ('none' or 'gzip')"),
    _f("disable_logging", "bool", False, "Disable ERROR/INFO logging"),
    _f("verbose", "bool", False, "Enable verbose informational messages"),
    _f("disable_decorators", "bool", False, "Disable log result decoration"),
    _f("decorations_top_level", "bool", False, "Add decorators as top level JSON objects"),
    _f("utc", "bool", True, "Convert all UNIX times to UTC"),
    # interactive shell output (osqueryi's SHELL_FLAGs)
    _f("planner", "bool", False, "Enable osquery runtime planner output", shell_only=True),
    _f("header", "bool", True, "Toggle column headers true/false", shell_only=True),
    _f("json", "bool", False, "Print output in JSON format", shell_only=True),
    _f("csv", "bool", False, "Set output mode to 'csv'", shell_only=True),
    _f("line", "bool", False, "Set output mode to 'line'", shell_only=True),
    _f("separator", "string", "|", "Set output field separator, default \"|\"", shell_only=True),
    # Quarry's own
    _f("hostfs", "string", "/",
       "Root of the host filesystem to read (e.g. /host when running in a container)", quarry_only=True),
    _f("run_as_user", "string", "",
       "After start-up, drop root and run as this user[:group] (files Quarry created are chowned to it)",
       quarry_only=True),
    _f("run_as_capabilities", "string", "",
       "With run_as_user: capabilities to keep, comma-separated (e.g. dac_read_search,sys_ptrace)",
       quarry_only=True),
    _f("status_interval", "uint64", 5,
       "Seconds between two writes of <database_path>/status.json (read by `quarry status`)",
       quarry_only=True),
    _f("metrics_port", "uint32", 0,
       "TCP port of the HTTP endpoint serving /metrics (Prometheus) and /healthz; 0 = off", quarry_only=True),
    _f("metrics_address", "string", "127.0.0.1",
       "Address the /metrics and /healthz endpoint listens on (loopback unless exposed on purpose)",
       quarry_only=True),
)

FLAGS: dict[str, Flag] = {f.name: f for f in CATALOGUE}

# osquery's FLAG_ALIAS pairs: the alias sets the target flag.
ALIASES: dict[str, str] = {
    "log_result_events": "logger_event_type",
    "log_numerics_as_numbers": "logger_numerics",
    "osquery_log_dir": "logger_path",
}


def canonical(name: str) -> str:
    """The flag an option name sets (aliases resolved, leading dashes dropped)."""
    name = name.lstrip("-")
    return ALIASES.get(name, name)


def render(value: object) -> str:
    """A value as osquery_flags shows it: booleans lower-case, everything else its text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
