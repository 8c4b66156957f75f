"""warehouse/kpi_dashboard: one self-contained HTML page with the four charts, built from the lake's tables; a
section whose table is missing says so."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
from dagster import materialize

from assets.dashboard import kpi_dashboard
from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.warehouse import CARRIER_MONTHLY_KPIS, DASHBOARD, ROUTE_DAILY_KPIS
from pipelines.ml.data import EVALUATIONS
from pipelines.warehouse.dashboard import CHARTS, gather, render, route_delays
from resources.lake import LocalLakeResource


def _kpis(lake: Lake) -> None:
    delta.overwrite(lake, CARRIER_MONTHLY_KPIS, pl.DataFrame({
        "carrier": ["AA", "AA", "UA", "UA"], "year": [2013] * 4, "month": [1, 2, 1, 2], "flights": [100, 90, 80, 70],
        "cancelled": [1, 2, 3, 4], "on_time_share": [0.8, 0.7, 0.6, 0.9], "mean_dep_delay": [5.0, 6.0, 7.0, 8.0],
        "mean_arr_delay": [1.0, 2.0, 3.0, 4.0]}))
    days = [dt.date(2013, 1, d) for d in (1, 2)]
    delta.overwrite(lake, ROUTE_DAILY_KPIS, pl.DataFrame({
        "flight_date": days * 3, "origin": ["JFK", "JFK", "EWR", "EWR", "LGA", "LGA"],
        "dest": ["LAX", "LAX", "ORD", "ORD", "BOS", "BOS"], "flights": [100, 100, 60, 40, 5, 5],
        "cancelled": [0] * 6, "mean_dep_delay": [1.0] * 6, "mean_arr_delay": [10.0, 20.0, 30.0, 5.0, 99.0, 99.0],
        "late_share": [0.1, 0.2, 0.5, 0.1, 0.9, 0.9], "p90_arr_delay": [1.0] * 6}))
    delta.overwrite(lake, "standardized/flights", pl.DataFrame({"flight_id": [str(i) for i in range(98)]}))
    delta.overwrite(lake, "quarantine/flights", pl.DataFrame({"rule": ["bad_clock", "unknown_carrier"]}))


def test_routes_are_ranked_by_their_flight_weighted_delay_and_small_ones_left_out() -> None:
    routes = pl.LazyFrame({"origin": ["JFK", "JFK", "EWR", "LGA"], "dest": ["LAX", "LAX", "ORD", "BOS"],
                           "flights": [100, 300, 150, 5], "mean_arr_delay": [40.0, 0.0, 12.0, 99.0],
                           "late_share": [0.4, 0.0, 0.2, 1.0]})
    ranked = route_delays(routes, top=5, min_flights=100)
    assert ranked["route"].to_list() == ["EWR→ORD", "JFK→LAX"]  # LGA→BOS has too few flights
    assert ranked["mean_arr_delay"].to_list() == [12.0, 10.0]  # (100*40 + 300*0) / 400
    assert ranked["flights"].to_list() == [150, 400]


def test_the_asset_writes_one_self_contained_page_with_four_charts(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    _kpis(lake)
    delta.overwrite(lake, EVALUATIONS, pl.DataFrame({
        "evaluated_at": [dt.datetime(2026, 1, d, tzinfo=dt.UTC) for d in (5, 12)], "verdict": ["promote", "keep"],
        "champion_roc_auc": [0.70, 0.72], "challenger_roc_auc": [0.72, 0.71], "baseline_roc_auc": [0.5, 0.5]}))
    result = materialize([kpi_dashboard], resources={"lake": LocalLakeResource(root=lake.root)})
    assert result.success
    metadata = result.asset_materializations_for_node("warehouse__kpi_dashboard")[0].metadata
    assert metadata["charts"].value == dict.fromkeys(CHARTS, True)
    page = lake.read_bytes(DASHBOARD).decode()
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js is inlined: the page opens offline
    assert page.count("Plotly.newPlot(") == 4
    for chart in CHARTS:
        assert f'id="{chart}-chart"' in page
    assert "EWR→ORD" in page and "JFK→LAX" in page and "LGA→BOS" not in page
    quarantine = json.loads(re.search(r'"quarantine-chart",\s*(\[.*?\]),\s*\{', page, re.S).group(1))
    assert quarantine[0]["y"] == [0.02]  # 2 of 98 + 2 rows


def test_a_missing_table_is_named_instead_of_a_chart(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    _kpis(lake)
    page = render(gather(lake), generated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), lake_uri=lake.uri())
    assert page.count("Plotly.newPlot(") == 3
    assert "ml/delay_model_evaluation is empty: no model has been evaluated yet" in page


def test_the_dashboard_command_prints_the_page_or_says_how_to_build_it(tmp_path: Path) -> None:
    env = {**os.environ, "TRIBUTARY_HOME": str(tmp_path / "home")}
    command = [str(Path(sys.executable).parent / "tributary"), "dashboard"]
    missing = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (f"error: no dashboard in the lake {tmp_path / 'home' / 'lake'} yet: "
                                      "`tributary run` builds it (asset warehouse/kpi_dashboard)")
    lake = Lake(str(tmp_path / "home" / "lake"))
    _kpis(lake)
    assert materialize([kpi_dashboard], resources={"lake": LocalLakeResource(root=lake.root)}).success
    found = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == lake.uri(DASHBOARD) and Path(found.stdout.strip()).is_file()
