"""Online features: the endpoint builds a flight's model inputs itself from its key (issue 20.1).

`build_online_features` (pure polars, no Dagster) turns the warehouse and the weather record into one table of
what the per-request path needs, computed by the offline builder's own functions (pipelines.ml.features), as
known at an instant `as_of` (by default the latest instant anything in the data was known):

- `rate`: every historical and recent late rate per key, as `with_history` computes them for a flight whose
  prediction is made at `as_of`; a row with null keys per rate holds what an unknown key gets (the smoothed rates
  fall back to the overall rate, the recent ones to null), computed by the same code for a key with no outcome;
- `weather`: per origin, its reports of the `WEATHER_KEEP` up to its latest at `as_of`, with their weather features
  (`weather_observations`), so a request picks the newest reported at or before its own `predict_at`, none
  older than `WEATHER_MAX_AGE`, as the offline as-of join does;
- `schedule`, `hour`, `day`, `route`: the published schedule of the days around `as_of` (up to
  `SCHEDULE_LEAD` ahead), its departures per origin and hour and per origin and day, and per route the latest
  distance and scheduled block time (for a flight not in the schedule);
- `plane`, `airport`, `date`: the dimensions; `meta`: `as_of` and the horizon.

`OnlineFeatures` holds it in dicts, so a request costs lookups and a vector: no polars per request. A field that
is not found falls back as the offline table has it (null, or the overall rate) and is named in the answer.
The online rates are those known at `as_of`: the same as offline for a flight predicted at `as_of`, older for
one predicted later (the table is as fresh as its last refresh, `features_as_of` in the answer).
"""

from __future__ import annotations

import bisect
import datetime as dt
import os
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.ml.data import FEATURES as FEATURE_TABLE, FACT, WarehouseVersions, require
from pipelines.ml.features import (
    DEFAULT_HORIZON_HOURS, FACT_COLUMNS, FEATURES, HISTORY_FEATURES, RATES, RECENT_RATES, SCHEDULE_LEAD,
    WEATHER_COLUMNS, WEATHER_FEATURES, WEATHER_KNOWN_AT, WEATHER_MAX_AGE, flight_outcomes, horizon_of,
    scheduled_flights, weather_observations, with_history,
)
from pipelines.standardize import WEATHER
from pipelines.warehouse import DIM_AIRPORT, DIM_DATE, DIM_PLANE

TABLE: Final = "serving/online_features"
"""The table of record in the lake. The local service reads its copy `ONLINE_FILE` beside the endpoint config; a
SageMaker container reads the table itself (`DeltaSource`, its location in the container's environment)."""
ONLINE_FILE: Final = "online_features.parquet"
WEATHER_KEEP: Final = dt.timedelta(days=2)
"""Reports kept per origin before its latest: a request predicted up to this long before it still finds its
weather (one predicted over WEATHER_MAX_AGE after it gets none, and is told)."""
_UTC: Final = pl.Datetime("us", "UTC")
_BUILT: Final = frozenset(FEATURES)
_SENTINEL: Final = {"carrier": "\x00", "origin": "\x00", "dest": "\x00", "tailnum": "\x00", "flight": -1,
                    "sched_dep_hour": -1}
"""Key values no flight has: the rate a key with no outcome gets, computed by the same code as the others."""
_KEY_TYPES: Final = {"carrier": pl.String, "origin": pl.String, "dest": pl.String, "tailnum": pl.String,
                     "flight": pl.Int32, "sched_dep_hour": pl.Int8}


class Flight(NamedTuple):
    """A flight key as the caller sends it (checked by parsing.py). `sched_dep` is local at the origin unless it
    carries a UTC offset."""

    carrier: str
    flight: int
    origin: str
    dest: str
    sched_dep: dt.datetime
    tailnum: str | None


def _rate_keys(name: str) -> tuple[str, ...]:
    return RATES[name] if name in RATES else (RECENT_RATES[name][0],)


