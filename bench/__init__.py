"""Quarry's benchmarks: they print figures and ratios against baselines measured in the same run."""
