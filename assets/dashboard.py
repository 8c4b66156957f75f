"""The analysts' KPI dashboard: one self-contained HTML page in the lake, rebuilt when the KPIs change."""

import datetime as dt

from dagster import AssetExecutionContext, AssetKey, Definitions, MaterializeResult, MetadataValue, asset

from assets.automation import follows_upstream
from pipelines.ml.data import EVALUATIONS
from pipelines.standardize import FLIGHTS as STANDARDIZED_FLIGHTS
from pipelines.warehouse import CARRIER_MONTHLY_KPIS, DASHBOARD, ROUTE_DAILY_KPIS
from pipelines.warehouse.dashboard import CHARTS, gather, render
from resources.lake import LakeResource

KEY = AssetKey(["warehouse", "kpi_dashboard"])
READS = [AssetKey.from_user_string(rel) for rel in (CARRIER_MONTHLY_KPIS, ROUTE_DAILY_KPIS, STANDARDIZED_FLIGHTS,
                                                     EVALUATIONS)]


@asset(
    key=KEY,
    group_name="warehouse",
    deps=READS,
    kinds={"html", "plotly"},
    automation_condition=follows_upstream(),
    description="One HTML page for analysts, opened offline: on-time share by carrier and month, the most delayed "
                "routes, quarantine share, model quality over time. `tributary dashboard` prints where it is.",
)
def kpi_dashboard(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    data = gather(the_lake)
    page = render(data, generated_at=dt.datetime.now(dt.UTC), lake_uri=the_lake.uri())
    the_lake.publish_bytes(DASHBOARD, page.encode())
    shown = {name: frame is not None and not frame.is_empty() for name, frame in zip(
        CHARTS, (data.carrier_months, data.routes, data.quarantine, data.evaluations), strict=True)}
    context.log.info(f"dashboard {the_lake.uri(DASHBOARD)}: {sum(shown.values())}/{len(shown)} charts, "
                     f"{len(page) / 2**20:.1f} MiB")
    return MaterializeResult(metadata={
        "dagster/uri": MetadataValue.path(the_lake.uri(DASHBOARD)),
        "charts": MetadataValue.json(shown),
        "bytes": len(page),
    })


defs = Definitions(assets=[kpi_dashboard])
