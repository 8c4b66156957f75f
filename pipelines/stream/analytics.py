"""Keep the analytics tables up to date with what the landing committed, incrementally and exactly once. No Dagster.

Each analytics table records, as a Delta application transaction, the landing batch it reflects; a run
processes the batches after it and commits the new batch number with its data, so a run that dies is simply
run again. Both read `standardized/telemetry` at one pinned version.

- `analytics/telemetry_windows` (by date): the dates that new events touch, and those whose windows become
  complete as the watermark moves, are recomputed from the events and replaced (partition-scoped overwrite).
- `analytics/telemetry_anomalies` (by date): the online detector takes the events below each station's
  watermark that it has not seen, in event-time order, and appends its final verdicts (insert-only MERGE on
  event id) with the baseline's beside them. Its state (a pickle, a few KB) is stored per batch under
  `_state/telemetry_anomalies/` before the commit that names it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Final

import polars as pl
from deltalake import CommitProperties, Transaction, write_deltalake

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.stream.anomaly import SCORE_SCHEMA, DetectorConfig, OnlineDetector, baseline
from pipelines.stream.landing import LATENESS, STANDARDIZED, committed_batch, insert_new, state_at
from pipelines.stream.windows import LOOKBACK, WINDOW_SCHEMA, rolling_windows

WINDOWS_TABLE: Final = "analytics/telemetry_windows"
ANOMALIES_TABLE: Final = "analytics/telemetry_anomalies"
WINDOWS_APP: Final = "tributary.telemetry.windows"
ANOMALIES_APP: Final = "tributary.telemetry.anomalies"
DETECTOR_STATE: Final = "_state/telemetry_anomalies"

ANOMALY_SCHEMA: Final = pl.Schema(
    {**SCORE_SCHEMA, "date": pl.Date(), "baseline_flag": pl.Boolean(), "batch": pl.Int64()}
)


@dataclass
class AnalyticsResult:
    """What one analytics update did."""

    table: str
    batch: int
    skipped: bool = False
    rows: int = 0
    first_date: str | None = None
    last_date: str | None = None
    version: int | None = None
    flagged: dict[str, int] = field(default_factory=dict)
    preview: pl.DataFrame | None = None


def _processed(lake: Lake, rel: str, app_id: str) -> int:
    table = delta.open_table(lake, rel)
    return 0 if table is None else (table.transaction_version(app_id) or 0)


def _commit(batch: int, app_id: str) -> CommitProperties:
    return CommitProperties(app_transactions=[Transaction(app_id, batch)])


def _watermarks(newest: dict[str, dt.datetime], lateness: dt.timedelta) -> dict[str, dt.datetime]:
    return {station: t - lateness for station, t in newest.items()}


def update_windows(lake: Lake, *, lateness: dt.timedelta = LATENESS) -> AnalyticsResult:
    """Recompute the windows of the dates the new landing batches touched; skip when up to date."""
    source = delta.open_table(lake, STANDARDIZED)
    landed = committed_batch(lake, source)
    done = _processed(lake, WINDOWS_TABLE, WINDOWS_APP)
    if source is None or landed <= done:
        return AnalyticsResult(WINDOWS_TABLE, batch=done, skipped=True)
    version = source.version()
    events = delta.scan(lake, STANDARDIZED, version=version)
    new_dates = (
        events.filter(pl.col("batch").is_between(done + 1, landed)).select(pl.col("date").unique()).collect()["date"]
    )
    before = _watermarks(state_at(lake, done).max_event_time, lateness)
    after = _watermarks(state_at(lake, landed).max_event_time, lateness)
    # Windows between the old and the new watermark turn complete: their dates are rewritten too.
    moved = [t.date() for t in before.values()] + [t.date() for t in after.values()]
    dates = new_dates.to_list() + moved
    target = delta.open_table(lake, WINDOWS_TABLE)
    commit = _commit(landed, WINDOWS_APP)
    if not dates:  # the batches landed no event (all quarantined): record that they were seen
        empty = pl.DataFrame(schema=WINDOW_SCHEMA).to_arrow()
        if target is None:
            write_deltalake(lake.uri(WINDOWS_TABLE), empty, mode="overwrite", partition_by=["date"],
                            storage_options=delta.storage_options(lake), commit_properties=commit)
        else:
            write_deltalake(target, empty, mode="append", commit_properties=commit)
        return AnalyticsResult(WINDOWS_TABLE, batch=landed, version=delta.version(lake, WINDOWS_TABLE))
    first, last = min(dates), max(dates)
    window_events = events.filter(
        pl.col("date").is_between(first - dt.timedelta(days=1), last)
        & (pl.col("event_time") >= dt.datetime.combine(first, dt.time(), dt.timezone.utc) - LOOKBACK)
    )
    windows = rolling_windows(window_events, watermarks=after).filter(pl.col("date").is_between(first, last))
    if target is None:
        write_deltalake(lake.uri(WINDOWS_TABLE), windows.to_arrow(), mode="overwrite", partition_by=["date"],
                        storage_options=delta.storage_options(lake), commit_properties=commit)
    else:
        write_deltalake(target, windows.to_arrow(), mode="overwrite", commit_properties=commit,
                        predicate=delta.range_predicate("date", first, last))
    return AnalyticsResult(
        WINDOWS_TABLE, batch=landed, rows=windows.height, first_date=first.isoformat(), last_date=last.isoformat(),
        version=delta.version(lake, WINDOWS_TABLE), preview=windows.tail(5),
    )


def _state_path(batch: int) -> str:
    return f"{DETECTOR_STATE}/{batch:010d}.pkl"


def load_detector(lake: Lake, batch: int, config: DetectorConfig | None = None) -> OnlineDetector:
    """The detector as it was after the landing batch `batch` (a new one for batch 0)."""
    if batch == 0:
        return OnlineDetector(config or DetectorConfig())
    try:
        return OnlineDetector.loads(lake.read_bytes(_state_path(batch)))
    except FileNotFoundError:
        raise RuntimeError(f"anomalies reflect batch {batch} but the detector state {_state_path(batch)} "
                           "is missing") from None


def update_anomalies(lake: Lake, *, lateness: dt.timedelta = LATENESS,
                     config: DetectorConfig | None = None) -> AnalyticsResult:
    """Feed the detector the events that passed the watermark since its last run; append its verdicts."""
    source = delta.open_table(lake, STANDARDIZED)
    landed = committed_batch(lake, source)
    done = _processed(lake, ANOMALIES_TABLE, ANOMALIES_APP)
    if source is None or landed <= done:
        return AnalyticsResult(ANOMALIES_TABLE, batch=done, skipped=True)
    detector = load_detector(lake, done, config)
    watermarks = _watermarks(state_at(lake, landed).max_event_time, lateness)
    frontier = detector.frontier()
    bounds = pl.DataFrame(
        {"station": list(watermarks), "_watermark": list(watermarks.values()),
         "_frontier": [frontier.get(s) for s in watermarks]},
        schema={"station": pl.String, "_watermark": pl.Datetime("us", "UTC"), "_frontier": pl.Datetime("us", "UTC")},
    )
    oldest = min(frontier.values()).date() if frontier else None
    events = delta.scan(lake, STANDARDIZED, version=source.version())
    if oldest is not None:
        events = events.filter(pl.col("date") >= oldest)
    fresh = (
        events.join(bounds.lazy(), on="station")
        .filter((pl.col("event_time") < pl.col("_watermark"))
                & (pl.col("_frontier").is_null() | (pl.col("event_time") > pl.col("_frontier"))))
        .drop("_watermark", "_frontier")
        .collect()
    )
    verdicts = detector.score(fresh)
    base = baseline(fresh).select("event_id", pl.col("flag").alias("baseline_flag"))
    rows = (
        verdicts.join(base, on="event_id", how="left")
        .with_columns(date=pl.col("event_time").dt.date(), batch=pl.lit(landed, pl.Int64))
        .select(ANOMALY_SCHEMA.names())
        .cast(ANOMALY_SCHEMA)
    )
    lake.publish_bytes(_state_path(landed), detector.dumps())
    target = delta.open_table(lake, ANOMALIES_TABLE)
    commit = _commit(landed, ANOMALIES_APP)
    version, _ = insert_new(lake, ANOMALIES_TABLE, rows, table=target, partition_by=["date"], commit=commit,
                                  predicate="t.date = s.date AND t.event_id = s.event_id")
    if version is None:
        assert target is not None
        write_deltalake(target, rows.clear().to_arrow(), mode="append", commit_properties=commit)
    flagged = dict(rows.filter("flag").group_by("kind").len().sort("kind").iter_rows())
    dates = rows["date"]
    return AnalyticsResult(
        ANOMALIES_TABLE, batch=landed, rows=rows.height,
        first_date=dates.min().isoformat() if rows.height else None,
        last_date=dates.max().isoformat() if rows.height else None,
        version=delta.version(lake, ANOMALIES_TABLE), flagged=flagged,
        preview=rows.filter("flag").head(5) if flagged else rows.head(5),
    )


FLIGHT_WEATHER_TABLE: Final = "analytics/flight_weather_telemetry"


def flight_weather(flights: pl.LazyFrame, telemetry: pl.LazyFrame, anomalies: pl.LazyFrame) -> pl.DataFrame:
    """Departures per origin and scheduled UTC hour, beside the telemetry of that hour at the origin and the
    detector's verdict on it: where the stream meets the warehouse (station = origin, event hour = hour)."""
    hourly = (
        flights.filter(pl.col("sched_dep_utc").is_not_null())
        .group_by("origin", hour=pl.col("sched_dep_utc").dt.convert_time_zone("UTC").dt.cast_time_unit("us")
                  .dt.truncate("1h"))
        .agg(departures=pl.len(), mean_dep_delay=pl.col("dep_delay").cast(pl.Float64).mean())
    )
    readings = telemetry.select(
        pl.col("station").alias("origin"), pl.col("event_time").alias("hour"), "temp", "wind_speed", "visib", "precip"
    )
    verdicts = anomalies.select(pl.col("station").alias("origin"), pl.col("event_time").alias("hour"),
                                pl.col("flag").alias("anomaly"), pl.col("kind").alias("anomaly_kind"))
    return (
        hourly.join(readings, on=["origin", "hour"], how="inner")
        .join(verdicts, on=["origin", "hour"], how="left")
        .with_columns(date=pl.col("hour").dt.date())
        .sort("origin", "hour")
        .collect()
    )
