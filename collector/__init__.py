"""Quarry's collector: the operating system as osquery-compatible SQL tables, the daemon and the pipeline."""

__version__ = "0.1.0"
