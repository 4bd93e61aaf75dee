"""Which sequence numbers are finished, when answers arrive out of order.

Two requests in flight finish in any order; a record is finished when it was delivered, dead-lettered or
dropped. The cursor (first unfinished seq) advances only over a contiguous finished prefix, so a restart
re-sends everything from the cursor on: duplicates are confined to the unfinished window.
Finished seqs above the cursor are kept as disjoint half-open intervals; their number is bounded by the
requests in flight, not by the backlog.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable


class AckTracker:
    def __init__(self, cursor: int = 0) -> None:
        self.cursor = cursor
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __len__(self) -> int:
        """Number of finished ranges held above the cursor."""
        return len(self._starts)

    def done_range(self, start: int, end: int) -> None:
        """Mark [start, end) finished."""
        start = max(start, self.cursor)
        if end <= start:
            return
        i = bisect.bisect_left(self._ends, start)  # first interval that ends at or after start
        j = bisect.bisect_right(self._starts, end)  # intervals before j start at or before end
        if i < j:  # overlap or touch: merge intervals i..j-1 with the new one
            start = min(start, self._starts[i])
            end = max(end, self._ends[j - 1])
        self._starts[i:j] = [start]
        self._ends[i:j] = [end]
        if self._starts[0] <= self.cursor:
            self.cursor = max(self.cursor, self._ends[0])
            del self._starts[0], self._ends[0]

    def done(self, seqs: Iterable[int]) -> None:
        """Mark single seqs finished (consecutive runs are merged before insertion)."""
        run_start = run_end = None
        for s in sorted(seqs):
            if run_end is not None and s == run_end:
                run_end += 1
                continue
            if run_start is not None and run_end is not None:
                self.done_range(run_start, run_end)
            run_start, run_end = s, s + 1
        if run_start is not None and run_end is not None:
            self.done_range(run_start, run_end)

    def skip_to(self, seq: int) -> None:
        """Everything below seq is finished (dropped segments, a restart's cursor)."""
        self.done_range(self.cursor, seq)

    def is_done(self, seq: int) -> bool:
        if seq < self.cursor:
            return True
        i = bisect.bisect_right(self._starts, seq) - 1
        return i >= 0 and seq < self._ends[i]
