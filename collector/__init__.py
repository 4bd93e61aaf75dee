"""Quarry's collector: the operating system as osquery-compatible SQL tables, the daemon and the pipeline."""

__version__ = "0.1.0"

# The osquery release whose tables, SQL and config semantics Quarry reproduces. Pack and query `version`
# selectors compare against it, so packs written for osquery (e.g. "version": "1.4.5") select as they would.
OSQUERY_COMPAT_VERSION = "5.23.0"
