"""Declarative automation: a changed raw day flows to its month downstream without a hand-started run."""

from __future__ import annotations

from pathlib import Path

from dagster import AssetKey, DagsterInstance, Definitions, evaluate_automation_conditions, materialize

from assets import extract, standardize, warehouse
from resources.lake import LocalLakeResource
from resources.extract import SourceDatabaseResource
from sensors.automation import follow_upstream_sensor
from tests.graph import materialize_days

ALL = [*extract.raw_assets, *standardize.defs.assets, *warehouse.defs.assets]


def test_a_changed_day_requests_its_month_downstream(seeded_sqlite: str, tmp_path: Path) -> None:
    instance = DagsterInstance.ephemeral()
    resources = {"lake": LocalLakeResource(root=str(tmp_path / "lake")), "source_db": SourceDatabaseResource(dsn=seeded_sqlite)}
    assert materialize_days(ALL, "2013-03-01", "2013-03-31", resources=resources, instance=instance).success
    defs = Definitions(assets=ALL, resources=resources)
    first = evaluate_automation_conditions(defs, instance)
    assert first.total_requested == 0  # everything is up to date

    # Change capture re-extracts one day of flights: its month of flights is rebuilt, the weather is not.
    raw = [a for a in extract.raw_assets if a.key == AssetKey(["raw", "flights"])]
    assert materialize(raw, partition_key="2013-03-02", resources=resources, instance=instance).success
    second = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
    assert second.get_requested_partitions(AssetKey(["standardized", "flights"])) == {"2013-03-01"}
    assert second.get_requested_partitions(AssetKey(["standardized", "weather"])) == set()

    # A month waits for its days: one day of April extracted requests nothing while the rest of April is missing.
    weather = [a for a in extract.raw_assets if a.key == AssetKey(["raw", "weather"])]
    assert materialize([*raw, *weather], partition_key="2013-04-01", resources=resources, instance=instance).success
    third = evaluate_automation_conditions(defs, instance, cursor=second.cursor)
    assert "2013-04-01" not in third.get_requested_partitions(AssetKey(["standardized", "weather"]))


def test_the_sensor_targets_the_downstream_groups() -> None:
    assert follow_upstream_sensor.name == "follow_upstream"
