"""`quarry` with a wall clock that jumps: time.time() is shifted by the seconds written in a file.

    python -m tests.chaos.clockchild OFFSET_FILE run --config_path=... (the usual `quarry` arguments)

Writing "10800" into OFFSET_FILE moves the daemon's wall clock 3 h forward, "-7200" 2 h back, at once.
time.monotonic() (asyncio's clock, which retry, backoff and linger use) is left alone, as a real clock
jump leaves CLOCK_MONOTONIC alone. libfaketime would do this for every clock, but Debian's 0.9.10 makes
Python's time.sleep() fail with EINVAL (clock_nanosleep), so the patch is done here, before any Quarry
module is imported (the scheduler and the log context take time.time as a default argument).
"""

from __future__ import annotations

import sys
import time

_real_time = time.time
_offset = [0.0, -1.0]  # offset, monotonic time it was read


def _shifted() -> float:
    now = time.monotonic()
    if now - _offset[1] >= 0.05:  # a jump takes effect within 50 ms
        _offset[1] = now
        try:
            with open(sys.argv[1]) as f:
                _offset[0] = float(f.read().strip() or 0)
        except (OSError, ValueError):
            pass
    return _real_time() + _offset[0]


if __name__ == "__main__":
    time.time = _shifted
    from collector.cli import main

    sys.exit(main(sys.argv[2:]))
