"""The delay model's feature table: one row per flight, built only from what is known a declared horizon before
its scheduled departure.

Pure polars, no Dagster and no I/O. The prediction is made at `predict_at = sched_dep_utc - horizon`
(`prediction_horizon_hours`, 3 by default), and every feature is computed from what was known then:

- the schedule as published (route, times, aircraft, the day's and hour's planned departures): taken as published
  `SCHEDULE_LEAD` ahead, an assumption the data cannot check (it carries no publication time, and the tail number
  is the one that flew, so a late aircraft swap is not modelled);
- the origin's weather from the station's hourly record, the newest observation *reported* at or before
  `predict_at` (an observation filed in hour H is reported by H + 1 h, `WEATHER_REPORT_DELAY`), found by an
  as-of join per origin; none older than `WEATHER_MAX_AGE`;
- the outcomes of earlier days: a flight's outcome counts from the later of its arrival (departure + 1 day when
  the destination's time zone is unknown) and the end of its local day, so a rate sees only flights of days before
  the flight's own day, and only those that had landed by `predict_at`. Rates are smoothed towards the overall
  late rate known at the same instant (`PRIOR_WEIGHT` pseudo-flights), so a route flown twice is not 0 or 1.

`AVAILABILITY` declares, next to the features, which column of the table holds the instant each feature's value
was known; `late_features` compares those instants with `predict_at` row by row (the `no_leak` check).
Departure and arrival times, delays, air time and cancellation are measured after the flight leaves and are never
features; the label comes from them and stays apart.

No feature counts flights since the data began (such a count only grows, so it would drift forever). The month and
the year are left out on purpose: the split is by time, so a tree would have to extrapolate November from
January to August. Seasonality reaches the model through weather and the recent rates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Final

import polars as pl

from pipelines.standardize.transforms import WEATHER_MEASURES

KEY_COLUMNS: Final = ("flight_id", "flight_date")
"""Identify a row; never fed to the model."""
LABEL: Final = "is_late"
"""Arrival more than 15 minutes late (null for cancelled and diverted flights: they have no arrival)."""

DEFAULT_HORIZON_HOURS: Final = 3.0
"""How long before the scheduled departure the model predicts, unless configured otherwise."""
SCHEDULE_LEAD: Final = dt.timedelta(days=7)
"""How long before departure the schedule (and the aircraft on it) is taken to be published: an assumption."""
WEATHER_REPORT_DELAY: Final = dt.timedelta(hours=1)
"""An observation of hour H (METAR at about H:51) is in the record by H + 1 h at the latest."""
WEATHER_MAX_AGE: Final = dt.timedelta(hours=6)
"""An observation older than this at `predict_at` is not used: a gap in the record gives missing weather."""
UNKNOWN_ARRIVAL_DELAY: Final = dt.timedelta(days=1)
"""When a flight's arrival instant is unknown (destination time zone unknown), its outcome counts a day after
departure: standardization refuses gate-to-gate times over 24 h, so it had landed by then."""

CATEGORICAL_FEATURES: Final = ("carrier", "origin", "dest", "plane_type", "plane_manufacturer", "plane_engine")
WEATHER_TREND_FEATURES: Final = ("origin_precip_6h", "origin_visib_min_6h", "origin_pressure_change_3h")
"""What the last hours of reports say about the weather coming: rain so far, the worst visibility, the pressure
tendency (a falling barometer announces a front)."""
WEATHER_FEATURES: Final = (*(f"origin_{m}" for m in WEATHER_MEASURES), *WEATHER_TREND_FEATURES)
SCHEDULE_FEATURES: Final = (
    "sched_dep_hour", "sched_dep_minutes", "sched_arr_minutes", "weekday", "is_weekend", "is_holiday",
    "distance", "sched_block_minutes", "dest_lat", "dest_lon", "origin_hour_departures", "origin_day_departures",
)
AIRCRAFT_FEATURES: Final = ("plane_age", "plane_seats", "plane_engines")
HISTORY_FEATURES: Final = (
    "hist_late_rate_carrier", "hist_late_rate_route", "hist_late_rate_origin_hour",
    "hist_late_rate_carrier_origin_hour", "hist_late_rate_tailnum", "hist_late_rate_flight",
    "recent_late_rate_origin_7d", "recent_late_rate_carrier_7d", "recent_late_rate_origin_24h",
)
NUMERIC_FEATURES: Final = (*SCHEDULE_FEATURES, *AIRCRAFT_FEATURES, *WEATHER_FEATURES, *HISTORY_FEATURES)
FEATURES: Final = (*CATEGORICAL_FEATURES, *NUMERIC_FEATURES)
CONTINUOUS_FEATURES: Final = tuple(
    f for f in NUMERIC_FEATURES if f not in ("weekday", "is_weekend", "is_holiday", "sched_dep_hour", "plane_engines")
)
"""Numeric features with many distinct values: the ones a KS test is meaningful for."""

SCHEDULE_KNOWN_AT: Final = "schedule_known_at"
WEATHER_KNOWN_AT: Final = "weather_known_at"
HISTORY_KNOWN_AT: Final = "history_known_at"
AVAILABILITY: Final[Mapping[str, str]] = {
    # sched_dep_utc - SCHEDULE_LEAD: the published schedule, route, calendar and aircraft.
    **{f: SCHEDULE_KNOWN_AT for f in (*CATEGORICAL_FEATURES, *SCHEDULE_FEATURES, *AIRCRAFT_FEATURES)},
    # The reporting instant of the observation the as-of join picked (its hour + WEATHER_REPORT_DELAY).
    **{f: WEATHER_KNOWN_AT for f in WEATHER_FEATURES},
    # The latest instant at which an outcome counted by any of the rates became known (arrival or day end).
    **{f: HISTORY_KNOWN_AT for f in HISTORY_FEATURES},
}
"""Every model input and the column holding the instant its value was known: the declaration `no_leak` checks."""
AVAILABILITY_COLUMNS: Final = (SCHEDULE_KNOWN_AT, WEATHER_KNOWN_AT, HISTORY_KNOWN_AT)
TIMING_COLUMNS: Final = ("sched_dep_utc", "predict_at")
"""When the flight was scheduled to leave and when the prediction is made (`sched_dep_utc - horizon`)."""
KNOWN_AT_SCHEDULING: Final = frozenset(AVAILABILITY)
"""Every column a model may read: those with a declared availability."""

MEASURED_AFTER_DEPARTURE: Final = frozenset({
    "dep_local", "dep_utc", "arr_local", "arr_utc", "dep_delay", "arr_delay", "air_time", "block_minutes",
    "cancelled", "delay_class", LABEL,
})
"""Warehouse columns that only exist once the flight has left (or not): named in the error when one leaks."""

NOT_INPUTS: Final = frozenset((*KEY_COLUMNS, *TIMING_COLUMNS, *AVAILABILITY_COLUMNS, LABEL))
TABLE_COLUMNS: Final = (*KEY_COLUMNS, *TIMING_COLUMNS, *FEATURES, *AVAILABILITY_COLUMNS, LABEL)

PRIOR_WEIGHT: Final = 20.0
"""Pseudo-flights at the overall late rate added to every historical rate (additive smoothing)."""

FACT_COLUMNS: Final = (
    "flight_id", "flight_date", "year", "carrier", "flight", "tailnum", "origin", "dest", "sched_dep_local",
    "sched_arr_local", "sched_dep_utc", "dep_utc", "arr_utc", "distance", "sched_block_minutes", "is_late",
)
"""What the builder reads from warehouse/fact_flights (a projection, so a scan reads no more). Departure and
arrival instants only date the outcomes for the history; they are never features."""
WEATHER_COLUMNS: Final = ("origin", "time_hour", *WEATHER_MEASURES)
"""What the builder reads from standardized/weather."""


class LeakError(ValueError):
    """A column that is not known at the prediction horizon reached the features."""


def assert_no_leak(columns: Iterable[str]) -> None:
    """Raise LeakError naming every model input with no declared availability (not in `AVAILABILITY`).

    Keys, timing, availability columns and the label are allowed in a table but not as model inputs; pass only
    the inputs. This guards by name; `late_features` checks the declared instants row by row.
    """
    leaks = sorted(c for c in columns if c not in KNOWN_AT_SCHEDULING)
    if leaks:
        after = [c for c in leaks if c in MEASURED_AFTER_DEPARTURE]
        why = f" ({', '.join(after)} measured after departure)" if after else ""
        raise LeakError(f"feature(s) with no declared availability: {', '.join(leaks)}{why}")


def model_inputs(columns: Iterable[str]) -> list[str]:
    """The model inputs of a feature table: every column but keys, timing, availability and the label, checked."""
    inputs = [c for c in columns if c not in NOT_INPUTS]
    assert_no_leak(inputs)
    return inputs


def predict_at(horizon_hours: float) -> pl.Expr:
    """The instant of the prediction: the scheduled departure minus the horizon."""
    return pl.col("sched_dep_utc") - pl.duration(microseconds=round(horizon_hours * 3_600_000_000))


def late_features(
    table: pl.DataFrame, horizon_hours: float, *, availability: Mapping[str, str] = AVAILABILITY
) -> dict[str, int]:
    """Per model input, the rows whose value was not known `horizon_hours` before the scheduled departure.

    Empty for a leak-free table. A row counts when the feature has a value and its availability instant is
    missing or later than `sched_dep_utc - horizon` (recomputed here, not read from the table); an input with no
    declared availability, or whose availability column is absent, counts every row.
    """
    cutoff = predict_at(horizon_hours)
    late: dict[str, int] = {}
    for column in checked_inputs(table.columns, availability):
        known_at = availability.get(column)
        if known_at is None or known_at not in table.columns:
            late[column] = table.height
            continue
        bad = table.select(
            (pl.col(column).is_not_null() & (pl.col(known_at).is_null() | (pl.col(known_at) > cutoff))).sum()
        ).item()
        if bad:
            late[column] = int(bad)
    return late


def checked_inputs(columns: Iterable[str], availability: Mapping[str, str] = AVAILABILITY) -> list[str]:
    """The columns `late_features` checks: all but keys, timing, label and the declared availability columns."""
    instants = set(availability.values())
    return [c for c in columns if c not in NOT_INPUTS and c not in instants]


def horizon_of(table: pl.DataFrame) -> float | None:
    """The horizon a feature table was built for, in hours (None for an empty table)."""
    if table.height == 0:
        return None
    gap = table.select((pl.col("sched_dep_utc") - pl.col("predict_at")).dt.total_microseconds().max()).item()
    return gap / 3_600_000_000


def build_features(
    fact: pl.DataFrame | pl.LazyFrame,
    *,
    weather: pl.DataFrame | pl.LazyFrame,
    planes: pl.DataFrame,
    airports: pl.DataFrame,
    dates: pl.DataFrame,
    horizon_hours: float = DEFAULT_HORIZON_HOURS,
) -> pl.DataFrame:
    """The feature table (`TABLE_COLUMNS`) from warehouse/fact_flights, standardized/weather and the plane,
    airport and date dimensions, as known `horizon_hours` before each scheduled departure.

    Every flight is kept, cancelled ones with a null label: their schedule is part of the distributions the
    drift check compares; training drops them.
    """
    if horizon_hours < 0:
        raise ValueError(f"prediction_horizon_hours must be 0 or more, not {horizon_hours}")
    flights = scheduled_flights(fact, airports, horizon_hours)
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

    out = (
        flights.join(planes_lf, on="tailnum", how="left")
        .join(dests, on="dest", how="left")
        .join(calendar, on="flight_date", how="left")
        .join(congestion, on=["origin", "flight_date", "sched_dep_hour"], how="left")
        .join(day_load, on=["origin", "flight_date"], how="left")
        .with_columns(plane_age=(pl.col("year") - pl.col("plane_built")))
    )
    out = with_history(_with_weather(out, weather), flight_outcomes(flights, airports))
    return (
        out.select(
            *KEY_COLUMNS,
            *TIMING_COLUMNS,
            *(pl.col(c).cast(pl.String) for c in CATEGORICAL_FEATURES),
            *(pl.col(c).cast(pl.Float64) for c in NUMERIC_FEATURES),
            *AVAILABILITY_COLUMNS,
            pl.col(LABEL),
        )
        .sort("flight_date", "flight_id")
        .collect()
    )


def scheduled_flights(fact: pl.DataFrame | pl.LazyFrame, airports: pl.DataFrame,
                      horizon_hours: float = DEFAULT_HORIZON_HOURS) -> pl.LazyFrame:
    """The fact's flights with their origin's time zone, schedule times of day, `predict_at` and
    `schedule_known_at`: what the feature table and the online features (pipelines.serving.online) start from."""
    zones = airports.lazy().select(origin=pl.col("faa"), origin_tzone=pl.col("tzone"))
    return (
        fact.lazy().select(FACT_COLUMNS)
        .join(zones, on="origin", how="left")
        .with_columns(
            sched_dep_hour=pl.col("sched_dep_local").dt.hour(),
            sched_dep_minutes=_minutes_of_day("sched_dep_local"),
            sched_arr_minutes=_minutes_of_day("sched_arr_local"),
            predict_at=predict_at(horizon_hours),
            schedule_known_at=pl.col("sched_dep_utc") - SCHEDULE_LEAD,
        )
    )


def flight_outcomes(flights: pl.LazyFrame, airports: pl.DataFrame) -> pl.LazyFrame:
    """The outcomes the historical rates count (`_outcomes`) of `scheduled_flights`."""
    return _outcomes(flights, _zones(airports))


def _zones(airports: pl.DataFrame) -> list[str]:
    return sorted(airports["tzone"].drop_nulls().unique().to_list()) if "tzone" in airports.columns else []


def _day_end(zones: list[str]) -> pl.Expr:
    """The UTC instant the flight's local day ends at its origin (the next local midnight).

    Per named time zone, so a DST change that night is exact; an origin with no known zone uses the offset of its
    scheduled departure."""
    midnight = (pl.col("flight_date") + pl.duration(days=1)).cast(pl.Datetime("us"))
    expr = pl.col("sched_dep_utc") + (midnight - pl.col("sched_dep_local"))
    for zone in zones:
        exact = midnight.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
        expr = pl.when(pl.col("origin_tzone") == zone).then(
            exact.dt.convert_time_zone("UTC").fill_null(expr)).otherwise(expr)
    return expr


def _outcomes(flights: pl.LazyFrame, zones: list[str]) -> pl.LazyFrame:
    """One row per flight with an outcome: its keys, `late` (0/1) and `known_at`, when it may enter the history
    (the later of its arrival and the end of its local day)."""
    landed = pl.coalesce(pl.col("arr_utc"), pl.col("dep_utc") + UNKNOWN_ARRIVAL_DELAY)
    return flights.filter(pl.col(LABEL).is_not_null()).select(
        "carrier", "origin", "dest", "sched_dep_hour", "tailnum", "flight",
        late=pl.col(LABEL).cast(pl.Int64),
        known_at=pl.max_horizontal(landed, _day_end(zones)),
    )


def labelled(features: pl.DataFrame) -> pl.DataFrame:
    """The rows with an outcome (flights that arrived): what a model is trained and scored on."""
    return features.filter(pl.col(LABEL).is_not_null())


def _minutes_of_day(column: str) -> pl.Expr:
    return pl.col(column).dt.hour().cast(pl.Int32) * 60 + pl.col(column).dt.minute().cast(pl.Int32)


RATES: Final[Mapping[str, tuple[str, ...]]] = {
    "hist_late_rate_carrier": ("carrier",),
    "hist_late_rate_route": ("origin", "dest"),
    "hist_late_rate_origin_hour": ("origin", "sched_dep_hour"),
    "hist_late_rate_carrier_origin_hour": ("carrier", "origin", "sched_dep_hour"),
    "hist_late_rate_tailnum": ("tailnum",),
    "hist_late_rate_flight": ("carrier", "flight"),
}
"""Smoothed late rates over every outcome known at `predict_at`, by key."""
RECENT_RATES: Final[Mapping[str, tuple[str, dt.timedelta]]] = {
    "recent_late_rate_origin_7d": ("origin", dt.timedelta(days=7)),
    "recent_late_rate_carrier_7d": ("carrier", dt.timedelta(days=7)),
    "recent_late_rate_origin_24h": ("origin", dt.timedelta(days=1)),
}
"""Late rates over the outcomes that became known in the window just before `predict_at` (null when none)."""
_UTC: Final = pl.Datetime("us", "UTC")


def _with_weather(flights: pl.LazyFrame, weather: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """The newest observation at the origin reported at or before `predict_at` (as-of join, backward)."""
    return flights.sort("predict_at").join_asof(
        weather_observations(weather), left_on="predict_at", right_on=WEATHER_KNOWN_AT, by="origin",
        strategy="backward", tolerance=WEATHER_MAX_AGE, check_sortedness=False,
    ).with_columns(pl.col("predict_at").cast(_UTC))


def weather_observations(weather: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Per origin and report, the weather features (`WEATHER_FEATURES`) and `weather_known_at`, when the report
    was in the record, sorted by it."""
    reports = (
        weather.lazy().select(WEATHER_COLUMNS)
        .filter(pl.col("origin").is_not_null() & pl.col("time_hour").is_not_null())
        .with_columns(pl.col("time_hour").cast(_UTC))
        .unique(["origin", "time_hour"], keep="first", maintain_order=True)
        .sort("origin", "time_hour")
    )
    three_hours_before = reports.select("origin", "time_hour", pressure_3h_before="pressure").sort("time_hour")
    return (
        reports.with_columns(
            # Windows end at the report itself: nothing later than its own reporting instant enters.
            origin_precip_6h=pl.col("precip").rolling_sum_by("time_hour", "6h").over("origin").round(4),
            origin_visib_min_6h=pl.col("visib").rolling_min_by("time_hour", "6h").over("origin"),
            _back=pl.col("time_hour") - dt.timedelta(hours=3),
        )
        .sort("_back")
        .join_asof(three_hours_before.rename({"time_hour": "_then"}), left_on="_back", right_on="_then",
                   by="origin", strategy="backward", tolerance=dt.timedelta(hours=1), check_sortedness=False)
        .select(
            "origin",
            (pl.col("time_hour") + WEATHER_REPORT_DELAY).alias(WEATHER_KNOWN_AT),
            *(pl.col(m).alias(f"origin_{m}") for m in WEATHER_MEASURES),
            "origin_precip_6h", "origin_visib_min_6h",
            origin_pressure_change_3h=pl.col("pressure") - pl.col("pressure_3h_before"),
        )
        .sort(WEATHER_KNOWN_AT)
    )


