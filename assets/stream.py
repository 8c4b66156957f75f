"""Stream group: telemetry landed exactly once in micro-batches, rolling windows, online anomaly detection."""

import datetime as dt

import polars as pl
from dagster import (AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetCheckSpec,
                     AssetExecutionContext, AssetKey, AssetSpec, Config, Definitions, MaterializeResult, MetadataValue,
                     asset, asset_check, multi_asset)
from pydantic import Field

from assets.common import column_schema, table_metadata
from assets.standardize import FLIGHTS_KEY
from pipelines.core import delta
from pipelines.standardize import FLIGHTS as STANDARDIZED_FLIGHTS
from pipelines.stream import analytics
from pipelines.stream.landing import (QUARANTINE, RAW, STANDARDIZED, STANDARDIZED_SCHEMA, BatchPlan, LandingResult,
                                      ShardRange, committed_state, land, plan_next)
from pipelines.stream.transports import RECORD_SCHEMA
from pipelines.stream.windows import WINDOW_SCHEMA
from resources.lake import LakeResource
from resources.stream import StreamResource

GROUP = "stream"
RAW_KEY = AssetKey.from_user_string(RAW)
STANDARDIZED_KEY = AssetKey.from_user_string(STANDARDIZED)
WINDOWS_KEY = AssetKey.from_user_string(analytics.WINDOWS_TABLE)
ANOMALIES_KEY = AssetKey.from_user_string(analytics.ANOMALIES_TABLE)
FLIGHT_WEATHER_KEY = AssetKey.from_user_string(analytics.FLIGHT_WEATHER_TABLE)
LANDING_OP = "land_telemetry"

MAX_QUARANTINE_SHARE = 0.05
"""Above this share of a batch's records in quarantine, the batch's check fails: the producer is broken."""
MAX_FLAG_RATE = 0.05
"""Above this share of events flagged, the detector is mis-tuned or the sensors are failing wholesale."""


class ShardRangeConfig(Config):
    shard: str
    after: str | None = Field(default=None, description="Exclusive start; empty for the start of the shard.")
    upto: str = Field(description="Inclusive end.")


class LandingConfig(Config):
    """The batch to land, as the sensor plans it; batch 0 plans the next batch from what the lake holds."""

    batch: int = Field(default=0, description="Batch number; 0: plan from the lake's committed state.")
    ranges: list[ShardRangeConfig] = Field(default=[], description="Per shard, the sequence range to land.")

    def plan(self) -> BatchPlan:
        return BatchPlan(self.batch, tuple(ShardRange(r.shard, r.after, r.upto) for r in self.ranges))


def _total_rows(lake, rel: str) -> int:
    table = delta.open_table(lake, rel)
    if table is None:
        return 0
    actions = pl.DataFrame(table.get_add_actions(flatten=True))
    return int(actions["num_records"].sum()) if "num_records" in actions.columns else 0


def _one_row_per_event(lake, dates: list[str]) -> tuple[bool, int, int]:
    """(passed, repeated event ids, repeated (shard, sequence)) over the dates a batch touched."""
    if not dates:
        return True, 0, 0
    days = [dt.date.fromisoformat(d) for d in dates]
    rows = delta.scan(lake, STANDARDIZED).filter(pl.col("date").is_in(days)).select("event_id", "shard", "sequence")
    counts = rows.select(
        events=pl.col("event_id").is_duplicated().sum(),
        records=pl.struct("shard", "sequence").is_duplicated().sum(),
    ).collect()
    events, records = int(counts["events"][0]), int(counts["records"][0])
    return events == 0 and records == 0, events, records