def build_online_features(
    fact: pl.DataFrame | pl.LazyFrame,
    *,
    weather: pl.DataFrame | pl.LazyFrame,
    planes: pl.DataFrame,
    airports: pl.DataFrame,
    dates: pl.DataFrame,
    horizon_hours: float = DEFAULT_HORIZON_HOURS,
    as_of: dt.datetime | None = None,
) -> pl.DataFrame:
    """The online feature table (see the module doc), as known at `as_of` (UTC)."""
    flights = scheduled_flights(fact, airports, horizon_hours)
    outcomes = flight_outcomes(flights, airports)
    observations = weather_observations(weather)
    if as_of is None:
        latest = [outcomes.select(pl.col("known_at").max()).collect().item(),
                  observations.select(pl.col(WEATHER_KNOWN_AT).max()).collect().item()]
        as_of = max((t for t in latest if t is not None), default=dt.datetime.now(dt.UTC))
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=dt.UTC)
    at = pl.lit(as_of).cast(_UTC)
    known = outcomes.filter(pl.col("known_at") <= at)

    rates = []
    for name in HISTORY_FEATURES:
        keys = _rate_keys(name)
        frame = pl.concat([
            known.select(*(pl.col(k).cast(_KEY_TYPES[k]) for k in keys)).unique(),
            pl.LazyFrame({k: [_SENTINEL[k]] for k in keys}, schema={k: _KEY_TYPES[k] for k in keys}),
        ]).with_columns(predict_at=at)
        rated = with_history(frame, known, names=(name,)).select(
            *(pl.when(pl.col(k) != _SENTINEL[k]).then(pl.col(k)).alias(k) for k in keys),
            feature=pl.lit(name), value=pl.col(name).cast(pl.Float64))
        rates.append(rated.collect())

    reports = observations.filter(pl.col(WEATHER_KNOWN_AT) <= at).filter(
        pl.col(WEATHER_KNOWN_AT) >= pl.col(WEATHER_KNOWN_AT).max().over("origin") - WEATHER_KEEP).select(
        "origin", WEATHER_KNOWN_AT, *(pl.col(f).cast(pl.Float64) for f in WEATHER_FEATURES)).collect()

    first_day, last_day = (as_of - dt.timedelta(days=2)).date(), (as_of + SCHEDULE_LEAD + dt.timedelta(days=1)).date()
    published = flights.filter(pl.col("flight_date").is_between(first_day, last_day)).collect()
    schedule = published.select(
        "carrier", "flight", "origin", "dest", "sched_dep_local", "flight_date",
        *(pl.col(c).cast(pl.Float64) for c in ("sched_arr_minutes", "distance", "sched_block_minutes")))
    hours = published.group_by("origin", "flight_date", "sched_dep_hour").agg(
        origin_hour_departures=pl.len().cast(pl.Float64))
    days = published.group_by("origin", "flight_date").agg(origin_day_departures=pl.len().cast(pl.Float64))
    routes = (flights.filter(pl.col("sched_dep_utc") <= at + SCHEDULE_LEAD).sort("sched_dep_utc")
              .group_by("origin", "dest").agg(pl.col("distance").last().cast(pl.Float64),
                                              pl.col("sched_block_minutes").last().cast(pl.Float64))).collect()
    plane = planes.select(
        "tailnum", plane_built=pl.col("year").cast(pl.Float64), plane_type=pl.col("type"),
        plane_manufacturer=pl.col("manufacturer"), plane_engine=pl.col("engine"),
        plane_seats=pl.col("seats").cast(pl.Float64), plane_engines=pl.col("engines").cast(pl.Float64))
    airport = airports.select(airport=pl.col("faa"), lat=pl.col("lat").cast(pl.Float64),
                              lon=pl.col("lon").cast(pl.Float64), tzone=pl.col("tzone"))
    calendar = dates.select(flight_date=pl.col("date"), weekday=pl.col("weekday").cast(pl.Float64),
                            is_weekend=pl.col("is_weekend").cast(pl.Float64),
                            is_holiday=pl.col("is_holiday").cast(pl.Float64))
    meta = pl.DataFrame({"as_of": [as_of], "horizon_hours": [float(horizon_hours)]},
                        schema={"as_of": _UTC, "horizon_hours": pl.Float64})
    parts = {"rate": pl.concat(rates, how="diagonal_relaxed"), "weather": reports, "schedule": schedule,
             "hour": hours, "day": days, "route": routes, "plane": plane, "airport": airport, "date": calendar,
             "meta": meta}
    return pl.concat([frame.with_columns(part=pl.lit(name)) for name, frame in parts.items()],
                     how="diagonal_relaxed")


