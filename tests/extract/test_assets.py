"""The raw extract assets, materialized into a lake under tmp_path from the seeded source."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from assets.extract import raw_assets
from pipelines.extract.extraction import current_file
from pipelines.core.lake import Lake
from resources.lake import LocalLakeResource
from resources.extract import SourceDatabaseResource


@pytest.fixture
def resources(seeded_sqlite: str, tmp_path: Path) -> dict:
    return {"lake": LocalLakeResource(root=str(tmp_path / "lake")), "source_db": SourceDatabaseResource(dsn=seeded_sqlite)}


def test_one_partition_lands_with_metadata(resources: dict, tmp_path: Path) -> None:
    partitioned = [a for a in raw_assets if a.partitions_def is not None]
    result = materialize(partitioned, resources=resources, partition_key="2013-03-01")
    assert result.success
    metadata = {
        m.asset_key.path[1]: m.metadata for m in result.asset_materializations_for_node("raw__flights")
    } | {m.asset_key.path[1]: m.metadata for m in result.asset_materializations_for_node("raw__weather")}
    assert metadata["flights"]["dagster/row_count"].value == 958
    assert metadata["weather"]["dagster/row_count"].value == 72
    assert metadata["flights"]["dagster/uri"].value.endswith(f"date=2013-03-01/{result.run_id}.parquet")
    assert [c.name for c in metadata["flights"]["dagster/column_schema"].schema.columns][:3] == ["id", "year", "month"]
    assert "|" in metadata["flights"]["preview"].value  # a markdown table
    lake = Lake(str(tmp_path / "lake"))
    assert pl.read_parquet(lake.path(current_file(lake, "flights", "2013-03-01"))).height == 958


def test_a_partition_range_is_one_run(resources: dict, tmp_path: Path) -> None:
    flights = next(a for a in raw_assets if a.key == AssetKey(["raw", "flights"]))
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [flights],
        resources=resources,
        instance=instance,
        tags={"dagster/asset_partition_range_start": "2013-02-01", "dagster/asset_partition_range_end": "2013-02-07"},
    )
    assert result.success
    assert len(instance.get_runs()) == 1
    assert instance.get_materialized_partitions(flights.key) == {f"2013-02-0{d}" for d in range(1, 8)}
    lake = Lake(str(tmp_path / "lake"))
    rows = sum(pl.read_parquet(lake.path(current_file(lake, "flights", f"2013-02-0{d}"))).height for d in range(1, 8))
    metadata = result.asset_materializations_for_node("raw__flights")[0].metadata
    assert rows == metadata["rows_in_run"].value and metadata["days_in_run"].value == 7
    import sqlalchemy as sa

    with sa.create_engine(resources["source_db"].dsn).connect() as conn:
        expected = conn.execute(
            sa.text("SELECT count(*) FROM flights WHERE year = 2013 AND month = 2 AND day BETWEEN 1 AND 7")
        ).scalar_one()
    assert rows == expected > 6_000


def test_snapshots_land_whole(resources: dict) -> None:
    snapshots = [a for a in raw_assets if a.partitions_def is None]
    result = materialize(snapshots, resources=resources)
    counts = {
        e.event_specific_data.materialization.asset_key.path[1]:
        e.event_specific_data.materialization.metadata["dagster/row_count"].value
        for e in result.get_asset_materialization_events()
    }
    assert counts == {"airports": 1458, "planes": 3322, "airlines": 16}


def test_a_missing_source_table_fails_the_step_with_a_clear_message(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    import sqlite3

    sqlite3.connect(empty).close()
    snapshots = [a for a in raw_assets if a.key == AssetKey(["raw", "airlines"])]
    result = materialize(
        snapshots,
        resources={"lake": LocalLakeResource(root=str(tmp_path / "lake")), "source_db": SourceDatabaseResource(dsn=str(empty))},
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "has no table airlines" in str(failure.step_failure_data.error)
    assert not (tmp_path / "lake" / "raw").exists()
