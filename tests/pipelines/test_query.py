"""`tributary query` underneath: SQL over Delta tables by their asset names, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pipelines import delta
from pipelines.lake import Lake
from pipelines.query import QueryError, catalog, render, run_sql


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    delta.overwrite(lake, "warehouse/dim_carrier", pl.DataFrame({"carrier": ["UA", "AA"], "name": ["United", "American"]}))
    delta.overwrite(lake, "standardized/flights", pl.DataFrame({"carrier": ["UA", "UA", "AA"], "arr_delay": [5, 25, -3]}))
    return lake


def test_catalog_names_tables_by_asset_name(lake: Lake) -> None:
    assert catalog(lake) == {"dim_carrier": "warehouse/dim_carrier", "standardized_flights": "standardized/flights"}


def test_sql_joins_across_zones(lake: Lake) -> None:
    out = run_sql(lake, "SELECT d.name, count(*) AS n, avg(f.arr_delay) AS mean_delay FROM standardized_flights f "
                        "JOIN dim_carrier d ON f.carrier = d.carrier GROUP BY d.name ORDER BY d.name")
    assert out.rows() == [("American", 1, -3.0), ("United", 2, 15.0)]


@pytest.mark.parametrize(
    ("sql", "message"),
    [("SELEC 1 FROM dim_carrier", "SQL error"), ("SELECT nope FROM dim_carrier", "SQL error"),
     ("SELECT * FROM fact_nothing", "names no known table")],
)
def test_errors_are_one_line(lake: Lake, sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message) as info:
        run_sql(lake, sql)
    assert "\n" not in str(info.value)


def test_render_formats(lake: Lake) -> None:
    df = run_sql(lake, "SELECT carrier FROM dim_carrier ORDER BY carrier")
    assert render(df, "csv") == "carrier\nAA\nUA\n"
    assert json.loads(render(df, "json")) == [{"carrier": "AA"}, {"carrier": "UA"}]
    assert "carrier" in render(df, "table")
