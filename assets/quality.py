"""The nightly quality job: each table's Great Expectations suite run by Great Expectations itself over the latest
month of data (the whole table for the small ones), with its full results kept in the lake's
`quality/expectation_results` Delta table and linked from the check's metadata.

The runs check the same suites in polars (`pipelines/core/checks.py`) in milliseconds; Great Expectations' own
engine and result format pay here, once a night, off the runs' path (on a year of `fact_flights` it costs 5 s
where polars takes 0.08 s).
"""

import datetime as dt
from collections.abc import Callable

import polars as pl
from dagster import (AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetKey, AssetSelection,
                     Definitions, MetadataValue, asset_check, define_asset_job)

from assets.automation import utc_schedule
from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.core.quality import results_frame, validate
from pipelines.standardize import FLIGHTS, REFERENCE_TABLES, WEATHER, standardized
from pipelines.warehouse import (CARRIER_MONTHLY_KPIS, DIM_AIRPORT, DIM_CARRIER, DIM_DATE, DIM_PLANE, FACT_FLIGHTS,
                                 ROUTE_DAILY_KPIS, suites)
from resources.lake import LakeResource

RESULTS = "quality/expectation_results"
WINDOW_DAYS = 31
"""A time table is checked over its latest month: the nightly job follows the days the runs wrote."""


def _fact_suite(the_lake: Lake):
    members = {
        "carriers": delta.scan(the_lake, DIM_CARRIER).select("carrier").collect()["carrier"].to_list(),
        "airports": delta.scan(the_lake, DIM_AIRPORT).select("faa").collect()["faa"].to_list(),
        "tailnums": delta.scan(the_lake, DIM_PLANE).select("tailnum").collect()["tailnum"].to_list(),
    }
    return lambda e: suites.fact_flights(e, **members)


SUITES: dict[str, tuple[str | None, Callable[[Lake], Callable]]] = {
    FLIGHTS: ("flight_date", lambda _: suites.standardized_flights),
    WEATHER: ("obs_date", lambda _: suites.standardized_weather),
    **{standardized(t): (None, lambda _, t=t: getattr(suites, f"standardized_{t}")) for t in REFERENCE_TABLES},
    FACT_FLIGHTS: ("flight_date", _fact_suite),
    ROUTE_DAILY_KPIS: ("flight_date", lambda _: suites.route_daily_kpis),
    CARRIER_MONTHLY_KPIS: (None, lambda _: suites.carrier_monthly_kpis),
    DIM_AIRPORT: (None, lambda _: suites.dimension("faa")),
    DIM_PLANE: (None, lambda _: suites.dimension("tailnum")),
    DIM_CARRIER: (None, lambda _: suites.dimension("carrier")),
    DIM_DATE: (None, lambda _: suites.dimension("date")),
}
"""Lake path -> (the date column of a time table, the suite given the lake)."""


def _latest(the_lake: Lake, rel: str, date_column: str | None) -> pl.DataFrame:
    frame = delta.scan(the_lake, rel)
    if date_column is None:
        return frame.collect()
    latest = frame.select(pl.col(date_column).max()).collect().item()
    if latest is None:  # an empty table: nothing to window
        return frame.collect()
    return frame.filter(pl.col(date_column) > latest - dt.timedelta(days=WINDOW_DAYS)).collect()


def _gx_check(rel: str):
    date_column, suite = SUITES[rel]
    name = rel.split("/")[-1]

    @asset_check(asset=AssetKey.from_user_string(rel), name="gx_suite", blocking=False,
                 description=f"Great Expectations itself over {'the latest month' if date_column else 'the table'}; "
                             f"the full results go to {RESULTS}.")
    def _check(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
        the_lake = lake.get_lake()
        if delta.open_table(the_lake, rel) is None:
            return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN,
                                    description=f"{rel} is not materialized yet: nothing to check")
        df = _latest(the_lake, rel, date_column)
        report = validate(df, name, suite(the_lake))
        rows = results_frame(report, table=rel, run_id=context.run.run_id, checked_at=dt.datetime.now(dt.UTC))
        version = delta.merge(the_lake, RESULTS, rows, keys=["run_id", "lake_table", "expectation", "columns"])
        context.log.info(report.summary())
        return AssetCheckResult(
            passed=report.success, severity=AssetCheckSeverity.WARN, description=report.summary(),
            metadata={
                "rows_checked": df.height,
                "results": MetadataValue.path(the_lake.uri(RESULTS)),
                "results_version": version,
                "results_query": MetadataValue.md(
                    "`tributary query \"SELECT expectation, columns, success, unexpected_count FROM "
                    f"quality_expectation_results WHERE run_id = '{context.run.run_id}' AND lake_table = '{rel}'\"`"),
            },
        )

    return _check


gx_checks = [_gx_check(rel) for rel in SUITES]

quality_nightly = define_asset_job(
    "quality_nightly", selection=AssetSelection.checks(*gx_checks),
    description="Every table's Great Expectations suite by Great Expectations, results kept in the lake.",
)
nightly_quality = utc_schedule("nightly_quality", quality_nightly, "0 3 * * *",
                               description="03:00 UTC, after the daily extract and its months.")

defs = Definitions(asset_checks=gx_checks, jobs=[quality_nightly], schedules=[nightly_quality])
