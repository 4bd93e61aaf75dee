"""Signals that arrive while `quarry run` starts, before the event loop installs its own handlers.

By default SIGTERM and SIGHUP would end the start-up half-way and SIGINT raise a traceback. `record()` makes
them only noted; Daemon.run() honours the list once the loop runs (a stop, or one reload for SIGHUP). Kept
apart from collector.daemon so the CLI can install it before importing the daemon, which takes a moment.
"""

from __future__ import annotations

import signal


def record() -> list[str]:
    """Note SIGTERM/SIGINT/SIGHUP by name in the returned list until other handlers replace these."""
    seen: list[str] = []
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: seen.append(signal.Signals(signum).name))
    return seen
