"""The suites evaluated in polars: the same expectations as Great Expectations names them, across a run's chunks."""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.core.checks import SuiteChecker, check, expectations
from pipelines.core.quality import validate


def _suite(e):
    return [e.ExpectColumnValuesToNotBeNull(column="x"), e.ExpectColumnValuesToBeUnique(column="k"),
            e.ExpectColumnValuesToBeBetween(column="x", min_value=0, max_value=100),
            e.ExpectColumnValuesToBeInSet(column="c", value_set=["a", "b"]),
            e.ExpectCompoundColumnsToBeUnique(column_list=["k", "c"])]


def test_failures_are_named_as_great_expectations_names_them() -> None:
    df = pl.DataFrame({"k": ["a", "b", "b", None], "x": [1, None, 300, 5], "c": ["a", "z", "b", None]})
    report = check(df, "demo", _suite)
    assert not report.success and report.evaluated == 5
    assert report.failures == ["expect_column_values_to_not_be_null(x) (1 unexpected)",
                               "expect_column_values_to_be_unique(k) (2 unexpected)",
                               "expect_column_values_to_be_between(x) (1 unexpected)",
                               "expect_column_values_to_be_in_set(c) (1 unexpected)"]
    # The same frame through Great Expectations fails the same expectations.
    gx = validate(df, "demo", _suite)
    assert sorted(f.split("(")[0] for f in gx.failures) == sorted(f.split("(")[0] for f in report.failures)


def test_uniqueness_is_seen_across_chunks() -> None:
    checker = SuiteChecker("demo", _suite)
    checker.add(pl.DataFrame({"k": ["a", "b"], "x": [1, 2], "c": ["a", "b"]}))
    checker.add(pl.DataFrame({"k": ["b", "c"], "x": [3, 4], "c": ["a", "a"]}))  # "b" again: only across chunks
    report = checker.report()
    assert report.failures == ["expect_column_values_to_be_unique(k) (2 unexpected)"]
    assert check(pl.DataFrame({"k": ["a"], "x": [5], "c": ["b"]}), "demo", _suite).success


def test_an_expectation_without_a_polars_form_fails_loudly() -> None:
    assert [e.type for e in expectations(lambda e: [e.ExpectTableRowCountToEqual(value=3)])] == [
        "expect_table_row_count_to_equal"]
    with pytest.raises(NotImplementedError, match="no polars form for expect_table_row_count_to_equal"):
        SuiteChecker("demo", lambda e: [e.ExpectTableRowCountToEqual(value=3)])
