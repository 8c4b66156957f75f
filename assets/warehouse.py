"""Warehouse group: the star schema (Delta) that analysts query with `tributary query`."""

import datetime as dt
import io

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Definitions,
    MaterializeResult,
    asset,
)

from assets.automation import follows_upstream
from assets.common import chart_metadata, delta_metadata, quality_check, quality_check_specs, write_days
from assets.partitions import daily_partitions
from pipelines.core import delta
from pipelines.warehouse import suites
from pipelines.warehouse import star as warehouse
from pipelines.core.lake import Lake
from pipelines.core.quality import BatchValidator, validate
from resources.lake import LakeResource

GROUP = "warehouse"
CHARTS = "warehouse/_charts"
STD_FLIGHTS = AssetKey(["standardized", "flights"])
DIMENSIONS = [AssetKey(["warehouse", t]) for t in ("dim_airport", "dim_carrier", "dim_plane", "dim_date")]


def _codes(the_lake: Lake, *columns: str) -> list[str]:
    """Distinct non-null values of some columns of standardized/flights (a projection-only scan)."""
    flights = delta.scan(the_lake, "standardized/flights")
    return (
        pl.concat([flights.select(pl.col(c).alias("code")) for c in columns])
        .drop_nulls().unique().collect(engine="streaming")["code"].to_list()
    )


