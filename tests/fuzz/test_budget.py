"""The fuzz tests together run CI_TOTAL cases in CI (issue 6: 10,000)."""

from __future__ import annotations

from tests.fuzz import conftest, test_fuzz_config, test_fuzz_sql


def test_ci_cases_add_up_to_the_budget() -> None:
    assert test_fuzz_config and test_fuzz_sql  # imported for their cases() declarations
    assert sum(conftest.SHARES.values()) == conftest.CI_TOTAL, conftest.SHARES
    assert set(conftest.SHARES) == {"dialect_roundtrip", "dialect_mutated", "flags", "load_files",
                                    "sql_generated", "sql_mutated"}
