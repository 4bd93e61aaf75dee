"""osquery-style configuration: the text dialect, selectors, and (later) options, schedule, packs."""

from collector.config.selectors import check_platform
from collector.config.text import load_file, loads

__all__ = ["check_platform", "load_file", "loads"]
