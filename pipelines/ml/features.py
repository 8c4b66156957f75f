"""The delay model's feature table: one row per flight, built only from what is known when it is scheduled.

Pure polars, no Dagster and no I/O. The rule that keeps the model honest is explicit: `KNOWN_AT_SCHEDULING`
lists every column a model may read, and `assert_no_leak` refuses any other. Departure and arrival times,
delays, air time and cancellation are measured after the flight leaves, so they are never features; the
label comes from them and stays apart.

Historical rates use outcomes of *earlier days only*: a flight's rates count flights with a flight date
strictly before its own, so no flight of the same day (which had not happened when it was scheduled) and
no later one leaks into them. Rates are smoothed towards the overall late rate of the same earlier days
(`PRIOR_WEIGHT` pseudo-flights), so a route flown twice does not get a rate of 0 or 1.

No feature counts flights since the data began (such a count only grows, so it would drift forever).
The month and the year are left out on purpose: the split is by time, so a tree would have to extrapolate
November from January to August. Seasonality reaches the model through weather and the recent rates.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import polars as pl

KEY_COLUMNS: Final = ("flight_id", "flight_date")
"""Identify a row; never fed to the model."""
LABEL: Final = "is_late"
"""Arrival more than 15 minutes late (null for cancelled and diverted flights: they have no arrival)."""

CATEGORICAL_FEATURES: Final = ("carrier", "origin", "dest", "plane_type", "plane_manufacturer", "plane_engine")
WEATHER_FEATURES: Final = (
    "origin_temp", "origin_dewp", "origin_humid", "origin_wind_dir", "origin_wind_speed", "origin_wind_gust",
    "origin_precip", "origin_pressure", "origin_visib",
)
SCHEDULE_FEATURES: Final = (
    "sched_dep_hour", "sched_dep_minutes", "sched_arr_minutes", "weekday", "is_weekend", "is_holiday",
    "distance", "sched_block_minutes", "dest_lat", "dest_lon", "origin_hour_departures", "origin_day_departures",
)
AIRCRAFT_FEATURES: Final = ("plane_age", "plane_seats", "plane_engines")
HISTORY_FEATURES: Final = (
    "hist_late_rate_carrier", "hist_late_rate_route", "hist_late_rate_origin_hour",
    "hist_late_rate_carrier_origin_hour", "hist_late_rate_tailnum", "hist_late_rate_flight",
    "recent_late_rate_origin_7d", "recent_late_rate_carrier_7d", "late_rate_origin_prev_day",
)
NUMERIC_FEATURES: Final = (*SCHEDULE_FEATURES, *AIRCRAFT_FEATURES, *WEATHER_FEATURES, *HISTORY_FEATURES)
FEATURES: Final = (*CATEGORICAL_FEATURES, *NUMERIC_FEATURES)
CONTINUOUS_FEATURES: Final = tuple(
    f for f in NUMERIC_FEATURES if f not in ("weekday", "is_weekend", "is_holiday", "sched_dep_hour", "plane_engines")
)
"""Numeric features with many distinct values: the ones a KS test is meaningful for."""

KNOWN_AT_SCHEDULING: Final = frozenset(FEATURES)
"""Every column a model may read: fixed by the schedule, the aircraft, the forecast weather of the scheduled
hour at the origin, or the outcomes of earlier days."""

MEASURED_AFTER_DEPARTURE: Final = frozenset({
    "dep_local", "dep_utc", "arr_local", "arr_utc", "dep_delay", "arr_delay", "air_time", "block_minutes",
    "cancelled", "delay_class", LABEL,
})
"""Warehouse columns that only exist once the flight has left (or not): named in the error when one leaks."""

TABLE_COLUMNS: Final = (*KEY_COLUMNS, *FEATURES, LABEL)

PRIOR_WEIGHT: Final = 20.0
"""Pseudo-flights at the overall late rate added to every historical rate (additive smoothing)."""

FACT_COLUMNS: Final = (
    "flight_id", "flight_date", "year", "carrier", "flight", "tailnum", "origin", "dest", "sched_dep_local",
    "sched_arr_local", "distance", "sched_block_minutes", "is_late", *WEATHER_FEATURES,
)
"""What the builder reads from warehouse/fact_flights (a projection, so a scan reads no more)."""


class LeakError(ValueError):
    """A column that is not known when a flight is scheduled reached the features."""


def assert_no_leak(columns: Iterable[str]) -> None:
    """Raise LeakError naming every model input that is not in `KNOWN_AT_SCHEDULING`.

    Keys and the label are allowed in a table but not as model inputs; pass only the inputs.
    """
    leaks = sorted(c for c in columns if c not in KNOWN_AT_SCHEDULING)
    if leaks:
        after = [c for c in leaks if c in MEASURED_AFTER_DEPARTURE]
        why = f" ({', '.join(after)} measured after departure)" if after else ""
        raise LeakError(f"feature(s) not known at scheduling time: {', '.join(leaks)}{why}")


def model_inputs(columns: Iterable[str]) -> list[str]:
    """The model inputs of a feature table: every column but the keys and the label, checked for leaks."""
    inputs = [c for c in columns if c not in KEY_COLUMNS and c != LABEL]
    assert_no_leak(inputs)
    return inputs


def build_features(
    fact: pl.DataFrame | pl.LazyFrame,
    *,
    planes: pl.DataFrame,
    airports: pl.DataFrame,
    dates: pl.DataFrame,
) -> pl.DataFrame:
    """The feature table (`TABLE_COLUMNS`) from warehouse/fact_flights and the plane, airport and date dimensions.

    Every flight is kept, cancelled ones with a null label: their schedule is part of the distributions the
    drift check compares; training drops them.
    """
    flights = fact.lazy().select(FACT_COLUMNS).with_columns(
        sched_dep_hour=pl.col("sched_dep_local").dt.hour(),
        sched_dep_minutes=_minutes_of_day("sched_dep_local"),
        sched_arr_minutes=_minutes_of_day("sched_arr_local"),
    )
    planes_lf = planes.lazy().select(
        "tailnum",
        plane_built=pl.col("year"),
        plane_type=pl.col("type"),
        plane_manufacturer=pl.col("manufacturer"),
        plane_engine=pl.col("engine"),
        plane_seats=pl.col("seats"),
        plane_engines=pl.col("engines"),
    )
    dests = airports.lazy().select(dest=pl.col("faa"), dest_lat=pl.col("lat"), dest_lon=pl.col("lon"))
    calendar = dates.lazy().select(flight_date=pl.col("date"), weekday="weekday", is_weekend="is_weekend",
                                   is_holiday="is_holiday")
    congestion = flights.group_by("origin", "flight_date", "sched_dep_hour").agg(origin_hour_departures=pl.len())
    day_load = flights.group_by("origin", "flight_date").agg(origin_day_departures=pl.len())

    history = [
        _prior_rate(flights, ["carrier"], "hist_late_rate_carrier"),
        _prior_rate(flights, ["origin", "dest"], "hist_late_rate_route"),
        _prior_rate(flights, ["origin", "sched_dep_hour"], "hist_late_rate_origin_hour"),
        _prior_rate(flights, ["carrier", "origin", "sched_dep_hour"], "hist_late_rate_carrier_origin_hour"),
        _prior_rate(flights, ["tailnum"], "hist_late_rate_tailnum"),
        _prior_rate(flights, ["carrier", "flight"], "hist_late_rate_flight"),
        _recent_rate(flights, "origin", "7d", "recent_late_rate_origin_7d"),
        _recent_rate(flights, "carrier", "7d", "recent_late_rate_carrier_7d"),
        _recent_rate(flights, "origin", "1d", "late_rate_origin_prev_day"),
    ]
    out = (
        flights.join(planes_lf, on="tailnum", how="left")
        .join(dests, on="dest", how="left")
        .join(calendar, on="flight_date", how="left")
        .join(congestion, on=["origin", "flight_date", "sched_dep_hour"], how="left")
        .join(day_load, on=["origin", "flight_date"], how="left")
        .with_columns(plane_age=(pl.col("year") - pl.col("plane_built")))
    )
    for keys, frame in history:
        out = out.join(frame, on=[*keys, "flight_date"], how="left", nulls_equal=True)
    return (
        out.select(
            *KEY_COLUMNS,
            *(pl.col(c).cast(pl.String) for c in CATEGORICAL_FEATURES),
            *(pl.col(c).cast(pl.Float64) for c in NUMERIC_FEATURES),
            pl.col(LABEL),
        )
        .sort("flight_date", "flight_id")
        .collect()
    )


def labelled(features: pl.DataFrame) -> pl.DataFrame:
    """The rows with an outcome (flights that arrived): what a model is trained and scored on."""
    return features.filter(pl.col(LABEL).is_not_null())


def _minutes_of_day(column: str) -> pl.Expr:
    return pl.col(column).dt.hour().cast(pl.Int32) * 60 + pl.col(column).dt.minute().cast(pl.Int32)


def _daily(flights: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """Per key and day: flights with an outcome and late ones among them."""
    return flights.group_by(*keys, "flight_date").agg(
        n=pl.col(LABEL).count().cast(pl.Int64), late=pl.col(LABEL).sum().cast(pl.Int64)
    )


def _overall_prior(flights: pl.LazyFrame) -> pl.LazyFrame:
    """The late rate of all flights of the days before each day (null on the first day)."""
    daily = _daily(flights, []).sort("flight_date")
    return daily.select("flight_date", overall=pl.when(_earlier("n") > 0).then(_earlier("late") / _earlier("n")))


def _earlier(column: str, keys: list[str] | None = None) -> pl.Expr:
    """The sum of a daily count over the earlier days (rows sorted by day): integers, so exact."""
    total = pl.col(column).cum_sum().shift(1, fill_value=0)
    return (total.over(keys) if keys else total).cast(pl.Float64)


def _prior_rate(flights: pl.LazyFrame, keys: list[str], name: str) -> tuple[list[str], pl.LazyFrame]:
    """The smoothed late rate of each key over the days strictly before each day it flies."""
    daily = (
        _daily(flights, keys)
        .join(_overall_prior(flights), on="flight_date", how="left")
        .sort(*keys, "flight_date")  # after the join, which does not keep row order
    )
    rate = (_earlier("late", keys) + PRIOR_WEIGHT * pl.col("overall")) / (_earlier("n", keys) + PRIOR_WEIGHT)
    frame = daily.select(*keys, "flight_date", rate.alias(name))
    return keys, frame


def _recent_rate(flights: pl.LazyFrame, key: str, period: str, name: str) -> tuple[list[str], pl.LazyFrame]:
    """The late rate of a key over the `period` of days just before each day (null when it had no flight)."""
    daily = _daily(flights, [key]).sort(key, "flight_date")
    n = pl.col("n").rolling_sum_by("flight_date", window_size=period, closed="left").over(key)
    late = pl.col("late").rolling_sum_by("flight_date", window_size=period, closed="left").over(key)
    frame = daily.select(key, "flight_date", pl.when(n > 0).then(late / n).alias(name))
    return [key], frame


def changed_by_later_outcomes(
    fact: pl.DataFrame,
    *,
    planes: pl.DataFrame,
    airports: pl.DataFrame,
    dates: pl.DataFrame,
    day,
) -> list[str]:
    """The features of the flights of `day` that change when every outcome from `day` on is flipped.

    Empty for a leak-free builder: what happened on the day and after cannot move what was known before it.
    """
    flipped = fact.with_columns(
        pl.when(pl.col("flight_date") >= day).then(~pl.col(LABEL)).otherwise(pl.col(LABEL)).alias(LABEL)
    )
    before, after = (
        build_features(frame, planes=planes, airports=airports, dates=dates)
        .filter(pl.col("flight_date") == day)
        .sort("flight_id")
        for frame in (fact, flipped)
    )
    return [c for c in FEATURES if not before[c].equals(after[c])]