@multi_asset(
    name=LANDING_OP,
    specs=[
        AssetSpec(RAW_KEY, group_name=GROUP, kinds={"parquet"}, skippable=True,
                  description="Telemetry records as delivered, one Parquet file per shard, arrival hour and batch."),
        AssetSpec(STANDARDIZED_KEY, group_name=GROUP, deps=[RAW_KEY], kinds={"delta", "polars"}, skippable=True,
                  description="Telemetry events, typed and deduplicated, one row per event; bad records in "
                              "quarantine."),
    ],
    check_specs=[
        AssetCheckSpec("quarantine_share", asset=STANDARDIZED_KEY,
                       description=f"At most {MAX_QUARANTINE_SHARE:.0%} of a batch's records go to quarantine."),
        AssetCheckSpec("one_row_per_event", asset=STANDARDIZED_KEY,
                       description="No event id and no (shard, sequence) twice in the dates the batch touched."),
    ],
    pool="telemetry_landing",
)
def land_telemetry(context: AssetExecutionContext, config: LandingConfig, lake: LakeResource,
                   stream: StreamResource):
    """Land one micro-batch of the telemetry stream into the raw zone and `standardized/telemetry`, exactly once."""
    the_lake = lake.get_lake()
    source = stream.get_source()
    if config.batch:
        plan = config.plan()
    else:
        plan = plan_next(source, committed_state(the_lake), max_records=stream.max_records)
        if plan is None:
            context.log.info("no new telemetry records: nothing to land")
            yield from _nothing_landed("no new records")
            return
    result = land(the_lake, source, plan, run_id=context.run_id, lateness=stream.lateness)
    if result.skipped:
        context.log.info(f"batch {plan.batch} is already committed: nothing to do (a re-run of a landed batch)")
        yield from _nothing_landed(f"batch {plan.batch} was already committed")
        return
    context.log.info(
        f"batch {result.batch}: {result.records:,} records, {result.landed:,} events landed, "
        f"{result.duplicates:,} duplicates, {result.quarantined_total:,} quarantined, "
        f"{result.records / max(result.seconds, 1e-9):,.0f} records/s"
    )
    yield from landing_results(the_lake, result)


def _nothing_landed(why: str):
    """No batch, so no materialization; the checks still report (on an empty batch they hold)."""
    for name in ("quarantine_share", "one_row_per_event"):
        yield AssetCheckResult(asset_key=STANDARDIZED_KEY, check_name=name, passed=True, metadata={"batch": why})


def landing_results(the_lake, result: LandingResult):
    """The two materializations of a landed batch (and its checks): the asset's, and `tributary stream land`'s."""
    files = "\n".join(f"- `{f}`" for f in result.raw_files[:20])
    yield MaterializeResult(
        asset_key=RAW_KEY,
        metadata={
            "dagster/row_count": result.records,
            "dagster/uri": MetadataValue.path(the_lake.uri(RAW)),
            "dagster/column_schema": column_schema({**RECORD_SCHEMA, "batch": pl.Int64()}),
            "batch": result.batch,
            "files": MetadataValue.md(files or "none"),
        },
    )
    share = result.quarantined_total / result.records if result.records else 0.0
    unique, repeated_events, repeated_records = _one_row_per_event(the_lake, result.dates)
    metadata = table_metadata(rows=_total_rows(the_lake, STANDARDIZED), uri=the_lake.uri(STANDARDIZED),
                              schema=STANDARDIZED_SCHEMA, preview=result.preview)
    metadata.update({
        "delta_version": result.standardized_version,
        "batch": result.batch,
        "records_in_batch": result.records,
        "landed_in_batch": result.landed,
        "duplicates_in_batch": result.duplicates,
        "out_of_order_in_batch": result.out_of_order,
        "quarantined_in_batch": MetadataValue.json(result.quarantined),
        "quarantine_uri": MetadataValue.path(the_lake.uri(QUARANTINE)),
        "max_event_time": MetadataValue.json(result.max_event_time),
        "seconds": round(result.seconds, 3),
    })
    yield MaterializeResult(
        asset_key=STANDARDIZED_KEY,
        metadata=metadata,
        check_results=[
            AssetCheckResult(check_name="quarantine_share", passed=share <= MAX_QUARANTINE_SHARE,
                             severity=AssetCheckSeverity.ERROR,
                             metadata={"share": round(share, 5),
                                       "quarantined": MetadataValue.json(result.quarantined)}),
            AssetCheckResult(check_name="one_row_per_event", passed=unique,
                             metadata={"repeated_event_ids": repeated_events, "repeated_records": repeated_records}),
        ],
    )


