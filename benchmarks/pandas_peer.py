"""The pandas peer of `benchmarks/warehouse.py`: extract -> standardize -> warehouse written in idiomatic pandas.

The way most Dagster examples write such a pipeline (pandas DataFrames, `read_sql`, `merge`, `groupby`), doing
the same work as the graph's assets, stage by stage and in the same order, with no orchestration:

- extract: each day's flights and weather with `pandas.read_sql` (the same parameterized query per day),
  written to the raw zone as one Parquet file per day; the reference tables as snapshots;
- standardize, by month chunk read back from the raw zone: types (nullable integers, UTC timestamps),
  deduplication on the natural keys (latest `updated_at`), quarantine (as JSON rows in Delta) for a missing
  key, an invalid date, an impossible clock time, an unknown carrier, out-of-range numbers and an arrival
  before the departure; clock times to local timestamps (departure day from the delay, arrival on the next
  day when earlier than the departure) and to UTC with `tz_localize` per airport zone (first occurrence of an
  ambiguous time, non-existent times read on the old clock, the fixed `tz` offset for an airport without
  zone); cancellations, delay classes, late flag; enrichment by `merge` with both airports, the origin's
  weather in the scheduled hour and the aircraft; the flight id;
- warehouse: dimensions (airport and plane with unknown members, carrier, date with US federal holidays from
  `USFederalHolidayCalendar`), the fact (block times), route daily KPIs (counts, means, late share, p90 arrival
  delay) by month chunk, carrier monthly KPIs over the whole fact;
- every table written to Delta (deltalake), time-partitioned ones with the same partition-scoped overwrite.

Not covered: the NaN/infinity rule (pandas reads NaN as missing; `zoneinfo` decides the unknown-time-zone
rule); the quarantine is tagged with its month chunk rather than its day; the dimensions are overwritten rather
than MERGE-upserted (they are small); codes for the unknown dimension members are gathered while standardizing
rather than re-read from the standardized table; no Great Expectations suites (the floor runs none either).

    python benchmarks/pandas_peer.py HOME DSN FIRST LAST     (prints one JSON line: rows, stages, peak RSS)
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import uuid
import zoneinfo
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from deltalake import DeltaTable, write_deltalake
from pandas.tseries.holiday import USFederalHolidayCalendar

from rss import memory_mib  # benchmarks/ (the script's own folder)

CHUNK_DAYS = 31
FLIGHT_KEY = ["year", "month", "day", "carrier", "flight", "sched_dep_time", "origin"]
WEATHER_KEY = ["origin", "time_hour"]
CLOCKS = ["sched_dep_time", "dep_time", "sched_arr_time", "arr_time"]
WEATHER_MEASURES = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure", "visib"]
WEATHER_RANGES = {"temp": (-80, 140), "dewp": (-100, 100), "humid": (0, 100), "wind_dir": (0, 360),
                  "wind_speed": (0, 250), "wind_gust": (0, 300), "precip": (0, 20), "pressure": (850, 1100),
                  "visib": (0, 100)}
FLIGHT_RANGES = {"distance": (1, 12_500), "air_time": (1, 1440), "dep_delay": (-1440, 4320), "arr_delay": (-1440, 4320)}
PLANE_ATTRIBUTES = ["year", "type", "manufacturer", "model", "engines", "seats", "speed", "engine"]
INT_COLUMNS = {
    "flights": ["year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time",
                "arr_delay", "flight", "air_time", "distance", "hour", "minute"],
    "weather": ["year", "month", "day", "hour"],
}
COLUMNS = {
    "flights": ["id", "year", "month", "day", "dep_time", "sched_dep_time", "dep_delay", "arr_time", "sched_arr_time",
                "arr_delay", "carrier", "flight", "tailnum", "origin", "dest", "air_time", "distance", "hour",
                "minute", "time_hour", "updated_at"],
    "weather": ["id", "origin", "year", "month", "day", "hour", *WEATHER_MEASURES, "time_hour", "updated_at"],
    "airports": ["faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone", "updated_at"],
    "planes": ["tailnum", *PLANE_ATTRIBUTES, "updated_at"],
    "airlines": ["carrier", "name", "updated_at"],
}
FACT_COLUMNS = [
    "flight_id", "flight_date", "year", "month", "day", "carrier", "flight", "tailnum", "origin", "dest",
    "sched_dep_local", "dep_local", "sched_arr_local", "arr_local", "sched_dep_utc", "dep_utc", "sched_arr_utc",
    "arr_utc", "dep_delay", "arr_delay", "air_time", "distance", "block_minutes", "sched_block_minutes",
    "cancelled", "is_late", "delay_class", "origin_known", "dest_known", "plane_known", "weather_known",
    *(f"origin_{c}" for c in WEATHER_MEASURES),
]


class Lake:
    def __init__(self, root: Path):
        self.root = root

    def path(self, rel: str) -> Path:
        return self.root / rel

    def write_raw(self, table: str, label: str, run_id: str, df: pd.DataFrame) -> None:
        folder = self.path(f"raw/{table}/date={label}")
        folder.mkdir(parents=True, exist_ok=True)
        df.to_parquet(folder / f"{run_id}.parquet", compression="zstd", index=False)

    def read_raw(self, table: str, days: list[dt.date], run_id: str) -> pd.DataFrame:
        return pd.concat([pd.read_parquet(self.path(f"raw/{table}/date={d}/{run_id}.parquet")) for d in days],
                         ignore_index=True)

    def overwrite(self, rel: str, df: pd.DataFrame) -> None:
        write_deltalake(str(self.path(rel)), df, mode="overwrite", schema_mode="overwrite")

    def overwrite_range(self, rel: str, df: pd.DataFrame, column: str, first: dt.date, last: dt.date) -> None:
        uri = str(self.path(rel))
        if not (self.path(rel) / "_delta_log").exists():
            write_deltalake(uri, df, mode="overwrite", partition_by=[column])
        else:
            write_deltalake(uri, df, mode="overwrite", predicate=f"{column} >= '{first}' AND {column} <= '{last}'",
                            schema_mode="merge")

    def read_range(self, rel: str, column: str, first: dt.date, last: dt.date, columns=None) -> pd.DataFrame:
        return DeltaTable(str(self.path(rel))).to_pandas(
            partitions=[(column, ">=", str(first)), (column, "<=", str(last))], columns=columns)


def _latest(df: pd.DataFrame, key: list[str]) -> pd.DataFrame:
    return df.sort_values(["updated_at", "id"] if "id" in df else ["updated_at"]).drop_duplicates(key, keep="last")


def _typed(df: pd.DataFrame, table: str) -> pd.DataFrame:
    df = df.copy()
    for c in INT_COLUMNS.get(table, []):
        df[c] = df[c].astype("Int32")
    for c in ("time_hour", "updated_at"):
        if c in df:
            df[c] = pd.to_datetime(df[c], utc=True)
    return df


def _quarantine(table: str, bad: pd.DataFrame, rules: pd.Series, key: pd.Series, run_id: str) -> pd.DataFrame:
    """One row per bad row: the table, the rule broken, the key, the row as JSON, the run id (all text)."""
    raw = bad.to_json(orient="records", lines=True, date_format="iso").splitlines() if len(bad) else []
    return pd.DataFrame({"table": table, "rule": rules.to_numpy(dtype=object), "key": key.to_numpy(dtype=object),
                         "raw": raw, "run_id": run_id}, index=range(len(bad))).astype("string")


def _tagged(quarantine: pd.DataFrame, chunk_start: dt.date) -> pd.DataFrame:
    return quarantine.assign(chunk_start=pd.Series(str(chunk_start), index=quarantine.index, dtype="string"))


def _split(table: str, df: pd.DataFrame, rules: dict[str, pd.Series], key: pd.Series, run_id: str):
    """The first rule each row breaks (in order); good rows and the quarantine."""
    broken = pd.Series(None, index=df.index, dtype=object)
    for name, mask in rules.items():
        broken = broken.mask(broken.isna() & mask.fillna(False).astype(bool), name)
    bad = broken.notna()
    return df[~bad], _quarantine(table, df[bad], broken[bad], key[bad], run_id)


def _out_of_range(df: pd.DataFrame, ranges: dict) -> pd.Series:
    mask = pd.Series(False, index=df.index)
    for c, (lo, hi) in ranges.items():
        mask |= (df[c].notna() & ~df[c].between(lo, hi)).astype(bool)
    return mask


def _date(df: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(df[["year", "month", "day"]].astype("float64"), errors="coerce")


def _minutes(hhmm: pd.Series) -> pd.Series:
    return (hhmm // 100 * 60 + hhmm % 100).astype("float64")


def to_utc(local: pd.Series, zone: pd.Series, fixed_hours: pd.Series) -> pd.Series:
    """Local wall-clock times to UTC, one `tz_localize` per zone: an ambiguous time is its first (DST)
    occurrence, a non-existent one is read on the clock before the change; no zone: the fixed offset."""
    out = pd.Series(pd.NaT, index=local.index, dtype="datetime64[ns, UTC]")
    for name, idx in local.groupby(zone).groups.items():
        part = local.loc[idx]
        out.loc[idx] = part.dt.tz_localize(name, ambiguous=np.ones(len(part), dtype=bool),
                                           nonexistent=pd.Timedelta(hours=1)).dt.tz_convert("UTC")
    fixed = zone.isna() & fixed_hours.notna()
    if fixed.any():
        out.loc[fixed] = (local[fixed] - pd.to_timedelta(fixed_hours[fixed], unit="h")).dt.tz_localize("UTC")
    return out


def standardize_airports(raw: pd.DataFrame, run_id: str):
    df = _latest(raw.assign(updated_at=pd.to_datetime(raw["updated_at"], utc=True)), ["faa"])
    zones = zoneinfo.available_timezones()
    rules = {
        "missing_key": df["faa"].isna() | (df["faa"].str.strip() == ""),
        "out_of_range": _out_of_range(df, {"lat": (-90, 90), "lon": (-180, 180), "tz": (-12, 14),
                                           "alt": (-1500, 30000)}),
        "unknown_time_zone": df["tzone"].notna() & ~df["tzone"].isin(zones),
    }
    return _split("airports", df, rules, df["faa"], run_id)


def standardize_planes(raw: pd.DataFrame, run_id: str):
    df = _latest(raw.assign(updated_at=pd.to_datetime(raw["updated_at"], utc=True)), ["tailnum"])
    for c in ("year", "engines", "seats", "speed"):
        df[c] = df[c].astype("Int32")
    rules = {"missing_key": df["tailnum"].isna(),
             "out_of_range": _out_of_range(df, {"year": (1900, 2100), "engines": (0, 16), "seats": (1, 1000),
                                                "speed": (0, 2500)})}
    return _split("planes", df, rules, df["tailnum"], run_id)


def standardize_airlines(raw: pd.DataFrame, run_id: str):
    df = _latest(raw.assign(updated_at=pd.to_datetime(raw["updated_at"], utc=True)), ["carrier"])
    return _split("airlines", df, {"missing_key": df["carrier"].isna()}, df["carrier"], run_id)


def standardize_weather(raw: pd.DataFrame, run_id: str):
    df = _latest(_typed(raw, "weather"), WEATHER_KEY)
    date = _date(df)
    rules = {
        "missing_key": df["origin"].isna() | df["time_hour"].isna(),
        "invalid_date": date.isna(),
        "out_of_range": _out_of_range(df, WEATHER_RANGES),
    }
    key = df["origin"] + "/" + df["time_hour"].dt.strftime("%Y-%m-%dT%H:%MZ")
    good, quarantine = _split("weather", df, rules, key, run_id)
    good = good.assign(obs_date=date[good.index].dt.date, source_id=good["id"], source_updated_at=good["updated_at"])
    return good.drop(columns=["id", "updated_at"]), quarantine


def standardize_flights(raw: pd.DataFrame, *, airports: pd.DataFrame, planes: pd.DataFrame, weather: pd.DataFrame,
                        airlines: pd.DataFrame, run_id: str):
    df = _latest(_typed(raw, "flights"), FLIGHT_KEY).reset_index(drop=True)
    df["flight_date"] = _date(df)
    minutes = {c: _minutes(df[c]) for c in CLOCKS}

    geo = airports[["faa", "lat", "lon", "alt", "tzone", "tz"]].drop_duplicates("faa")
    for side in ("origin", "dest"):
        df = df.merge(geo.rename(columns=lambda c, side=side: side if c == "faa" else f"{side}_{c}"), on=side, how="left")
        df[f"{side}_known"] = df[f"{side}_lat"].notna() | df[f"{side}_tz"].notna()
        df[f"{side}_tz_source"] = np.select([df[f"{side}_tzone"].notna(), df[f"{side}_tz"].notna()],
                                            ["tzone", "utc_offset"], "unknown")

    def utc(local: pd.Series, side: str) -> pd.Series:
        return to_utc(local, df[f"{side}_tzone"], df[f"{side}_tz"])

    dep_days = ((minutes["sched_dep_time"] + df["dep_delay"].fillna(0).astype("float64") - minutes["dep_time"]) / 1440)
    df["sched_dep_local"] = df["flight_date"] + pd.to_timedelta(minutes["sched_dep_time"], unit="m")
    df["dep_local"] = df["flight_date"] + pd.to_timedelta(minutes["dep_time"] + dep_days.round() * 1440, unit="m")
    df["sched_dep_utc"] = utc(df["sched_dep_local"], "origin")
    df["dep_utc"] = utc(df["dep_local"], "origin")
    for arr, dep in (("sched_arr", "sched_dep"), ("arr", "dep")):
        same = df[f"{dep}_local"].dt.normalize() + pd.to_timedelta(minutes[f"{arr}_time"], unit="m")
        same_utc = utc(same, "dest")
        both = same_utc.notna() & df[f"{dep}_utc"].notna()
        earlier = np.where(both, same_utc < df[f"{dep}_utc"], same < df[f"{dep}_local"])
        df[f"{arr}_local"] = same + pd.to_timedelta(np.where(earlier, 1, 0), unit="D")
        df[f"{arr}_utc"] = utc(df[f"{arr}_local"], "dest")

    w = weather[["origin", "time_hour", *WEATHER_MEASURES]].drop_duplicates(["origin", "time_hour"])
    w["time_hour"] = w["time_hour"].astype(df["time_hour"].dtype)
    w = w.rename(columns={c: f"origin_{c}" for c in WEATHER_MEASURES}).assign(weather_known=True)
    df = df.merge(w, on=["origin", "time_hour"], how="left")
    p = planes[["tailnum", *PLANE_ATTRIBUTES]].drop_duplicates("tailnum")
    p = p.rename(columns={c: f"plane_{c}" for c in PLANE_ATTRIBUTES}).assign(plane_known=True)
    df = df.merge(p, on="tailnum", how="left")
    df["weather_known"] = df["weather_known"].fillna(False).astype(bool)
    df["plane_known"] = df["plane_known"].fillna(False).astype(bool)

    block = (df["arr_utc"] - df["dep_utc"]) / pd.Timedelta(minutes=1)
    clocks_bad = pd.Series(False, index=df.index)
    for c in CLOCKS:
        clocks_bad |= (df[c].notna() & ~(df[c].between(0, 2400) & (df[c] % 100 < 60))).astype(bool)
    rules = {
        "missing_key": df[FLIGHT_KEY].isna().any(axis=1),
        "invalid_date": df["flight_date"].isna(),
        "impossible_clock_time": clocks_bad,
        "unknown_carrier": ~df["carrier"].isin(airlines["carrier"]),
        "out_of_range": _out_of_range(df, FLIGHT_RANGES),
        "arrival_before_departure": (block < 0) | (block > 1440) | (block < df["air_time"].astype("float64")),
    }
    df["flight_id"] = (df["flight_date"].dt.strftime("%Y-%m-%d") + "/" + df["carrier"] + "/"
                       + df["flight"].astype(str) + "/" + df["origin"] + "/"
                       + df["sched_dep_time"].astype(str).str.zfill(4))
    df["cancelled"] = df["dep_time"].isna()
    arr_delay = df["arr_delay"].astype("float64")
    df["delay_class"] = np.select([df["cancelled"], arr_delay <= 15, arr_delay <= 60, arr_delay > 60],
                                  ["cancelled", "on_time", "minor", "major"], None)
    df["is_late"] = (arr_delay > 15).astype("boolean").mask(arr_delay.isna())
    df["flight_date"] = df["flight_date"].dt.date
    df = df.rename(columns={"id": "source_id", "updated_at": "source_updated_at"})
    good, quarantine = _split("flights", df, rules, df["flight_id"], run_id)
    return good.drop(columns=["origin_tz", "dest_tz"]), quarantine


def fact_flights(flights: pd.DataFrame) -> pd.DataFrame:
    return flights.assign(
        block_minutes=((flights["arr_utc"] - flights["dep_utc"]) / pd.Timedelta(minutes=1)).astype("Int64"),
        sched_block_minutes=((flights["sched_arr_utc"] - flights["sched_dep_utc"])
                             / pd.Timedelta(minutes=1)).astype("Int64"),
    )[FACT_COLUMNS]


def route_daily_kpis(fact: pd.DataFrame) -> pd.DataFrame:
    g = fact.groupby(["flight_date", "origin", "dest"])
    kpis = g.agg(flights=("flight_id", "size"), cancelled=("cancelled", "sum"), mean_dep_delay=("dep_delay", "mean"),
                 mean_arr_delay=("arr_delay", "mean"), late_share=("is_late", "mean"))
    kpis["p90_arr_delay"] = g["arr_delay"].quantile(0.9)
    return kpis.reset_index()


def carrier_monthly_kpis(fact: pd.DataFrame) -> pd.DataFrame:
    fact = fact.assign(on_time=fact["delay_class"] == "on_time")
    kpis = fact.groupby(["carrier", "year", "month"]).agg(
        flights=("flight_id", "size"), cancelled=("cancelled", "sum"), on_time=("on_time", "sum"),
        mean_dep_delay=("dep_delay", "mean"), mean_arr_delay=("arr_delay", "mean"))
    kpis["on_time_share"] = kpis.pop("on_time") / kpis["flights"]
    return kpis.reset_index()


def dim_date(first: dt.date, last: dt.date) -> pd.DataFrame:
    days = pd.DataFrame({"date": pd.date_range(first, last, freq="D")})
    holidays = USFederalHolidayCalendar().holidays(start=first, end=last, return_name=True)
    d = days["date"].dt
    return days.assign(
        year=d.year, month=d.month, day=d.day, quarter=d.quarter, day_of_year=d.day_of_year,
        iso_week=d.isocalendar().week.astype("int32"), weekday=d.day_of_week + 1, weekday_name=d.day_name(),
        is_weekend=d.day_of_week >= 5, holiday=days["date"].map(holidays),
        is_holiday=days["date"].isin(holidays.index), date=d.date,
    )


def _with_unknown(known: pd.DataFrame, key: str, codes: set[str]) -> pd.DataFrame:
    extra = pd.DataFrame({key: sorted(codes - set(known[key]))}).assign(known=False)
    return pd.concat([known.assign(known=True), extra], ignore_index=True).sort_values(key)


def _chunks(first: dt.date, last: dt.date) -> list[list[dt.date]]:
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return [days[i : i + CHUNK_DAYS] for i in range(0, len(days), CHUNK_DAYS)]


def _extract(engine, lake: Lake, chunks: list[list[dt.date]], run_id: str) -> dict[str, int]:
    """Every day of flights and weather and the snapshot tables into the raw zone; rows per daily table."""
    rows = {"flights": 0, "weather": 0}
    with engine.connect() as conn:
        for table in ("flights", "weather"):
            query = sa.text(f"SELECT {', '.join(COLUMNS[table])} FROM {table} "
                            "WHERE year = :year AND month = :month AND day = :day ORDER BY id")
            for day in (day for chunk in chunks for day in chunk):
                df = pd.read_sql(query, conn, params={"year": day.year, "month": day.month, "day": day.day},
                                 parse_dates={"time_hour": {"utc": True}, "updated_at": {"utc": True}})
                lake.write_raw(table, str(day), run_id, df)
                rows[table] += len(df)
        for table in ("airports", "planes", "airlines"):
            df = pd.read_sql(sa.text(f"SELECT {', '.join(COLUMNS[table])} FROM {table}"), conn)
            lake.write_raw(table, "snapshot", run_id, df)
    return rows


def run(home: Path, dsn: str, first: dt.date, last: dt.date) -> dict:
    lake = Lake(home / "lake")
    run_id = uuid.uuid4().hex
    chunks = _chunks(first, last)
    stages: dict[str, float] = {}
    mark = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        stages[name] = round(now - mark, 2)
        mark = now

    engine = sa.create_engine(dsn)
    rows = _extract(engine, lake, chunks, run_id)
    stage("extract")

    refs = {}
    for table, fn in (("airports", standardize_airports), ("planes", standardize_planes),
                      ("airlines", standardize_airlines)):
        good, quarantine = fn(pd.read_parquet(lake.path(f"raw/{table}/date=snapshot/{run_id}.parquet")), run_id)
        lake.overwrite(f"standardized/{table}", good)
        lake.overwrite(f"quarantine/{table}", quarantine)
        refs[table] = good
    for chunk in chunks:
        good, quarantine = standardize_weather(lake.read_raw("weather", chunk, run_id), run_id)
        lake.overwrite_range("standardized/weather", good, "obs_date", chunk[0], chunk[-1])
        lake.overwrite_range("quarantine/weather", _tagged(quarantine, chunk[0]), "chunk_start", chunk[0], chunk[-1])
    airport_codes: set[str] = set()
    tailnums: set[str] = set()
    good_rows = 0
    for chunk in chunks:
        weather = lake.read_range("standardized/weather", "obs_date", chunk[0] - dt.timedelta(days=1),
                                  chunk[-1] + dt.timedelta(days=1))
        good, quarantine = standardize_flights(lake.read_raw("flights", chunk, run_id), weather=weather, run_id=run_id,
                                               **refs)
        lake.overwrite_range("standardized/flights", good, "flight_date", chunk[0], chunk[-1])
        lake.overwrite_range("quarantine/flights", _tagged(quarantine, chunk[0]), "chunk_start", chunk[0], chunk[-1])
        airport_codes |= set(good["origin"].dropna()) | set(good["dest"].dropna())
        tailnums |= set(good["tailnum"].dropna())
        good_rows += len(good)
    stage("standardize")

    airports = refs["airports"][["faa", "name", "lat", "lon", "alt", "tz", "dst", "tzone"]]
    lake.overwrite("warehouse/dim_airport", _with_unknown(airports, "faa", airport_codes))
    planes = refs["planes"][["tailnum", *PLANE_ATTRIBUTES]]
    lake.overwrite("warehouse/dim_plane", _with_unknown(planes, "tailnum", tailnums))
    lake.overwrite("warehouse/dim_carrier", refs["airlines"][["carrier", "name"]].sort_values("carrier"))
    lake.overwrite("warehouse/dim_date", dim_date(first, last))
    fact_rows = 0
    for chunk in chunks:
        fact = fact_flights(lake.read_range("standardized/flights", "flight_date", chunk[0], chunk[-1]))
        lake.overwrite_range("warehouse/fact_flights", fact, "flight_date", chunk[0], chunk[-1])
        fact_rows += len(fact)
    for chunk in chunks:
        kpis = route_daily_kpis(lake.read_range("warehouse/fact_flights", "flight_date", chunk[0], chunk[-1]))
        lake.overwrite_range("warehouse/route_daily_kpis", kpis, "flight_date", chunk[0], chunk[-1])
    fact = DeltaTable(str(lake.path("warehouse/fact_flights"))).to_pandas(
        columns=["flight_id", "carrier", "year", "month", "cancelled", "delay_class", "dep_delay", "arr_delay"])
    lake.overwrite("warehouse/carrier_monthly_kpis", carrier_monthly_kpis(fact))
    stage("warehouse")
    return {"rows": rows["flights"], "weather_rows": rows["weather"], "good": good_rows, "fact_rows": fact_rows,
            "stages": stages}


def main(argv: list[str]) -> None:
    home, dsn, first, last = argv
    out = run(Path(home), dsn, dt.date.fromisoformat(first), dt.date.fromisoformat(last))
    out["peak_rss_mib"] = memory_mib()
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
