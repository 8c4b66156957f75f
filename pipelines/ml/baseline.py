"""The baseline to beat: the training period's late rate by carrier × origin × scheduled hour.

A rate table, not a model: a cell with few flights backs off to carrier × origin, then to the carrier, then to
the overall rate (additive smoothing at each level), so every holdout flight gets a probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from pipelines.ml.features import LABEL

LEVELS: Final = (["carrier", "origin", "sched_dep_hour"], ["carrier", "origin"], ["carrier"])
SMOOTHING: Final = 20.0
"""Pseudo-flights at the next coarser level's rate added to each cell."""


@dataclass(frozen=True)
class Baseline:
    overall: float
    tables: tuple[pl.DataFrame, ...]
    """One rate table per level of `LEVELS`, finest first."""

    def predict(self, features: pl.DataFrame) -> np.ndarray:
        """P(late) for each row of a feature table."""
        frame = features.select(*dict.fromkeys(c for level in LEVELS for c in level))
        rate: pl.Expr = pl.lit(self.overall)
        for level, table in zip(reversed(LEVELS), reversed(self.tables), strict=True):
            frame = frame.join(table, on=level, how="left", nulls_equal=True, maintain_order="left")
            name = _name(level)
            rate = (pl.col(f"{name}_late").fill_null(0) + SMOOTHING * rate) / (
                pl.col(f"{name}_n").fill_null(0) + SMOOTHING
            )
        return frame.select(rate.alias("p_late")).to_series().to_numpy()


def _name(level: list[str]) -> str:
    return "_".join(level)


def fit_baseline(train: pl.DataFrame) -> Baseline:
    """The rate tables of the labelled training flights."""
    labelled = train.filter(pl.col(LABEL).is_not_null())
    if labelled.height == 0:
        raise ValueError("cannot fit the baseline: no labelled flight in the training window")
    tables = tuple(
        labelled.group_by(level).agg(
            pl.len().cast(pl.Float64).alias(f"{_name(level)}_n"),
            pl.col(LABEL).sum().cast(pl.Float64).alias(f"{_name(level)}_late"),
        )
        for level in LEVELS
    )
    return Baseline(overall=float(labelled[LABEL].mean()), tables=tables)
