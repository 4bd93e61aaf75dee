"""Where on the clock a scheduled query runs: osquery's splay, remembered across restarts, and the multiples.

osquery (fact sheet §1.7) splays each interval by a random integer in [max(1, i - i*p/100), i + i*p/100],
stores it as `interval.<name>` = "<interval>:<splay>" and reuses it while the interval is unchanged, so a
restart does not move the fleet's load. Quarry stores {interval, splay} in State domain "splay". Runs land on
multiples of the splayed interval in Unix time (osquery's `i % interval == 0`), which is why nothing drifts.
"""

from __future__ import annotations

import math
import random

from collector.model import ScheduledQuery
from collector.state import State

DOMAIN = "splay"


def splay(interval: int, percent: int, rng: random.Random | None = None) -> int:
    """osquery's splayValue: a uniform integer in [max(1, i - i*p/100), i + i*p/100]."""
    if percent <= 1:
        percent = 10  # osquery forces a splay percent <= 1 back to 10
    if percent > 100:
        return interval
    diff = int(interval * percent / 100)
    return (rng or random).randint(max(1, interval - diff), interval + diff)


def stored_splay(state: State, query: ScheduledQuery, percent: int, rng: random.Random | None = None) -> int:
    """The splayed interval of `query`: the stored one while its interval is unchanged, else a new one."""
    stored = state.get(DOMAIN, query.name)
    if (isinstance(stored, dict) and stored.get("interval") == query.interval
            and isinstance(stored.get("splay"), int) and stored["splay"] >= 1):
        return int(stored["splay"])
    value = splay(query.interval, percent, rng)
    state.put(DOMAIN, query.name, {"interval": query.interval, "splay": value})
    return value


def next_multiple(now: float, interval: int) -> float:
    """The first multiple of `interval` (seconds since the epoch) strictly after `now`."""
    return float((math.floor(now / interval) + 1) * interval)
