"""Declarative automation: a new raw partition flows to the standardized table without a hand-started run."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, DagsterInstance, Definitions, evaluate_automation_conditions, materialize

from assets import extract, standardize, warehouse
from resources.lake import LocalLakeResource
from resources.extract import SourceDatabaseResource
from sensors.automation import follow_upstream_sensor

ALL = [*extract.raw_assets, *standardize.defs.assets, *warehouse.defs.assets]


def test_a_new_raw_partition_is_requested_downstream(seeded_sqlite: str, tmp_path: Path) -> None:
    instance = DagsterInstance.ephemeral()
    resources = {"lake": LocalLakeResource(root=str(tmp_path / "lake")), "source_db": SourceDatabaseResource(dsn=seeded_sqlite)}
    assert materialize(ALL, partition_key="2013-03-01", resources=resources, instance=instance).success
    defs = Definitions(assets=ALL, resources=resources)
    first = evaluate_automation_conditions(defs, instance)
    assert first.total_requested == 0  # everything is up to date

    raw = [a for a in extract.raw_assets if a.key == AssetKey(["raw", "flights"])]
    assert materialize(raw, partition_key="2013-03-02", resources=resources, instance=instance).success
    second = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
    # The weather of that day is still missing, so the flights wait for it; a new weather day goes ahead.
    assert second.get_requested_partitions(AssetKey(["standardized", "flights"])) == set()
    weather = [a for a in extract.raw_assets if a.key == AssetKey(["raw", "weather"])]
    assert materialize(weather, partition_key="2013-03-02", resources=resources, instance=instance).success
    third = evaluate_automation_conditions(defs, instance, cursor=second.cursor)
    assert third.get_requested_partitions(AssetKey(["standardized", "weather"])) == {"2013-03-02"}


def test_the_sensor_targets_the_downstream_groups() -> None:
    assert follow_upstream_sensor.name == "follow_upstream"