@asset(
    key=WINDOWS_KEY,
    deps=[STANDARDIZED_KEY],
    group_name=GROUP,
    kinds={"delta", "polars"},
    description="Per station, rolling 1 h and 3 h windows in event time: count, mean, min, max, vector-mean wind.",
)
def telemetry_windows(context: AssetExecutionContext, lake: LakeResource, stream: StreamResource) -> MaterializeResult:
    """Recompute the windows of the dates the new landing batches touched."""
    the_lake = lake.get_lake()
    result = analytics.update_windows(the_lake, lateness=stream.lateness)
    if result.skipped:
        context.log.info(f"windows already reflect landing batch {result.batch}")
        return MaterializeResult(metadata={"batch": result.batch, "up_to_date": True})
    context.log.info(f"windows of {result.first_date}..{result.last_date} rewritten: {result.rows:,} rows")
    return MaterializeResult(metadata=windows_metadata(the_lake, result))


def windows_metadata(the_lake, result: analytics.AnalyticsResult) -> dict:
    """What a windows update reports: the asset's, and `tributary stream land`'s."""
    metadata = table_metadata(rows=_total_rows(the_lake, analytics.WINDOWS_TABLE),
                              uri=the_lake.uri(analytics.WINDOWS_TABLE), schema=WINDOW_SCHEMA, preview=result.preview)
    metadata.update({"delta_version": result.version, "batch": result.batch, "rows_rewritten": result.rows,
                     "first_date": result.first_date, "last_date": result.last_date})
    return metadata


@asset(
    key=ANOMALIES_KEY,
    deps=[STANDARDIZED_KEY],
    group_name=GROUP,
    kinds={"delta", "polars"},
    check_specs=[AssetCheckSpec("flag_rate", asset=ANOMALIES_KEY,
                                description=f"At most {MAX_FLAG_RATE:.0%} of the events scored in a run are flagged.")],
    description="Per event, the online detector's score, flag and kind (spike, stuck, gap), beside the fixed-threshold "
                "baseline's flag.",
)
def telemetry_anomalies(
    context: AssetExecutionContext, lake: LakeResource, stream: StreamResource
) -> MaterializeResult:
    """Feed the online detector the events that passed the watermark; append its verdicts."""
    the_lake = lake.get_lake()
    result = analytics.update_anomalies(the_lake, lateness=stream.lateness)
    if result.skipped:
        context.log.info(f"anomalies already reflect landing batch {result.batch}")
        return MaterializeResult(metadata={"batch": result.batch, "up_to_date": True},
                                 check_results=[AssetCheckResult(check_name="flag_rate", passed=True,
                                                                 metadata={"scored": 0})])
    flagged = sum(result.flagged.values())
    rate = flagged / result.rows if result.rows else 0.0
    context.log.info(f"{result.rows:,} events scored, {flagged} flagged {result.flagged}")
    return MaterializeResult(
        metadata=anomalies_metadata(the_lake, result),
        check_results=[AssetCheckResult(check_name="flag_rate", passed=rate <= MAX_FLAG_RATE,
                                        severity=AssetCheckSeverity.WARN,
                                        metadata={"rate": round(rate, 5), "scored": result.rows})],
    )


