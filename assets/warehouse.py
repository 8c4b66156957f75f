"""Warehouse group: the star schema (Delta) that analysts query with `tributary query`."""

import datetime as dt

import polars as pl
from dagster import AssetExecutionContext, AssetKey, Definitions, MaterializeResult, MetadataValue

from assets.common import delta_metadata, delta_table, quality_check, write_months
from assets.partitions import daily_partitions, run_months
from pipelines.core import delta
from pipelines.standardize import FLIGHTS as STANDARDIZED_FLIGHTS, standardized
from pipelines.warehouse import (CARRIER_MONTHLY_KPIS, DASHBOARD, DIM_AIRPORT, DIM_CARRIER, DIM_DATE, DIM_PLANE,
                                 FACT_FLIGHTS, ROUTE_DAILY_KPIS, suites)
from pipelines.warehouse import star as warehouse
from pipelines.core.lake import Lake
from pipelines.core.checks import SuiteChecker, check
from resources.lake import LakeResource

GROUP = "warehouse"
STD_FLIGHTS = AssetKey.from_user_string(STANDARDIZED_FLIGHTS)
DIM_DATE_KEY = AssetKey.from_user_string(DIM_DATE)
DIMENSIONS = [*(AssetKey.from_user_string(rel) for rel in (DIM_AIRPORT, DIM_CARRIER, DIM_PLANE)), DIM_DATE_KEY]
FACT_FLIGHTS_KEY = AssetKey.from_user_string(FACT_FLIGHTS)
ROUTE_KPIS_KEY = AssetKey.from_user_string(ROUTE_DAILY_KPIS)
CARRIER_KPIS_KEY = AssetKey.from_user_string(CARRIER_MONTHLY_KPIS)


def _codes(the_lake: Lake, *columns: str, window: tuple[dt.date, dt.date] | None = None) -> list[str]:
    """Distinct non-null values of some columns of standardized/flights (a projection-only scan), of the run's
    months only when it has some: the dimension is upserted, so members of other months stay."""
    flights = delta.scan(the_lake, STANDARDIZED_FLIGHTS)
    if window is not None:
        flights = flights.filter(pl.col("flight_date").is_between(*window))
    return (
        pl.concat([flights.select(pl.col(c).alias("code")) for c in columns])
        .drop_nulls().unique().collect(engine="streaming")["code"].to_list()
    )