def _running(outcomes: pl.LazyFrame, keys: tuple[str, ...]) -> pl.LazyFrame:
    """Per key, the outcomes known at each instant an outcome became known: cumulative n and late."""
    counts = outcomes.group_by(*keys, "known_at").agg(n=pl.len().cast(pl.Int64), late=pl.col("late").sum())
    cum = (lambda c: pl.col(c).cum_sum().over(keys)) if keys else (lambda c: pl.col(c).cum_sum())
    return counts.sort("known_at").with_columns(n=cum("n"), late=cum("late"))


def _as_of(frame: pl.LazyFrame, running: pl.LazyFrame, keys: tuple[str, ...], at: pl.Expr, name: str) -> pl.LazyFrame:
    """Add `<name>_n`, `<name>_late` (outcomes known at instant `at`, 0 when none) and `<name>_at` (when the
    newest of them became known)."""
    right = running.select(*keys, pl.col("known_at").alias("_on"), pl.col("known_at").alias(f"{name}_at"),
                           pl.col("n").alias(f"{name}_n"), pl.col("late").alias(f"{name}_late"))
    joined = frame.with_columns(at.alias("_at")).sort("_at").join_asof(
        right, left_on="_at", right_on="_on", by=list(keys) or None, strategy="backward", check_sortedness=False)
    return joined.drop("_at", "_on", strict=False).with_columns(
        pl.col(f"{name}_n").fill_null(0), pl.col(f"{name}_late").fill_null(0))


