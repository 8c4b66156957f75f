"""Great Expectations over polars frames: failures are named, batches are validated together."""

from __future__ import annotations

import polars as pl

from pipelines.core.quality import BatchValidator, validate


def _suite(e):
    return [e.ExpectColumnValuesToNotBeNull(column="x"), e.ExpectColumnValuesToBeUnique(column="k"),
            e.ExpectColumnValuesToBeBetween(column="x", min_value=0, max_value=100)]


def test_validate_names_what_failed() -> None:
    df = pl.DataFrame({"k": ["a", "b", "b"], "x": [1, None, 300], "wide": [0, 0, 0]})
    report = validate(df, "demo", _suite)
    assert not report.success and report.evaluated == 3
    assert sorted(f.split("(")[0] for f in report.failures) == [
        "expect_column_values_to_be_between", "expect_column_values_to_be_unique", "expect_column_values_to_not_be_null"]
    assert validate(pl.DataFrame({"k": ["a"], "x": [5]}), "demo", _suite).success


def test_batch_validator_sees_across_chunks() -> None:
    checker = BatchValidator("demo", _suite, max_rows=10)
    checker.add(pl.DataFrame({"k": ["a", "b"], "x": [1, 2]}))
    checker.add(pl.DataFrame({"k": ["b", "c"], "x": [3, 4]}))  # "b" again: unique only across chunks
    report = checker.report()
    assert not report.success and report.failures[0].startswith("expect_column_values_to_be_unique(k)")