def _dimension(name: str, key: str, build, upstream: str):
    @asset(
        key=["warehouse", name],
        group_name=GROUP,
        deps=[AssetKey(["standardized", upstream]), STD_FLIGHTS],
        kinds={"polars", "delta"},
        automation_condition=follows_upstream(),
        check_specs=quality_check_specs(["warehouse", name]),
        description=f"Dimension `{name}`, MERGE-upserted on `{key}`; codes the flights use but the reference lacks "
                    "are kept as unknown members.",
    )
    def _dim(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
        the_lake = lake.get_lake()
        df = build(the_lake, delta.scan(the_lake, f"standardized/{upstream}").collect())
        version = delta.merge(the_lake, f"warehouse/{name}", df, keys=[key])
        report = validate(df, name, suites.dimension(key))
        return MaterializeResult(
            metadata=delta_metadata(rows=df.height, uri=the_lake.uri(f"warehouse/{name}"), version=version,
                                    schema=df.schema, preview=df),
            check_results=[quality_check(report)],
        )

    return _dim


dimensions = [
    _dimension("dim_airport", "faa", lambda lk, df: warehouse.dim_airport(df, include_codes=_codes(lk, "origin", "dest")),
               "airports"),
    _dimension("dim_plane", "tailnum", lambda lk, df: warehouse.dim_plane(df, include_tailnums=_codes(lk, "tailnum")),
               "planes"),
    _dimension("dim_carrier", "carrier", lambda lk, df: warehouse.dim_carrier(df), "airlines"),
]


@asset(
    key=["warehouse", "dim_date"],
    group_name=GROUP,
    kinds={"polars", "delta"},
    check_specs=quality_check_specs(["warehouse", "dim_date"]),
    description="Calendar dimension over the partitions' range: weekday, quarter, US federal holidays.",
)
def dim_date(lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    keys = daily_partitions.get_partition_keys()
    df = warehouse.dim_date(keys[0], keys[-1])
    version = delta.overwrite(the_lake, "warehouse/dim_date", df)
    return MaterializeResult(
        metadata=delta_metadata(rows=df.height, uri=the_lake.uri("warehouse/dim_date"), version=version,
                                schema=df.schema, preview=df),
        check_results=[quality_check(validate(df, "dim_date", suites.dimension("date")))],
    )


@asset(
    key=["warehouse", "fact_flights"],
    group_name=GROUP,
    deps=[STD_FLIGHTS, *DIMENSIONS],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"polars", "delta"},
    automation_condition=follows_upstream(),
    check_specs=quality_check_specs(["warehouse", "fact_flights"]),
    description="One row per flight, keyed to the dimensions; partition-scoped overwrite by flight_date.",
)
def fact_flights(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    members = {
        "carriers": delta.scan(the_lake, "warehouse/dim_carrier").select("carrier").collect()["carrier"].to_list(),
        "airports": delta.scan(the_lake, "warehouse/dim_airport").select("faa").collect()["faa"].to_list(),
        "tailnums": delta.scan(the_lake, "warehouse/dim_plane").select("tailnum").collect()["tailnum"].to_list(),
    }
    checker = BatchValidator("fact_flights", lambda e: suites.fact_flights(e, **members))

    def build(chunk: list[dt.date]) -> pl.DataFrame:
        flights = delta.scan(the_lake, "standardized/flights").filter(pl.col("flight_date").is_between(chunk[0], chunk[-1]))
        return warehouse.fact_flights(flights).collect()

    written = write_days(context, the_lake, "warehouse/fact_flights", build, partition_by="flight_date", checker=checker)
    return MaterializeResult(metadata=written.metadata(), check_results=[quality_check(checker.report())])


def _chart(df: pl.DataFrame, x: str, y: str, title: str, *, kind: str = "line") -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


@asset(
    key=["warehouse", "route_daily_kpis"],
    group_name=GROUP,
    deps=[AssetKey(["warehouse", "fact_flights"])],
    partitions_def=daily_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    kinds={"polars", "delta"},
    automation_condition=follows_upstream(),
    check_specs=quality_check_specs(["warehouse", "route_daily_kpis"]),
    description="Per day and route: flights, cancellations, mean delays, late share, p90 arrival delay.",
)
def route_daily_kpis(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    frames: list[pl.DataFrame] = []
    checker = BatchValidator("route_daily_kpis", suites.route_daily_kpis)

    def build(chunk: list[dt.date]) -> pl.DataFrame:
        fact = delta.scan(the_lake, "warehouse/fact_flights").filter(pl.col("flight_date").is_between(chunk[0], chunk[-1]))
        df = warehouse.route_daily_kpis(fact).collect()
        frames.append(df.group_by("flight_date").agg(pl.col("flights").sum()))
        return df

    written = write_days(context, the_lake, "warehouse/route_daily_kpis", build, partition_by="flight_date",
                         checker=checker)
    daily = pl.concat(frames).sort("flight_date")
    metadata = written.metadata()
    metadata.update(chart_metadata(the_lake, CHARTS, "route_daily_kpis",
                                   _chart(daily, "flight_date", "flights", "Flights per day")))
    return MaterializeResult(metadata=metadata, check_results=[quality_check(checker.report())])


@asset(
    key=["warehouse", "carrier_monthly_kpis"],
    group_name=GROUP,
    deps=[AssetKey(["warehouse", "fact_flights"])],
    kinds={"polars", "delta"},
    automation_condition=follows_upstream(),
    check_specs=quality_check_specs(["warehouse", "carrier_monthly_kpis"]),
    description="Per carrier and month: flights, cancellations, on-time share, mean delays (recomputed whole).",
)
def carrier_monthly_kpis(lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    df = warehouse.carrier_monthly_kpis(delta.scan(the_lake, "warehouse/fact_flights")).collect(engine="streaming")
    df = df.sort("carrier", "year", "month")
    version = delta.overwrite(the_lake, "warehouse/carrier_monthly_kpis", df)
    by_carrier = df.group_by("carrier").agg(
        (pl.col("on_time_share") * pl.col("flights")).sum() / pl.col("flights").sum()
    ).sort("carrier")
    metadata = delta_metadata(rows=df.height, uri=the_lake.uri("warehouse/carrier_monthly_kpis"), version=version,
                              schema=df.schema, preview=df)
    metadata.update(chart_metadata(the_lake, CHARTS, "carrier_monthly_kpis",
                                   _chart(by_carrier, "carrier", "on_time_share", "On-time share by carrier", kind="bar")))
    return MaterializeResult(metadata=metadata,
                             check_results=[quality_check(validate(df, "carrier_monthly_kpis", suites.carrier_monthly_kpis))])


defs = Definitions(assets=[*dimensions, dim_date, fact_flights, route_daily_kpis, carrier_monthly_kpis])
