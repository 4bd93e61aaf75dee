"""osquery-style configuration: the text dialect, flags, options, schedule, packs, decorators, validation.

    from collector.config import load, validate, check_config
    loaded = load(config_path, flagfile=..., cli_flags=[...])   -> Loaded (config, flags, diagnostics)
    validate(loaded, engine)                                     -> every Diagnostic, sorted by place
    loaded.config.scheduled(hostname, engine, denylisted=...)   -> the ScheduledQuery list for this host

Hot reload (`collector.config.watch`: watch, diff_configs) needs watchfiles, so it is imported from there.
"""

from collector.config.check import check_config
from collector.config.load import DEFAULT_CONFIG_PATH, Loaded, load
from collector.config.selection import Config, Verdict
from collector.config.selectors import check_platform
from collector.config.text import load_file, loads
from collector.config.validate import validate

__all__ = ["DEFAULT_CONFIG_PATH", "Config", "Loaded", "Verdict", "check_config", "check_platform", "load",
           "load_file", "loads", "validate"]
