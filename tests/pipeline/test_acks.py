from __future__ import annotations

import random

from collector.pipeline.acks import AckTracker


def test_cursor_advances_only_over_a_contiguous_prefix():
    t = AckTracker(10)
    t.done(range(20, 30))  # the second request finished first
    assert t.cursor == 10 and len(t) == 1
    t.done(range(12, 20))
    assert t.cursor == 10 and t.is_done(15) and not t.is_done(11)
    t.done([10, 11])
    assert t.cursor == 30 and len(t) == 0


def test_random_order_matches_a_set_model():
    rng = random.Random(5)
    seqs = list(range(1000))
    rng.shuffle(seqs)
    t = AckTracker(0)
    seen: set[int] = set()
    for s in seqs:
        t.done([s])
        seen.add(s)
        expect = 0
        while expect in seen:
            expect += 1
        assert t.cursor == expect
        assert len(t) <= 500
    assert t.cursor == 1000


def test_skip_to_and_duplicates():
    t = AckTracker(0)
    t.done([5, 5, 6])
    t.skip_to(3)
    assert t.cursor == 3
    t.done([3, 4])
    assert t.cursor == 7
    t.done([1, 2])  # below the cursor: ignored
    assert t.cursor == 7
