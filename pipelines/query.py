"""SQL over the lake's Delta tables by their asset names, with polars' SQL engine. No Dagster.

Names: warehouse tables by their own name (`fact_flights`, `dim_airport`, ...), the other zones prefixed
with the zone (`standardized_flights`, `quarantine_flights`, `analytics_telemetry_windows`). Polars reads Delta
natively, so nothing is downloaded at run time (DuckDB would fetch its delta extension).
"""

from __future__ import annotations

import re

import polars as pl

from pipelines import delta
from pipelines.lake import Lake

ZONES = ("warehouse", "standardized", "quarantine", "analytics", "ml", "serving", "edge")


class QueryError(ValueError):
    """A query that cannot run; the message says why in one line."""


def catalog(lake: Lake) -> dict[str, str]:
    """Every Delta table in the lake: SQL name -> lake path."""
    names: dict[str, str] = {}
    for zone in ZONES:
        for table in lake.list_dirs(zone):
            if lake.exists(f"{zone}/{table}/_delta_log"):
                names[table if zone == "warehouse" else f"{zone}_{table}"] = f"{zone}/{table}"
    return names


def run_sql(lake: Lake, sql: str) -> pl.DataFrame:
    """Run one SQL query; only the tables it names are opened."""
    tables = catalog(lake)
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql))
    used = {name: rel for name, rel in tables.items() if name in words}
    if not used:
        known = ", ".join(sorted(tables)) or "none yet: run `tributary run` first"
        raise QueryError(f"the query names no known table (tables: {known})")
    ctx = pl.SQLContext({name: delta.scan(lake, rel) for name, rel in used.items()})
    try:
        return ctx.execute(sql, eager=True)
    except (pl.exceptions.PolarsError, ValueError) as exc:  # SQL parse, unknown column, type errors
        raise QueryError(f"SQL error: {str(exc).strip().splitlines()[0]}") from None


def render(df: pl.DataFrame, fmt: str) -> str:
    """The result as a table for people, or as CSV or JSON (an array of records) for programs."""
    if fmt == "csv":
        return df.write_csv()
    if fmt == "json":
        return df.write_json()
    with pl.Config(tbl_rows=100, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=False):
        return str(df)