def _dimension(rel: str, key: str, build, upstream: str):
    asset_key, name = AssetKey.from_user_string(rel), rel.split("/")[-1]

    @delta_table(
        asset_key, group=GROUP, deps=[AssetKey.from_user_string(standardized(upstream)), STD_FLIGHTS],
        description=f"Dimension `{name}`, MERGE-upserted on `{key}`; codes the flights use but the reference lacks "
                    "are kept as unknown members.",
    )
    def _dim(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        the_lake = lake.get_lake()
        df = build(the_lake, delta.scan(the_lake, standardized(upstream)).collect(), run_months(context))
        version = delta.merge(the_lake, rel, df, keys=[key], only_changed=True)
        report = check(df, name, suites.dimension(key))
        return MaterializeResult(
            metadata=delta_metadata(rows=df.height, uri=the_lake.uri(rel), version=version,
                                    schema=df.schema, preview=df),
            check_results=[quality_check(report)],
        )

    return _dim


dimensions = [
    _dimension(DIM_AIRPORT, "faa", lambda lk, df, window: warehouse.dim_airport(
        df, include_codes=_codes(lk, "origin", "dest", window=window)), "airports"),
    _dimension(DIM_PLANE, "tailnum", lambda lk, df, window: warehouse.dim_plane(
        df, include_tailnums=_codes(lk, "tailnum", window=window)), "planes"),
    _dimension(DIM_CARRIER, "carrier", lambda lk, df, window: warehouse.dim_carrier(df), "airlines"),
]


@delta_table(DIM_DATE_KEY, group=GROUP, follows=False,
             description="Calendar dimension over the partitions' range: weekday, quarter, US federal holidays.")
def dim_date(lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    keys = daily_partitions.get_partition_keys()
    df = warehouse.dim_date(keys[0], keys[-1])
    version = delta.overwrite(the_lake, DIM_DATE, df)
    return MaterializeResult(
        metadata=delta_metadata(rows=df.height, uri=the_lake.uri(DIM_DATE), version=version,
                                schema=df.schema, preview=df),
        check_results=[quality_check(check(df, "dim_date", suites.dimension("date")))],
    )


@delta_table(FACT_FLIGHTS_KEY, group=GROUP, deps=[STD_FLIGHTS, *DIMENSIONS], monthly=True,
             description="One row per flight, keyed to the dimensions; a month's run replaces its days (flight_date).")
def fact_flights(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    members = {
        "carriers": delta.scan(the_lake, DIM_CARRIER).select("carrier").collect()["carrier"].to_list(),
        "airports": delta.scan(the_lake, DIM_AIRPORT).select("faa").collect()["faa"].to_list(),
        "tailnums": delta.scan(the_lake, DIM_PLANE).select("tailnum").collect()["tailnum"].to_list(),
    }
    checker = SuiteChecker("fact_flights", lambda e: suites.fact_flights(e, **members))

    def build(chunk: list[dt.date]) -> pl.DataFrame:
        flights = delta.scan(the_lake, STANDARDIZED_FLIGHTS)
        return warehouse.fact_flights(flights.filter(pl.col("flight_date").is_between(chunk[0], chunk[-1]))).collect()

    written = write_months(context, the_lake, FACT_FLIGHTS, build, column="flight_date", checker=checker)
    return MaterializeResult(metadata=written.metadata(), check_results=[quality_check(checker.report())])


@delta_table(ROUTE_KPIS_KEY, group=GROUP, deps=[FACT_FLIGHTS_KEY], monthly=True,
             description="Per day and route: flights, cancellations, mean delays, late share, p90 arrival delay.")
def route_daily_kpis(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    checker = SuiteChecker("route_daily_kpis", suites.route_daily_kpis)

    def build(chunk: list[dt.date]) -> pl.DataFrame:
        fact = delta.scan(the_lake, FACT_FLIGHTS)
        return warehouse.route_daily_kpis(fact.filter(pl.col("flight_date").is_between(chunk[0], chunk[-1]))).collect()

    written = write_months(context, the_lake, ROUTE_DAILY_KPIS, build, column="flight_date", checker=checker)
    metadata = written.metadata()
    metadata["dashboard"] = MetadataValue.path(the_lake.uri(DASHBOARD))
    return MaterializeResult(metadata=metadata, check_results=[quality_check(checker.report())])


@delta_table(
    CARRIER_KPIS_KEY, group=GROUP, deps=[FACT_FLIGHTS_KEY],
    description="Per carrier and month: flights, cancellations, on-time share, mean delays (the run's months "
                "replaced; a run over no partitions recomputes it whole).",
)
def carrier_monthly_kpis(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    window = run_months(context) if delta.open_table(the_lake, CARRIER_MONTHLY_KPIS) is not None else None
    fact = delta.scan(the_lake, FACT_FLIGHTS)
    if window is not None:
        fact = fact.filter(pl.col("flight_date").is_between(*window))
    df = warehouse.carrier_monthly_kpis(fact).collect(engine="streaming").sort("carrier", "year", "month")
    if window is None:
        version = delta.overwrite(the_lake, CARRIER_MONTHLY_KPIS, df)
    else:
        version = delta.overwrite_months(the_lake, CARRIER_MONTHLY_KPIS, df, first=window[0], last=window[1])
        context.log.info(f"carrier_monthly_kpis: months {window[0]:%Y-%m} to {window[1]:%Y-%m} replaced")
    metadata = delta_metadata(rows=df.height, uri=the_lake.uri(CARRIER_MONTHLY_KPIS), version=version,
                              schema=df.schema, preview=df)
    # The charts are the analysts' dashboard's (plotly, `warehouse/kpi_dashboard`): a matplotlib PNG per run cost
    # a scheduled day 2 s of its work.
    metadata["dashboard"] = MetadataValue.path(the_lake.uri(DASHBOARD))
    report = check(df, "carrier_monthly_kpis", suites.carrier_monthly_kpis)
    return MaterializeResult(metadata=metadata, check_results=[quality_check(report)])


defs = Definitions(assets=[*dimensions, dim_date, fact_flights, route_daily_kpis, carrier_monthly_kpis])
