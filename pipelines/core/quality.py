"""Data quality with Great Expectations: run a suite over a polars frame and say what failed. No Dagster.

Great Expectations takes a few seconds to import, so it is imported when a suite first runs, not when the
definitions load.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

SuiteFactory = Callable[[Any], Sequence[Any]]
"""Builds a suite's expectations from the `great_expectations.expectations` module."""


@dataclass(frozen=True)
class QualityReport:
    suite: str
    success: bool
    evaluated: int
    failures: list[str] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    """One row per expectation: its type, columns, success, unexpected count and share (what the nightly job keeps)."""

    def summary(self) -> str:
        if self.success:
            return f"{self.suite}: all {self.evaluated} expectations met"
        return f"{self.suite}: {len(self.failures)} of {self.evaluated} expectations failed: " + "; ".join(self.failures)


@functools.cache
def _context() -> Any:
    import great_expectations as gx  # noqa: PLC0415 - start-up: great_expectations ~8 s
    from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: PLC0415 - start-up: great_expectations ~8 s

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _columns(expectations: Sequence[Any]) -> list[str]:
    names: list[str] = []
    for expectation in expectations:
        for key in ("column", "column_list", "column_A", "column_B"):
            value = getattr(expectation, key, None)
            for name in [value] if isinstance(value, str) else value or []:
                if name not in names:
                    names.append(name)
    return names


def validate(df: pl.DataFrame, suite_name: str, build: SuiteFactory) -> QualityReport:
    """Validate `df` against the expectations `build(gx.expectations)` returns.

    Only the columns the suite names are handed to Great Expectations: converting a wide frame to pandas
    cost ten times the validation itself.
    """
    import great_expectations as gx  # noqa: PLC0415 - start-up: great_expectations ~8 s

    expectations = list(build(gx.expectations))
    df = df.select([c for c in _columns(expectations) if c in df.columns])
    context = _context()
    source = context.data_sources.add_or_update_pandas(f"{suite_name}_source")
    asset = source.add_dataframe_asset(f"{suite_name}_{id(df)}")
    try:
        batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(
            batch_parameters={"dataframe": df.to_pandas(use_pyarrow_extension_array=True)}
        )
        suite = gx.ExpectationSuite(name=suite_name, expectations=expectations)
        result = batch.validate(suite)
    finally:
        source.delete_asset(asset.name)  # the context lives as long as the process: keep it empty
    failures, rows = [], []
    for item in result.results:
        config = item.expectation_config
        column = config.kwargs.get("column") or config.kwargs.get("column_list") or ""
        unexpected = item.result.get("unexpected_count") if item.result else None
        rows.append({"expectation": config.type, "columns": str(column), "success": bool(item.success),
                     "unexpected_count": unexpected, "unexpected_percent": (item.result or {}).get("unexpected_percent"),
                     "rows_checked": df.height})
        if not item.success:
            detail = f" ({unexpected} unexpected)" if unexpected else ""
            failures.append(f"{config.type}({column}){detail}")
    return QualityReport(suite=suite_name, success=bool(result.success), evaluated=len(result.results), failures=failures,
                         results=rows)


def results_frame(report: QualityReport, *, table: str, run_id: str, checked_at: dt.datetime) -> pl.DataFrame:
    """A suite's full results as rows of the lake's `quality/expectation_results` table."""
    schema = {"expectation": pl.String, "columns": pl.String, "success": pl.Boolean, "unexpected_count": pl.Int64,
              "unexpected_percent": pl.Float64, "rows_checked": pl.Int64}
    return pl.DataFrame(report.results, schema=schema).with_columns(
        pl.lit(run_id).alias("run_id"), pl.lit(checked_at).alias("checked_at"), pl.lit(table).alias("lake_table"),
        pl.lit(report.suite).alias("suite"),
    )


class BatchValidator:
    """Validate a run's output once, not once per chunk: chunks accumulate (only the suite's columns) and are
    validated together, in batches of at most `max_rows` so a long backfill does not hold the world."""

    def __init__(self, suite_name: str, build: SuiteFactory, *, max_rows: int = 2_000_000) -> None:
        self.suite_name, self.build, self.max_rows = suite_name, build, max_rows
        self._columns: list[str] | None = None
        self._pending: list[pl.DataFrame] = []
        self._reports: list[QualityReport] = []

    def add(self, df: pl.DataFrame) -> None:
        if self._columns is None:
            import great_expectations as gx  # noqa: PLC0415 - start-up: great_expectations ~8 s

            self._columns = [c for c in _columns(list(self.build(gx.expectations))) if c in df.columns]
        self._pending.append(df.select(self._columns))
        if sum(f.height for f in self._pending) >= self.max_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._reports.append(validate(pl.concat(self._pending), self.suite_name, self.build))
            self._pending = []

    def report(self) -> QualityReport:
        self._flush()
        reports = self._reports
        return QualityReport(
            suite=self.suite_name,
            success=all(r.success for r in reports),
            evaluated=max((r.evaluated for r in reports), default=0),
            failures=[f for r in reports for f in r.failures],
        )