def with_history(flights: pl.LazyFrame, outcomes: pl.LazyFrame,
                 names: Iterable[str] = HISTORY_FEATURES) -> pl.LazyFrame:
    """The smoothed and the recent late rates (`names` of them, all by default) as known at `predict_at`, and
    `history_known_at`. A key with no outcome gets the overall rate (smoothed) or null (recent)."""
    wanted = set(names)
    at = pl.col("predict_at")
    out = _as_of(flights, _running(outcomes, ()), (), at, "_all")
    overall = pl.when(pl.col("_all_n") > 0).then(pl.col("_all_late") / pl.col("_all_n"))
    known = [pl.col("_all_at")]
    for name, keys in RATES.items():
        if name not in wanted:
            continue
        out = _as_of(out, _running(outcomes, keys), keys, at, f"_{name}")
        out = out.with_columns(((pl.col(f"_{name}_late") + PRIOR_WEIGHT * overall)
                                / (pl.col(f"_{name}_n") + PRIOR_WEIGHT)).alias(name))
        known.append(pl.col(f"_{name}_at"))
    for name, (key, window) in RECENT_RATES.items():
        if name not in wanted:
            continue
        running = _running(outcomes, (key,))
        out = _as_of(out, running, (key,), at, f"_{name}")
        out = _as_of(out, running, (key,), at - window, f"_{name}_start")
        n = pl.col(f"_{name}_n") - pl.col(f"_{name}_start_n")
        late = pl.col(f"_{name}_late") - pl.col(f"_{name}_start_late")
        out = out.with_columns(pl.when(n > 0).then(late / n).alias(name))
        known.append(pl.col(f"_{name}_at"))
    return out.with_columns(pl.max_horizontal(known).alias(HISTORY_KNOWN_AT))


def changed_by_later_outcomes(
    fact: pl.DataFrame,
    *,
    weather: pl.DataFrame,
    planes: pl.DataFrame,
    airports: pl.DataFrame,
    dates: pl.DataFrame,
    day: dt.date,
    horizon_hours: float = DEFAULT_HORIZON_HOURS,
) -> list[str]:
    """The features of the flights of `day` that change when every outcome from `day` on is flipped.

    Empty for a leak-free builder: what happened on the day and after cannot move what was known before it.
    """
    flipped = fact.with_columns(
        pl.when(pl.col("flight_date") >= day).then(~pl.col(LABEL)).otherwise(pl.col(LABEL)).alias(LABEL)
    )
    before, after = (
        build_features(frame, weather=weather, planes=planes, airports=airports, dates=dates,
                       horizon_hours=horizon_hours)
        .filter(pl.col("flight_date") == day)
        .sort("flight_id")
        for frame in (fact, flipped)
    )
    return [c for c in FEATURES if not before[c].equals(after[c])]