def online_from_lake(lake: Lake, *, as_of: dt.datetime | None = None) -> tuple[pl.DataFrame, WarehouseVersions]:
    """The online table from the warehouse and the weather record as they stand, at the horizon of
    ml/delay_features (what the served models were trained on), and the table versions it read."""
    versions = WarehouseVersions(*(require(lake, rel) for rel in (FACT, DIM_PLANE, DIM_AIRPORT, DIM_DATE, WEATHER)))
    sample = delta.scan(lake, FEATURE_TABLE, version=require(lake, FEATURE_TABLE)).select(
        "sched_dep_utc", "predict_at").head(1).collect()
    table = build_online_features(
        delta.scan(lake, FACT, version=versions.fact_flights).select(FACT_COLUMNS),
        weather=delta.scan(lake, WEATHER, version=versions.weather).select(WEATHER_COLUMNS),
        planes=delta.scan(lake, DIM_PLANE, version=versions.dim_plane).collect(),
        airports=delta.scan(lake, DIM_AIRPORT, version=versions.dim_airport).collect(),
        dates=delta.scan(lake, DIM_DATE, version=versions.dim_date).collect(),
        horizon_hours=horizon_of(sample) or DEFAULT_HORIZON_HOURS, as_of=as_of)
    return table, versions


def publish(table: pl.DataFrame, path: str | Path) -> None:
    """Write the table where the endpoint watches it: aside, then renamed, so a worker never reads half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
    table.write_parquet(tmp)
    os.replace(tmp, target)


def is_remote(location: str) -> bool:
    """An object-store location (`s3://...`): the Delta table itself, not a published file."""
    return "://" in location and not location.startswith("file://")


class DeltaSource:
    """The online table read from its Delta table where there is no file beside the config (the SageMaker
    container, whose lake is S3). `version()` is the cheap check: it lists the table's log past the version it
    already knows (no data is read); `load` reads one version whole."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.storage_options = dict(storage_options or {}) or None
        self._table: DeltaTable | None = None

    def version(self) -> int | None:
        """The table's latest version, or None while it does not exist."""
        if self._table is None:
            try:
                self._table = DeltaTable(self.uri, storage_options=self.storage_options)
            except TableNotFoundError:
                return None
        else:
            self._table.update_incremental()
        return self._table.version()

    def load(self, version: int) -> "OnlineFeatures":
        table = pl.read_delta(self.uri, version=version, storage_options=self.storage_options)
        return OnlineFeatures(table, f"{self.uri} (version {version})")


def flight_key_of(flight: Flight, zone: ZoneInfo | None) -> tuple[str | None, str | None]:
    """(flight_id, flight_date) of a flight key as the warehouse spells it (`2013-11-01/9E/3302/EWR/1130`: the
    scheduled local date and hhmm at the origin), for the invocation log; (None, None) for a departure given with
    its UTC offset at an origin whose time zone is unknown (its local time cannot be told)."""
    local = flight.sched_dep
    if local.tzinfo is not None:
        if zone is None:
            return None, None
        local = local.astimezone(zone)
    day = local.date().isoformat()
    return f"{day}/{flight.carrier}/{flight.flight}/{flight.origin}/{local:%H%M}", day


def _zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _rows(table: pl.DataFrame, part: str, columns: Sequence[str]) -> list[tuple]:
    return table.filter(pl.col("part") == part).select(columns).rows()


