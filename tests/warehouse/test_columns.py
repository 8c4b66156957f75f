"""Every column of every warehouse table has a description, and the catalog's column schema carries it."""

from __future__ import annotations

import polars as pl
import pytest

from assets.common import column_schema
from pipelines.warehouse import (CARRIER_MONTHLY_KPIS, DIM_AIRPORT, DIM_CARRIER, DIM_DATE, DIM_PLANE, FACT_FLIGHTS,
                                 ROUTE_DAILY_KPIS, star)
from pipelines.warehouse.columns import COLUMNS, descriptions


def _fact() -> pl.LazyFrame:
    return pl.LazyFrame(schema={c: pl.Int32 for c in star.FACT_FLIGHTS_COLUMNS}).with_columns(
        pl.col("cancelled", "is_late").cast(pl.Boolean), pl.col("delay_class").cast(pl.String))


TABLES = {
    FACT_FLIGHTS: list(star.FACT_FLIGHTS_COLUMNS),
    DIM_AIRPORT: list(star.AIRPORT_DIM_COLUMNS),
    DIM_PLANE: list(star.PLANE_DIM_COLUMNS),
    DIM_CARRIER: list(star.CARRIER_DIM_COLUMNS),
    DIM_DATE: star.dim_date("2013-01-01", "2013-01-02").columns,
    ROUTE_DAILY_KPIS: star.route_daily_kpis(_fact()).collect_schema().names(),
    CARRIER_MONTHLY_KPIS: star.carrier_monthly_kpis(_fact()).collect_schema().names(),
}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_column_is_described(table: str) -> None:
    assert set(COLUMNS[table]) == set(TABLES[table])  # a new column needs its description
    schema = column_schema({name: pl.String for name in reversed(TABLES[table])})
    assert all(c.description for c in schema.columns), table
    assert {c.name: c.description for c in schema.columns} == COLUMNS[table]


def test_meanings_follow_the_table_and_other_tables_get_none() -> None:
    assert "manufacture" in descriptions(TABLES[DIM_PLANE])["year"]
    assert "manufacture" not in descriptions(TABLES[FACT_FLIGHTS])["year"]
    assert descriptions(["origin", "time_hour", "temp"]) == {}
    assert [c.description for c in column_schema({"origin": pl.String}).columns] == [None]
