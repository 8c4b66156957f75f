"""The time split: train on January–August, validate on September–October, hold out November–December.

By time, not at random: the model is used on flights after the ones it learnt from, and a random split would
let the historical-rate features of a holdout day sit beside training rows of the same day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl

from pipelines.ml.features import LABEL


class EmptyWindowError(ValueError):
    """A part of the split has no labelled flight (too little data, or a wrong date range)."""


@dataclass(frozen=True)
class TimeSplit:
    """Inclusive date windows of the three parts."""

    train: tuple[dt.date, dt.date]
    validate: tuple[dt.date, dt.date]
    holdout: tuple[dt.date, dt.date]

    @classmethod
    def for_year(cls, year: int, *, first: dt.date | None = None) -> TimeSplit:
        """January–August (from `first` when the data starts earlier), September–October, November–December."""
        return cls(
            train=(first or dt.date(year, 1, 1), dt.date(year, 8, 31)),
            validate=(dt.date(year, 9, 1), dt.date(year, 10, 31)),
            holdout=(dt.date(year, 11, 1), dt.date(year, 12, 31)),
        )

    @classmethod
    def latest(cls, dates: pl.Series) -> TimeSplit:
        """The split of the last year in `dates`; earlier years (a seed at --scale N) all go to training."""
        if dates.len() == 0 or dates.null_count() == dates.len():
            raise EmptyWindowError("no flight to split: the feature table is empty")
        return cls.for_year(dates.max().year, first=dates.min())

    def as_params(self) -> dict[str, str]:
        return {f"{part}_{end}": str(day) for part in ("train", "validate", "holdout")
                for end, day in zip(("start", "end"), getattr(self, part), strict=True)}


@dataclass(frozen=True)
class Parts:
    train: pl.DataFrame
    validate: pl.DataFrame
    holdout: pl.DataFrame


def window(features: pl.DataFrame, span: tuple[dt.date, dt.date], *, name: str) -> pl.DataFrame:
    """The labelled flights of one window in a fixed order; EmptyWindowError when there is none.

    Sorted by (flight_date, flight_id): a Delta scan does not promise row order, and both the seeded sample
    and XGBoost's tree building follow it, so the same data in another order gave another model."""
    part = (features.filter(pl.col("flight_date").is_between(*span) & pl.col(LABEL).is_not_null())
            .sort("flight_date", "flight_id"))
    if part.height == 0:
        raise EmptyWindowError(f"no labelled flight in the {name} window {span[0]}..{span[1]}")
    return part


def missing_windows(features: pl.DataFrame, time_split: TimeSplit) -> list[str]:
    """The windows with no labelled flight, as "validate 2013-09-01..2013-10-31" (empty when all three have)."""
    labelled = features.filter(pl.col(LABEL).is_not_null())
    gaps = []
    for name in ("train", "validate", "holdout"):
        first, last = getattr(time_split, name)
        if labelled.filter(pl.col("flight_date").is_between(first, last)).height == 0:
            gaps.append(f"{name} {first}..{last}")
    return gaps


def split(features: pl.DataFrame, time_split: TimeSplit | None = None) -> Parts:
    """The labelled flights of each window (cancelled and diverted flights have no label and are left out)."""
    time_split = time_split or TimeSplit.latest(features["flight_date"])
    return Parts(**{name: window(features, getattr(time_split, name), name=name)
                    for name in ("train", "validate", "holdout")})