class OnlineFeatures:
    """The online table in dicts: `vectors` builds model inputs for flight keys with lookups only."""

    def __init__(self, table: pl.DataFrame, source: str = "") -> None:
        self.source = source
        (self.as_of, horizon), = _rows(table, "meta", ("as_of", "horizon_hours"))
        self.horizon = dt.timedelta(hours=horizon)
        self.as_of_text = self.as_of.isoformat()
        self.rates: dict[str, dict[tuple, float | None]] = {name: {} for name in HISTORY_FEATURES}
        self.unknown_rate: dict[str, float | None] = {}
        rate_columns = ("feature", "value", *_KEY_TYPES)
        for row in _rows(table, "rate", rate_columns):
            fields = dict(zip(rate_columns, row, strict=True))
            name = fields["feature"]
            key = tuple(fields[k] for k in _rate_keys(name))
            if all(k is None for k in key):
                self.unknown_rate[name] = fields["value"]
            else:
                self.rates[name][key] = fields["value"]
        self.weather: dict[str, tuple[list[dt.datetime], list[tuple]]] = {}
        for origin, known_at, *values in sorted(_rows(table, "weather", ("origin", WEATHER_KNOWN_AT,
                                                                          *WEATHER_FEATURES)),
                                                key=lambda r: (r[0], r[1])):
            times, rows = self.weather.setdefault(origin, ([], []))
            times.append(known_at)
            rows.append(tuple(values))
        self.schedule = {(c, f, o, dep): (dest, arr, dist, block) for c, f, o, dest, dep, arr, dist, block in _rows(
            table, "schedule", ("carrier", "flight", "origin", "dest", "sched_dep_local", "sched_arr_minutes",
                                "distance", "sched_block_minutes"))}
        self.hours = {(o, d, h): n for o, d, h, n in _rows(table, "hour", ("origin", "flight_date", "sched_dep_hour",
                                                                           "origin_hour_departures"))}
        self.days = {(o, d): n for o, d, n in _rows(table, "day", ("origin", "flight_date", "origin_day_departures"))}
        self.routes = {(o, d): (dist, block) for o, d, dist, block in _rows(
            table, "route", ("origin", "dest", "distance", "sched_block_minutes"))}
        plane_columns = ("plane_built", "plane_type", "plane_manufacturer", "plane_engine", "plane_seats",
                         "plane_engines")
        self.planes = {t: tuple(v) for t, *v in _rows(table, "plane", ("tailnum", *plane_columns))}
        self.airports = {a: (lat, lon, _zone(tz)) for a, lat, lon, tz in _rows(
            table, "airport", ("airport", "lat", "lon", "tzone"))}
        self.dates = {d: tuple(v) for d, *v in _rows(table, "date", ("flight_date", "weekday", "is_weekend",
                                                                      "is_holiday"))}

    @classmethod
    def load(cls, path: str | Path) -> "OnlineFeatures":
        return cls(pl.read_parquet(path), str(path))

    def flight_key(self, flight: Flight) -> tuple[str | None, str | None]:
        """(flight_id, flight_date) of a requested flight, placed by its origin's time zone (`flight_key_of`)."""
        return flight_key_of(flight, (self.airports.get(flight.origin) or (None, None, None))[2])

    def zones(self) -> dict[str, ZoneInfo]:
        """Each airport's time zone (what `flight_key_of` needs where the table is not loaded)."""
        return {airport: zone for airport, (_, _, zone) in self.airports.items() if zone is not None}

    def features(self, flight: Flight) -> tuple[dict[str, Any], list[str]]:
        """(every feature of `FEATURES` for the flight, the fields that fell back). ValueError when the
        departure cannot be placed in time (a local time at an origin whose time zone is unknown)."""
        fallbacks: list[str] = []
        carrier, number, origin, dest, sched_dep, tailnum = flight
        origin_zone = (self.airports.get(origin) or (None, None, None))[2]
        if sched_dep.tzinfo is None:
            if origin_zone is None:
                raise ValueError(f"the time zone of origin {origin!r} is unknown: give sched_dep with its UTC "
                                 f"offset (e.g. 2013-12-31T05:15-05:00)")
            local, utc = sched_dep, sched_dep.replace(tzinfo=origin_zone).astimezone(dt.UTC)
        else:
            utc = sched_dep.astimezone(dt.UTC)
            local = utc.astimezone(origin_zone).replace(tzinfo=None) if origin_zone else sched_dep.replace(tzinfo=None)
        at = utc - self.horizon
        day, hour = local.date(), local.hour
        out: dict[str, Any] = {"carrier": carrier, "origin": origin, "dest": dest}

        arr_minutes, distance, block = self._schedule(flight, local, utc, fallbacks)
        dest_airport = self.airports.get(dest)
        if dest_airport is None:
            fallbacks.append("dest_airport")
        calendar = self.dates.get(day)
        if calendar is None:
            fallbacks.append("calendar")
        hour_load, day_load = self.hours.get((origin, day, hour)), self.days.get((origin, day))
        if hour_load is None or day_load is None:
            fallbacks.append("departures")
        out.update(
            sched_dep_hour=float(hour), sched_dep_minutes=float(hour * 60 + local.minute),
            sched_arr_minutes=arr_minutes, weekday=calendar[0] if calendar else None,
            is_weekend=calendar[1] if calendar else None, is_holiday=calendar[2] if calendar else None,
            distance=distance, sched_block_minutes=block,
            dest_lat=dest_airport[0] if dest_airport else None, dest_lon=dest_airport[1] if dest_airport else None,
            origin_hour_departures=hour_load, origin_day_departures=day_load)

        plane = self.planes.get(tailnum) if tailnum else None
        if plane is None:
            fallbacks.append("plane")
            plane = (None,) * 6
        built, *rest = plane
        out.update(zip(("plane_type", "plane_manufacturer", "plane_engine", "plane_seats", "plane_engines"), rest,
                       strict=True))
        out["plane_age"] = float(local.year - built) if built is not None else None

        out.update(zip(WEATHER_FEATURES, self._weather(origin, at, fallbacks), strict=True))
        keys = {"carrier": carrier, "origin": origin, "dest": dest, "sched_dep_hour": hour, "tailnum": tailnum,
                "flight": number}
        for name in HISTORY_FEATURES:
            table = self.rates[name]
            key = tuple(keys[k] for k in _rate_keys(name))
            if key in table:
                out[name] = table[key]
            else:
                fallbacks.append(name)
                out[name] = self.unknown_rate.get(name)
        return out, fallbacks

    def _schedule(self, flight: Flight, local: dt.datetime, utc: dt.datetime,
                  fallbacks: list[str]) -> tuple[float | None, float | None, float | None]:
        """(sched_arr_minutes, distance, sched_block_minutes): the published schedule's, else the route's latest
        distance and block time (the arrival from them), else nulls."""
        found = self.schedule.get((flight.carrier, flight.flight, flight.origin, local))
        if found is not None and found[0] == flight.dest:
            return found[1:]
        fallbacks.append("schedule")
        distance, block = self.routes.get((flight.origin, flight.dest), (None, None))
        if block is None:
            fallbacks.append("route")
            return None, distance, None
        dest_zone = (self.airports.get(flight.dest) or (None, None, None))[2]
        if dest_zone is None:
            return None, distance, block
        arrival = (utc + dt.timedelta(minutes=block)).astimezone(dest_zone)
        return float(arrival.hour * 60 + arrival.minute), distance, block

    def _weather(self, origin: str, at: dt.datetime, fallbacks: list[str]) -> tuple:
        """The weather features of the newest report at `origin` in the record at `at`, none older than
        WEATHER_MAX_AGE (nulls, and `weather` in the fallbacks, when there is none)."""
        reports = self.weather.get(origin)
        k = bisect.bisect_right(reports[0], at) - 1 if reports else -1
        if k >= 0 and at - reports[0][k] <= WEATHER_MAX_AGE:
            return reports[1][k]
        fallbacks.append("weather")
        return (None,) * len(WEATHER_FEATURES)

    def vectors(self, flights: Iterable[Flight], features: Sequence[str]) -> tuple[list[list[Any]], list[list[str]]]:
        """(one row per flight in `features` order, the fields each fell back on). KeyError naming the features
        the online table does not build (a model trained on other columns)."""
        missing = [f for f in features if f not in _BUILT]
        if missing:
            raise KeyError(", ".join(missing))
        rows, fallbacks = [], []
        for flight in flights:
            values, fell_back = self.features(flight)
            rows.append([values[f] for f in features])
            fallbacks.append(fell_back)
        return rows, fallbacks

