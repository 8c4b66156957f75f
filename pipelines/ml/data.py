"""The ML stage's reads and writes in the lake: the warehouse tables it builds on, its own tables. No Dagster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import polars as pl

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.ml.features import DEFAULT_HORIZON_HOURS, FACT_COLUMNS, WEATHER_COLUMNS, build_features
from pipelines.standardize import WEATHER
from pipelines.warehouse import DIM_AIRPORT, DIM_DATE, DIM_PLANE
from pipelines.warehouse import FACT_FLIGHTS as FACT

FEATURES: Final = "ml/delay_features"
EVALUATIONS: Final = "ml/delay_model_evaluation"
DRIFT_REPORT: Final = "ml/drift_report"
CHARTS: Final = "ml/_charts"


class MissingTableError(LookupError):
    """A table the ML stage reads has not been materialized; the message says which and what to run."""


def require(lake: Lake, rel: str) -> int:
    """The Delta version of a table the stage needs; MissingTableError when it is not there."""
    version = delta.version(lake, rel)
    if version is None:
        group = {"warehouse": "warehouse", "standardized": "standardize"}.get(rel.split("/", 1)[0], "ml")
        raise MissingTableError(
            f"{rel} does not exist in the lake {lake.uri()}: materialize it first "
            f"(tributary run --select 'group:{group}')"
        )
    return version


@dataclass(frozen=True)
class WarehouseVersions:
    fact_flights: int
    dim_plane: int
    dim_airport: int
    dim_date: int
    weather: int


def features_from_warehouse(
    lake: Lake, *, horizon_hours: float = DEFAULT_HORIZON_HOURS
) -> tuple[pl.DataFrame, WarehouseVersions]:
    """The feature table at a horizon, built from the warehouse and the weather record as they stand, and the
    table versions it was read at."""
    versions = WarehouseVersions(*(require(lake, rel) for rel in (FACT, DIM_PLANE, DIM_AIRPORT, DIM_DATE, WEATHER)))
    fact = delta.scan(lake, FACT, version=versions.fact_flights).select(FACT_COLUMNS)
    features = build_features(
        fact,
        weather=delta.scan(lake, WEATHER, version=versions.weather).select(WEATHER_COLUMNS),
        horizon_hours=horizon_hours,
        planes=delta.scan(lake, DIM_PLANE, version=versions.dim_plane).collect(),
        airports=delta.scan(lake, DIM_AIRPORT, version=versions.dim_airport).collect(),
        dates=delta.scan(lake, DIM_DATE, version=versions.dim_date).collect(),
    )
    return features, versions


def read_features(lake: Lake) -> tuple[pl.DataFrame, int]:
    """ml/delay_features at its current version, and that version (what a model run records)."""
    version = require(lake, FEATURES)
    return delta.scan(lake, FEATURES, version=version).collect(), version
