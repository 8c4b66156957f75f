"""The analysts' KPI dashboard: one self-contained HTML page (plotly.js inlined, so it opens offline and can be
mailed) with on-time share by carrier and month, the most delayed routes, the quarantine share of each table, and
the delay model's quality over time.

Pure: `gather` reads the lake's tables into frames, `render` turns them into the page. A section whose table is
not built yet says so instead of a chart.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import plotly.io as pio
import polars as pl
from plotly.offline import get_plotlyjs

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.ml.data import EVALUATIONS
from pipelines.warehouse import CARRIER_MONTHLY_KPIS, ROUTE_DAILY_KPIS

QUARANTINED_TABLES: Final = ("flights", "weather", "airports", "planes", "airlines")
TOP_ROUTES: Final = 20
MIN_ROUTE_FLIGHTS: Final = 100
"""A route needs this many flights to be ranked: a route flown twice is noise."""
CHARTS: Final = ("on-time", "route-delays", "quarantine", "model-quality")


@dataclass(frozen=True)
class DashboardData:
    carrier_months: pl.DataFrame | None
    routes: pl.DataFrame | None
    quarantine: pl.DataFrame | None
    evaluations: pl.DataFrame | None


def _read(lake: Lake, rel: str) -> pl.LazyFrame | None:
    return delta.scan(lake, rel) if delta.open_table(lake, rel) is not None else None


def route_delays(routes: pl.LazyFrame, *, top: int = TOP_ROUTES, min_flights: int = MIN_ROUTE_FLIGHTS) -> pl.DataFrame:
    """The `top` routes by mean arrival delay (weighted by each day's flights), among routes with enough flights."""
    return (
        routes.filter(pl.col("mean_arr_delay").is_not_null())
        .group_by("origin", "dest")
        .agg(flights=pl.col("flights").sum(),
             mean_arr_delay=(pl.col("mean_arr_delay") * pl.col("flights")).sum() / pl.col("flights").sum(),
             late_share=(pl.col("late_share") * pl.col("flights")).sum() / pl.col("flights").sum())
        .filter(pl.col("flights") >= min_flights)
        .sort("mean_arr_delay", "origin", "dest", descending=[True, False, False])
        .head(top)
        .with_columns(route=pl.format("{}→{}", "origin", "dest"))
        .collect()
    )


def quarantine_shares(lake: Lake) -> pl.DataFrame | None:
    """Per standardized table: rows kept, rows quarantined, and the quarantined share."""
    rows = []
    for table in QUARANTINED_TABLES:
        good = _read(lake, f"standardized/{table}")
        if good is None:
            continue
        bad = _read(lake, f"quarantine/{table}")
        kept = good.select(pl.len()).collect().item()
        quarantined = 0 if bad is None else bad.select(pl.len()).collect().item()
        total = kept + quarantined
        rows.append({"table": table, "kept": kept, "quarantined": quarantined,
                     "share": quarantined / total if total else 0.0})
    return pl.DataFrame(rows) if rows else None


def gather(lake: Lake) -> DashboardData:
    """What the page shows, read from the lake; None for a table not built yet."""
    months = _read(lake, CARRIER_MONTHLY_KPIS)
    routes = _read(lake, ROUTE_DAILY_KPIS)
    evaluations = _read(lake, EVALUATIONS)
    return DashboardData(
        carrier_months=None if months is None else months.sort("carrier", "year", "month").collect(),
        routes=None if routes is None else route_delays(routes),
        quarantine=quarantine_shares(lake),
        evaluations=None if evaluations is None else evaluations.sort("evaluated_at").collect(),
    )


Figure = dict
"""A plotly figure as its JSON spec (`data` traces, `layout`): rendered with `validate=False`, because building
`plotly.graph_objects` loads plotly's validator tables first, ~0.6 s of every run's dashboard step."""


def _on_time(months: pl.DataFrame) -> Figure:
    frame = months.with_columns(period=pl.date(pl.col("year"), pl.col("month"), 1))
    traces = [
        {"type": "scatter", "x": [d.isoformat() for d in part["period"]], "y": part["on_time_share"].to_list(),
         "name": carrier, "mode": "lines+markers", "customdata": part["flights"].to_list(),
         "hovertemplate": "%{x|%b %Y}: %{y:.1%} on time of %{customdata:,} flights"}
        for carrier in frame["carrier"].unique().sort()
        for part in [frame.filter(pl.col("carrier") == carrier)]
    ]
    return {"data": traces, "layout": {
        "title": {"text": "On-time share by carrier and month (arrivals at most 15 min late)"},
        "yaxis": {"tickformat": ".0%", "range": [0, 1], "title": {"text": "on time"}},
        "xaxis": {"title": {"text": "month"}, "tickformat": "%b %Y", "dtick": "M1"},
    }}


def _routes(routes: pl.DataFrame) -> Figure:
    frame = routes.reverse()  # the worst at the top of a horizontal bar chart
    trace = {"type": "bar", "x": frame["mean_arr_delay"].to_list(), "y": frame["route"].to_list(), "orientation": "h",
             "customdata": [list(row) for row in frame.select("flights", "late_share").rows()],
             "hovertemplate": "%{y}: %{x:.1f} min mean arrival delay, %{customdata[1]:.0%} late, "
                              "%{customdata[0]:,} flights<extra></extra>"}
    return {"data": [trace], "layout": {
        "title": {"text": f"The {routes.height} routes with the largest mean arrival delay "
                          f"(at least {MIN_ROUTE_FLIGHTS} flights)"},
        "xaxis": {"title": {"text": "mean arrival delay, minutes"}}, "height": max(400, 24 * routes.height),
    }}


def _quarantine(shares: pl.DataFrame) -> Figure:
    trace = {"type": "bar", "x": shares["table"].to_list(), "y": shares["share"].to_list(),
             "customdata": [list(row) for row in shares.select("quarantined", "kept").rows()],
             "hovertemplate": "%{x}: %{y:.3%} quarantined (%{customdata[0]:,} of "
                              "%{customdata[0]:,} + %{customdata[1]:,} rows)<extra></extra>"}
    return {"data": [trace], "layout": {
        "title": {"text": "Share of rows in quarantine, per standardized table"},
        "yaxis": {"tickformat": ".2%", "title": {"text": "quarantined"}, "rangemode": "tozero"},
    }}


def _model_quality(evaluations: pl.DataFrame) -> Figure:
    when = [t.isoformat() for t in evaluations["evaluated_at"]]
    traces = [
        {"type": "scatter", "x": when, "y": evaluations[column].to_list(), "name": name, "mode": "lines+markers",
         "text": evaluations["verdict"].to_list(), "hovertemplate": "%{x|%Y-%m-%d %H:%M}: ROC AUC %{y:.3f} (%{text})"}
        for column, name in (("champion_roc_auc", "champion"), ("challenger_roc_auc", "challenger"),
                             ("baseline_roc_auc", "baseline (no model)"))
    ]
    return {"data": traces, "layout": {"title": {"text": "Delay model quality on each evaluation's holdout (ROC AUC)"},
                                       "yaxis": {"title": {"text": "ROC AUC"}}}}


def _section(chart_id: str, figure: Figure | None, missing: str) -> str:
    if figure is None:
        return f'<section id="{chart_id}" class="missing"><p>{html.escape(missing)}</p></section>'
    body = pio.to_html(figure, full_html=False, include_plotlyjs=False, div_id=f"{chart_id}-chart",
                       config={"displaylogo": False}, validate=False)
    return f'<section id="{chart_id}">{body}</section>'


def render(data: DashboardData, *, generated_at: dt.datetime, lake_uri: str) -> str:
    """The page: plotly.js once in the head, then one section per chart (or why it is missing)."""
    def chart(frame: pl.DataFrame | None, build: Callable[[pl.DataFrame], Figure]) -> Figure | None:
        return None if frame is None or frame.is_empty() else build(frame)

    sections = [
        _section("on-time", chart(data.carrier_months, _on_time),
                 "warehouse/carrier_monthly_kpis is not built yet: run `tributary run`."),
        _section("route-delays", chart(data.routes, _routes),
                 "warehouse/route_daily_kpis is not built yet, or no route has enough flights."),
        _section("quarantine", chart(data.quarantine, _quarantine), "No standardized table yet: run `tributary run`."),
        _section("model-quality", chart(data.evaluations, _model_quality),
                 "ml/delay_model_evaluation is empty: no model has been evaluated yet (`tributary model retrain`)."),
    ]
    when = generated_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Tributary KPIs</title>
<script type="text/javascript">{get_plotlyjs()}</script>
<style>body{{font-family:sans-serif;margin:2em}} section{{margin-bottom:3em}} .missing{{color:#666}}</style>
</head><body>
<h1>Tributary KPIs</h1>
<p>Built {html.escape(when)} from the lake {html.escape(lake_uri)}. Every chart is interactive: hover for figures,
drag to zoom, double-click to reset.</p>
{"".join(sections)}
</body></html>
"""
