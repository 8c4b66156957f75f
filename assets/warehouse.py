"""Warehouse group: the star schema (Delta) that analysts query with `tributary query`."""

import datetime as dt
import io

import polars as pl
from dagster import AssetExecutionContext, AssetKey, Definitions, MaterializeResult

from assets.common import chart_metadata, delta_metadata, delta_table, quality_check, write_months
from assets.partitions import daily_partitions
from pipelines.core import delta
from pipelines.standardize import FLIGHTS as STANDARDIZED_FLIGHTS, standardized
from pipelines.warehouse import (CARRIER_MONTHLY_KPIS, CHARTS, DIM_AIRPORT, DIM_CARRIER, DIM_DATE, DIM_PLANE,
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


def _codes(the_lake: Lake, *columns: str) -> list[str]:
    """Distinct non-null values of some columns of standardized/flights (a projection-only scan)."""
    flights = delta.scan(the_lake, STANDARDIZED_FLIGHTS)
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
        df = build(the_lake, delta.scan(the_lake, standardized(upstream)).collect())
        version = delta.merge(the_lake, rel, df, keys=[key])
        report = check(df, name, suites.dimension(key))
        return MaterializeResult(
            metadata=delta_metadata(rows=df.height, uri=the_lake.uri(rel), version=version,
                                    schema=df.schema, preview=df),
            check_results=[quality_check(report)],
        )

    return _dim


dimensions = [
    _dimension(DIM_AIRPORT, "faa", lambda lk, df: warehouse.dim_airport(df, include_codes=_codes(lk, "origin", "dest")),
               "airports"),
    _dimension(DIM_PLANE, "tailnum", lambda lk, df: warehouse.dim_plane(df, include_tailnums=_codes(lk, "tailnum")),
               "planes"),
    _dimension(DIM_CARRIER, "carrier", lambda lk, df: warehouse.dim_carrier(df), "airlines"),
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


def _chart(df: pl.DataFrame, x: str, y: str, title: str, *, kind: str = "line") -> bytes:
    import matplotlib  # noqa: PLC0415 - start-up: matplotlib.pyplot ~0.5 s

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - start-up: matplotlib.pyplot ~0.5 s

    fig, ax = plt.subplots(figsize=(7, 3), dpi=80)
    if kind == "bar":
        ax.bar(df[x].to_list(), df[y].to_list())
    else:
        ax.plot(df[x].to_list(), df[y].to_list())
    ax.set_title(title)
    fig.autofmt_xdate()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


@delta_table(ROUTE_KPIS_KEY, group=GROUP, deps=[FACT_FLIGHTS_KEY], monthly=True,
             description="Per day and route: flights, cancellations, mean delays, late share, p90 arrival delay.")
def route_daily_kpis(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    frames: list[pl.DataFrame] = []
    checker = SuiteChecker("route_daily_kpis", suites.route_daily_kpis)

    def build(chunk: list[dt.date]) -> pl.DataFrame:
        fact = delta.scan(the_lake, FACT_FLIGHTS)
        df = warehouse.route_daily_kpis(fact.filter(pl.col("flight_date").is_between(chunk[0], chunk[-1]))).collect()
        frames.append(df.group_by("flight_date").agg(pl.col("flights").sum()))
        return df

    written = write_months(context, the_lake, ROUTE_DAILY_KPIS, build, column="flight_date", checker=checker)
    daily = pl.concat(frames).sort("flight_date")
    metadata = written.metadata()
    metadata.update(chart_metadata(the_lake, CHARTS, "route_daily_kpis",
                                   _chart(daily, "flight_date", "flights", "Flights per day")))
    return MaterializeResult(metadata=metadata, check_results=[quality_check(checker.report())])


@delta_table(
    CARRIER_KPIS_KEY, group=GROUP, deps=[FACT_FLIGHTS_KEY],
    description="Per carrier and month: flights, cancellations, on-time share, mean delays (recomputed whole).",
)
def carrier_monthly_kpis(lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    df = warehouse.carrier_monthly_kpis(delta.scan(the_lake, FACT_FLIGHTS)).collect(engine="streaming")
    df = df.sort("carrier", "year", "month")
    version = delta.overwrite(the_lake, CARRIER_MONTHLY_KPIS, df)
    by_carrier = df.group_by("carrier").agg(
        (pl.col("on_time_share") * pl.col("flights")).sum() / pl.col("flights").sum()
    ).sort("carrier")
    metadata = delta_metadata(rows=df.height, uri=the_lake.uri(CARRIER_MONTHLY_KPIS), version=version,
                              schema=df.schema, preview=df)
    chart = _chart(by_carrier, "carrier", "on_time_share", "On-time share by carrier", kind="bar")
    metadata.update(chart_metadata(the_lake, CHARTS, "carrier_monthly_kpis", chart))
    report = check(df, "carrier_monthly_kpis", suites.carrier_monthly_kpis)
    return MaterializeResult(metadata=metadata, check_results=[quality_check(report)])


defs = Definitions(assets=[*dimensions, dim_date, fact_flights, route_daily_kpis, carrier_monthly_kpis])
