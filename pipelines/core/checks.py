"""The Great Expectations suites evaluated in polars: the same expectations, as expressions over a run's rows.

The suites (`pipelines/warehouse/suites.py`) stay the one specification. Great Expectations takes ~8 s to import
and 5.1 s to validate a year of `fact_flights` that polars checks in under 0.1 s, so a run's checks are
evaluated here, chunk by chunk, and the nightly quality job runs Great Expectations itself and keeps its
results (`assets/quality.py`). A suite using an expectation this module does not know fails loudly: add its
polars form here. No Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pipelines.core.quality import QualityReport

SuiteFactory = Callable[[Any], Sequence[Any]]


@dataclass(frozen=True)
class Expectation:
    """One expectation of a suite: Great Expectations' snake-case type and its arguments."""

    type: str
    kwargs: dict[str, Any]

    @property
    def columns(self) -> list[str]:
        value = self.kwargs.get("column") or self.kwargs.get("column_list") or []
        return [value] if isinstance(value, str) else list(value)

    def label(self) -> str:
        return f"{self.type}({', '.join(self.columns)})"


class _Recorder:
    """Stands in for `great_expectations.expectations`: `e.ExpectX(**kwargs)` records the type and arguments."""

    def __getattr__(self, name: str) -> Callable[..., Expectation]:
        snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        return lambda **kwargs: Expectation(snake, kwargs)


def expectations(build: SuiteFactory) -> list[Expectation]:
    """The expectations a suite factory builds, without importing Great Expectations."""
    return list(build(_Recorder()))


def _between(e: Expectation) -> pl.Expr:
    col = pl.col(e.columns[0])
    low, high = e.kwargs.get("min_value"), e.kwargs.get("max_value")
    outside = pl.lit(False)
    if low is not None:
        outside = outside | (col < low)
    if high is not None:
        outside = outside | (col > high)
    return (col.is_not_null() & outside).sum()


_ROW_COUNTS: dict[str, Callable[[Expectation], pl.Expr]] = {
    "expect_column_values_to_not_be_null": lambda e: pl.col(e.columns[0]).null_count(),
    "expect_column_values_to_be_between": _between,
}
"""Expectations decided row by row: the unexpected rows of each chunk add up."""
_IN_SET = "expect_column_values_to_be_in_set"
"""Decided on a chunk's distinct values: a century's 332,200 tail numbers made into a Series (and hashed) for
every month were 43% of the fact table's step; a Python set made once and a month's few thousand distinct
values cost a millisecond."""
_UNIQUE = {"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"}
"""Expectations over the whole run: their keys are kept, as one 64-bit hash a row."""


@dataclass
class SuiteChecker:
    """A suite checked over a run's chunks: unexpected rows counted per chunk, keys kept for uniqueness, one
    report at the end with Great Expectations' names for what failed."""

    suite_name: str
    build: SuiteFactory
    _expectations: list[Expectation] = field(init=False)
    _unexpected: list[int] = field(init=False)
    _keys: dict[int, list[pl.Series]] = field(init=False)
    _sets: dict[int, frozenset] = field(init=False)

    def __post_init__(self) -> None:
        self._expectations = expectations(self.build)
        unknown = sorted({e.type for e in self._expectations} - set(_ROW_COUNTS) - _UNIQUE - {_IN_SET})
        if unknown:
            raise NotImplementedError(f"suite {self.suite_name}: no polars form for {', '.join(unknown)} "
                                      "(add it to pipelines/core/checks.py)")
        self._unexpected = [0] * len(self._expectations)
        self._keys = {}
        self._sets = {i: frozenset(e.kwargs["value_set"]) for i, e in enumerate(self._expectations)
                      if e.type == _IN_SET}

    def add(self, df: pl.DataFrame) -> None:
        for i, members in self._sets.items():
            column = df.get_column(self._expectations[i].columns[0])
            outside = [v for v in column.drop_nulls().unique().to_list() if v not in members]
            if outside:
                self._unexpected[i] += int(column.is_in(pl.Series(outside, dtype=column.dtype)).sum())
        counted = [(i, e) for i, e in enumerate(self._expectations) if e.type in _ROW_COUNTS]
        if counted and df.height:
            row = df.select(_ROW_COUNTS[e.type](e).alias(str(i)) for i, e in counted).row(0)
            for (i, _), n in zip(counted, row, strict=True):
                self._unexpected[i] += int(n or 0)
        for i, e in enumerate(self._expectations):
            if e.type in _UNIQUE:
                # 8 bytes a row whatever the key: a century's string flight ids held as text took gigabytes. A
                # 64-bit collision among 34 M keys has odds of about 3 in 100,000 (it would report one duplicate).
                keys = df.select(e.columns).drop_nulls()
                self._keys.setdefault(i, []).append(keys.select(pl.struct(e.columns).hash()).to_series())

    def report(self) -> QualityReport:
        unexpected = list(self._unexpected)
        for i, parts in self._keys.items():
            keys = pl.concat(parts).drop_nulls() if parts else pl.Series([], dtype=pl.Int64)
            unexpected[i] = int(keys.is_duplicated().sum())
        failures = [f"{e.label()} ({n} unexpected)" for e, n in zip(self._expectations, unexpected, strict=True) if n]
        return QualityReport(suite=self.suite_name, success=not failures, evaluated=len(self._expectations),
                             failures=failures)


def check(df: pl.DataFrame, suite_name: str, build: SuiteFactory) -> QualityReport:
    """A whole (small) frame against a suite, in polars."""
    checker = SuiteChecker(suite_name, build)
    checker.add(df)
    return checker.report()
