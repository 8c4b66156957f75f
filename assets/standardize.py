"""Standardize group: the raw zone typed, in UTC, deduplicated and enriched as Delta; bad rows to quarantine."""

import datetime as dt
from collections.abc import Callable

import polars as pl
from dagster import AssetCheckResult, AssetExecutionContext, AssetKey, Config, Definitions, MaterializeResult
from pydantic import Field

from assets.common import delta_metadata, delta_table, quality_check, quarantine_metadata, write_months
from assets.partitions import from_days
from pipelines.core import delta
from pipelines.warehouse import suites
from pipelines.standardize import FLIGHTS, REFERENCE_TABLES, WEATHER, quarantined, standardized
from pipelines.standardize import transforms as standardize
from pipelines.core.lake import Lake
from pipelines.core.checks import SuiteChecker, check
from pipelines.extract.raw import PARTITION_DATE, scan_days, scan_snapshot
from resources.lake import LakeResource

GROUP = "standardize"
QUARANTINE_PARTITION = "partition_date"
WEATHER_KEY = AssetKey.from_user_string(WEATHER)
FLIGHTS_KEY = AssetKey.from_user_string(FLIGHTS)


class QuarantineConfig(Config):
    max_quarantine_share: float = Field(
        default=0.01, description="Block the warehouse when more than this share of a run's rows is quarantined."
    )


def _quarantine_with_day(quarantine: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """Tag each quarantined row with the raw partition it came from (through the source id in its raw JSON)."""
    ids = raw.select(pl.col("id").alias("_id"), pl.col(PARTITION_DATE).alias(QUARANTINE_PARTITION))
    return (
        quarantine.with_columns(pl.col("raw").str.json_path_match("$.id").cast(pl.Int64).alias("_id"))
        .join(ids, on="_id", how="left")
        .drop("_id")
    )


def _share_check(good: int, bad: int, limit: float) -> AssetCheckResult:
    share = bad / (good + bad) if good + bad else 0.0
    return AssetCheckResult(
        check_name="quarantine_share",
        passed=share <= limit,
        description=f"{bad:,} of {good + bad:,} rows quarantined ({share:.3%}); the limit is {limit:.2%}",
        metadata={"quarantine_share": share, "limit": limit},
    )


def _reference_asset(table: str, fn, suite):
    key = AssetKey.from_user_string(standardized(table))

    @delta_table(key, group=GROUP, deps=[AssetKey(["raw", table])],
                 description=f"The `{table}` reference table typed and deduplicated (Delta); bad rows to quarantine.")
    def _standardize(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        the_lake = lake.get_lake()
        result = fn(scan_snapshot(the_lake, table).collect(), run_id=context.run_id)
        version = delta.overwrite(the_lake, standardized(table), result.good)
        delta.overwrite(the_lake, quarantined(table), result.quarantine)
        metadata = delta_metadata(rows=result.good.height, uri=the_lake.uri(standardized(table)), version=version,
                                  schema=result.good.schema, preview=result.good)
        metadata.update(quarantine_metadata(result.quarantine))
        report = check(result.good, f"standardized_{table}", suite)
        return MaterializeResult(metadata=metadata, check_results=[quality_check(report)])

    return _standardize


def _standardize_range(
    context: AssetExecutionContext,
    the_lake: Lake,
    table: str,
    *,
    column: str,
    transform: Callable[[pl.DataFrame, list[dt.date]], standardize.Standardized],
    suite,
    max_quarantine_share: float,
) -> MaterializeResult:
    """The run's months: the raw days extracted so far -> `transform` -> range overwrite of the table and of its
    quarantine (in the same commit groups); one quality report and one quarantine share for the whole run."""
    bad_chunks: list[pl.DataFrame] = []
    checker = SuiteChecker(f"standardized_{table}", suite)

    def build(days: list[dt.date]) -> dict[str, pl.DataFrame]:
        missing: list[dt.date] = []
        raw = scan_days(the_lake, table, days, missing_ok=True, skipped=missing).collect()
        if missing:
            context.log.warning(f"raw/{table}: {len(missing)} of the {len(days)} days from {days[0]} to {days[-1]} "
                                f"are not extracted ({', '.join(d.isoformat() for d in missing[:3])}"
                                f"{', ...' if len(missing) > 3 else ''}); the month holds the others")
        result = transform(raw.drop(PARTITION_DATE), days)
        bad = _quarantine_with_day(result.quarantine, raw)
        bad_chunks.append(bad)
        return {standardized(table): result.good, quarantined(table): bad}

    written = write_months(context, the_lake, standardized(table), build, column=column, checker=checker,
                           also={quarantined(table): QUARANTINE_PARTITION},
                           note=lambda: f", {sum(q.height for q in bad_chunks):,} quarantined")
    bad = pl.concat(bad_chunks)
    metadata = written.metadata()
    metadata.update(quarantine_metadata(bad))
    return MaterializeResult(
        metadata=metadata,
        check_results=[quality_check(checker.report()), _share_check(written.rows, bad.height, max_quarantine_share)],
    )


@delta_table(WEATHER_KEY, group=GROUP, deps=[from_days(AssetKey(["raw", "weather"]))], monthly=True,
             blocking_share=True,
             description="Hourly weather at the NYC stations, typed, UTC, deduplicated (Delta, by month of obs_date).")
def standardized_weather(
    context: AssetExecutionContext, config: QuarantineConfig, lake: LakeResource
) -> MaterializeResult:
    return _standardize_range(
        context, lake.get_lake(), "weather", column="obs_date",
        transform=lambda raw, _: standardize.standardize_weather(raw, run_id=context.run_id),
        suite=suites.standardized_weather, max_quarantine_share=config.max_quarantine_share,
    )


@delta_table(
    FLIGHTS_KEY, group=GROUP, monthly=True, blocking_share=True,
    deps=[from_days(AssetKey(["raw", "flights"])), WEATHER_KEY,
          *(AssetKey.from_user_string(standardized(table)) for table in REFERENCE_TABLES)],
    description="One row per flight: local and UTC times, cancellations, delay classes, geography, weather, aircraft.",
)
def standardized_flights(
    context: AssetExecutionContext, config: QuarantineConfig, lake: LakeResource
) -> MaterializeResult:
    the_lake = lake.get_lake()
    refs = {name: delta.scan(the_lake, standardized(name)).collect() for name in REFERENCE_TABLES}

    def transform(raw: pl.DataFrame, chunk: list[dt.date]) -> standardize.Standardized:
        # A day's flights meet the weather of their scheduled hour, which can fall on the neighbouring day in UTC.
        weather = (
            delta.scan(the_lake, WEATHER)
            .filter(pl.col("obs_date").is_between(chunk[0] - dt.timedelta(days=1), chunk[-1] + dt.timedelta(days=1)))
            .collect()
        )
        return standardize.standardize_flights(raw, weather=weather, run_id=context.run_id, **refs)

    return _standardize_range(
        context, the_lake, "flights", column="flight_date", transform=transform,
        suite=suites.standardized_flights, max_quarantine_share=config.max_quarantine_share,
    )


reference_assets = [
    _reference_asset("airports", standardize.standardize_airports, suites.standardized_airports),
    _reference_asset("planes", standardize.standardize_planes, suites.standardized_planes),
    _reference_asset("airlines", standardize.standardize_airlines, suites.standardized_airlines),
]

defs = Definitions(assets=[*reference_assets, standardized_weather, standardized_flights])
