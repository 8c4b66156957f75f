"""The nightly quality job: Great Expectations itself over every table, its full results kept in the lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from dagster import DagsterInstance, Definitions

from assets import extract, quality, standardize, warehouse
from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.core.query import run_sql
from resources.extract import SourceDatabaseResource
from resources.lake import LocalLakeResource
from tests.graph import materialize_days

ALL = [*extract.raw_assets, *standardize.defs.assets, *warehouse.defs.assets]


def test_the_nightly_job_validates_every_table_and_keeps_the_results(seeded_sqlite: str, tmp_path: Path) -> None:
    resources = {"lake": LocalLakeResource(root=str(tmp_path / "lake")),
                 "source_db": SourceDatabaseResource(dsn=seeded_sqlite)}
    instance = DagsterInstance.ephemeral()
    assert materialize_days(ALL, "2013-06-01", "2013-06-02", resources=resources, instance=instance).success
    lake = Lake(str(tmp_path / "lake"))
    # A bad row slipped into a KPI table: a late share of 2.
    kpis = delta.scan(lake, "warehouse/route_daily_kpis").collect()
    bad = kpis.with_columns(pl.when(pl.int_range(pl.len()) == 0).then(2.0).otherwise(pl.col("late_share"))
                            .alias("late_share"))
    delta.overwrite_range(lake, "warehouse/route_daily_kpis", bad, column="flight_date",
                          first=dt.date(2013, 6, 1), last=dt.date(2013, 6, 2))

    defs = Definitions(assets=ALL, asset_checks=quality.gx_checks, jobs=[quality.quality_nightly], resources=resources)
    result = defs.resolve_job_def("quality_nightly").execute_in_process(instance=instance)
    assert result.success
    checks = {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}
    assert set(checks) == set(quality.SUITES)
    failed = {k for k, e in checks.items() if not e.passed}
    assert failed == {"warehouse/route_daily_kpis"}
    assert "expect_column_values_to_be_between(late_share) (1 unexpected)" in checks[
        "warehouse/route_daily_kpis"].description
    assert checks["warehouse/fact_flights"].metadata["rows_checked"].value == kpis["flights"].sum()

    kept = run_sql(lake, "SELECT lake_table, expectation, columns, success, unexpected_count "
                         f"FROM quality_expectation_results WHERE run_id = '{result.run_id}'")
    assert set(kept["lake_table"]) == set(quality.SUITES)
    row = kept.filter((pl.col("lake_table") == "warehouse/route_daily_kpis") & ~pl.col("success"))
    assert row.select("expectation", "columns", "unexpected_count").rows() == [
        ("expect_column_values_to_be_between", "late_share", 1)]