def anomalies_metadata(the_lake, result: analytics.AnalyticsResult) -> dict:
    """What an anomalies update reports: the asset's, and `tributary stream land`'s."""
    metadata = table_metadata(rows=_total_rows(the_lake, analytics.ANOMALIES_TABLE),
                              uri=the_lake.uri(analytics.ANOMALIES_TABLE), schema=analytics.ANOMALY_SCHEMA,
                              preview=result.preview if result.preview is not None else pl.DataFrame())
    metadata.update({"delta_version": result.version, "batch": result.batch, "scored_in_run": result.rows,
                     "flagged_in_run": MetadataValue.json(result.flagged)})
    return metadata


@asset_check(asset=STANDARDIZED_KEY,
             description="Over the whole table: one row per event id and per (shard, sequence).")
def telemetry_keys_unique(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
    the_lake = lake.get_lake()
    if delta.open_table(the_lake, STANDARDIZED) is None:
        return AssetCheckResult(passed=True, metadata={"rows": 0})
    counts = (
        delta.scan(the_lake, STANDARDIZED)
        .select(rows=pl.len(), events=pl.col("event_id").n_unique(),
                records=pl.struct("shard", "sequence").n_unique())
        .collect()
        .row(0, named=True)
    )
    passed = counts["rows"] == counts["events"] == counts["records"]
    return AssetCheckResult(passed=passed, metadata={k: int(v) for k, v in counts.items()})


@asset_check(asset=WINDOWS_KEY, description="Every window has min <= mean <= max and at least one event.")
def telemetry_windows_consistent(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
    the_lake = lake.get_lake()
    if delta.open_table(the_lake, analytics.WINDOWS_TABLE) is None:
        return AssetCheckResult(passed=True, metadata={"rows": 0})
    eps = 1e-9
    broken = [
        (pl.col(f"{m}_min") > pl.col(f"{m}_mean") + eps) | (pl.col(f"{m}_mean") > pl.col(f"{m}_max") + eps)
        for m in ("temp", "dewp", "humid", "pressure", "wind_speed")
    ]
    bad = (
        delta.scan(the_lake, analytics.WINDOWS_TABLE)
        .select(rows=pl.len(), bad=(pl.any_horizontal(broken).fill_null(False) | (pl.col("count") == 0)).sum())
        .collect()
        .row(0, named=True)
    )
    return AssetCheckResult(passed=bad["bad"] == 0, metadata={k: int(v) for k, v in bad.items()})


@asset(
    key=FLIGHT_WEATHER_KEY,
    deps=[FLIGHTS_KEY, STANDARDIZED_KEY, ANOMALIES_KEY],
    group_name=GROUP,
    kinds={"delta", "polars"},
    description="Departures per origin and UTC hour beside that hour's telemetry and anomaly verdict at the origin.",
)
def flight_weather_telemetry(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    """Join the stream to the flights: station = origin, event hour = scheduled departure hour (UTC)."""
    the_lake = lake.get_lake()
    missing = [rel for rel in (STANDARDIZED_FLIGHTS, STANDARDIZED, analytics.ANOMALIES_TABLE)
               if delta.open_table(the_lake, rel) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not in the lake yet: materialize it first")
    joined = analytics.flight_weather(delta.scan(the_lake, STANDARDIZED_FLIGHTS), delta.scan(the_lake, STANDARDIZED),
                                      delta.scan(the_lake, analytics.ANOMALIES_TABLE))
    version = delta.overwrite(the_lake, analytics.FLIGHT_WEATHER_TABLE, joined)
    metadata = table_metadata(rows=joined.height, uri=the_lake.uri(analytics.FLIGHT_WEATHER_TABLE),
                              schema=joined.schema, preview=joined.head(5))
    metadata["delta_version"] = version
    metadata["hours_with_anomaly"] = int(joined["anomaly"].fill_null(False).sum())
    return MaterializeResult(metadata=metadata)


stream_assets = [land_telemetry, telemetry_windows, telemetry_anomalies]
stream_checks = [telemetry_keys_unique, telemetry_windows_consistent]
defs = Definitions(assets=[*stream_assets, flight_weather_telemetry], asset_checks=stream_checks)
