"""The batched SQLite event log: a range run's planned and materialization events written together read back as the
default's do, and its shards' engines stay bounded."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import (AssetCheckResult, AssetKey, BackfillPolicy, DagsterEventType, DagsterInstance, DailyPartitionsDefinition, MaterializeResult, asset, asset_check,
                     materialize)

from resources.event_log import BatchedSqliteEventLogStorage
from pipelines.core.instance import LOCAL_INSTANCE_YAML

DAYS = DailyPartitionsDefinition(start_date="2013-01-01", end_date="2013-03-01")


@asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
def days(context) -> MaterializeResult:
    return MaterializeResult(metadata={"first": context.partition_key_range.start})


@asset_check(asset=days)
def days_have_a_first(context) -> AssetCheckResult:
    return AssetCheckResult(passed=True)


def _instance_home(home: Path, yaml: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An instance home with `yaml`, batched event writes, and one planned event a partition (the code location
    asks for one a run): the batch the log stores in order."""
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    monkeypatch.delenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", raising=False)


def _range_run(home: Path, yaml: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    _instance_home(home, yaml, monkeypatch)
    with DagsterInstance.get() as instance:
        result = materialize([days, days_have_a_first], instance=instance, tags={"dagster/asset_partition_range_start": "2013-01-01",
                                                             "dagster/asset_partition_range_end": "2013-02-28"})
        assert result.success
        key = AssetKey("days")
        records = instance.fetch_materializations(key, limit=100).records
        latest = instance.get_latest_materialization_event(key)
        return {
            "storage": type(instance.event_log_storage).__name__,
            "partitions": instance.get_materialized_partitions(key),
            "records": sorted((r.partition_key, r.asset_materialization.metadata["first"].value) for r in records),
            "latest": (latest.dagster_event.partition, latest.run_id == result.run_id),
            "run_events": sum(1 for e in instance.all_logs(result.run_id) if e.dagster_event
                              and e.dagster_event.is_step_materialization),
            "planned": sum(1 for e in instance.all_logs(result.run_id) if e.dagster_event
                           and e.dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED),
            "planned_info": [(info.run_id == result.run_id) if (info := instance.get_latest_planned_materialization_info(
                key, day)) else None for day in ("2013-01-01", "2013-02-28")],
            "checks": [(r.status.value, r.run_id == result.run_id) for r in instance.event_log_storage
                       .get_asset_check_execution_history(days_have_a_first.check_key, limit=10)],
            "attempts_without": instance.event_log_storage
            .get_latest_asset_partition_materialization_attempts_without_materializations(key),
        }


def test_a_range_run_reads_back_the_same_through_the_batched_log(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[int] = []
    original = BatchedSqliteEventLogStorage.store_event_batch

    def counted(self, events):
        batches.append(len(events))
        return original(self, events)

    monkeypatch.setattr(BatchedSqliteEventLogStorage, "store_event_batch", counted)
    batched = _range_run(tmp_path / "batched", LOCAL_INSTANCE_YAML, monkeypatch)
    assert batches[:2] == [60, 59]  # 59 planned partitions and 1 planned check, then 59 materializations
    default = _range_run(tmp_path / "default", "telemetry:\n  enabled: false\n", monkeypatch)
    assert batched.pop("storage") == "BatchedSqliteEventLogStorage"
    assert default.pop("storage") == "SqliteEventLogStorage"
    assert batched == default
    assert len(batched["partitions"]) == 59 and batched["run_events"] == 59 and batched["planned"] == 59
    assert batched["planned_info"] == [True, True] and batched["attempts_without"] == {}
    assert batched["checks"][0] == ("SUCCEEDED", True) and len(batched["checks"]) == 10  # as Dagster plans: a day each
    assert batched["latest"] == ("2013-02-28", True)


@asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
def broken_days(context) -> MaterializeResult:
    raise RuntimeError("the source is down")


def _failed_range_run(home: Path, yaml: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    _instance_home(home, yaml, monkeypatch)
    with DagsterInstance.get() as instance:
        result = materialize([broken_days], instance=instance, raise_on_error=False,
                             tags={"dagster/asset_partition_range_start": "2013-01-01",
                                   "dagster/asset_partition_range_end": "2013-01-31"})
        assert not result.success
        key = AssetKey("broken_days")
        attempts = instance.event_log_storage.get_latest_asset_partition_materialization_attempts_without_materializations(key)
        types = [e.dagster_event.event_type for e in instance.all_logs(result.run_id) if e.dagster_event]
        return {
            "attempts": sorted(day for day, (run_id, _) in attempts.items() if run_id == result.run_id),
            "planned": types.count(DagsterEventType.ASSET_MATERIALIZATION_PLANNED),
            "failed": types.count(DagsterEventType.ASSET_FAILED_TO_MATERIALIZE),
            "materialized": instance.get_materialized_partitions(key),
        }


def test_a_failed_range_run_leaves_its_days_planned_and_failed_as_the_default_log_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batched = _failed_range_run(tmp_path / "batched", LOCAL_INSTANCE_YAML, monkeypatch)
    default = _failed_range_run(tmp_path / "default", "telemetry:\n  enabled: false\n", monkeypatch)
    assert batched == default
    assert batched["planned"] == 31 and len(batched["attempts"]) == 31 and not batched["materialized"]


def test_shard_engines_are_bounded_and_closed_with_the_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from resources import event_log

    monkeypatch.setattr(event_log, "MAX_ENGINES", 2)
    (tmp_path / "dagster.yaml").write_text(LOCAL_INSTANCE_YAML)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with DagsterInstance.get() as instance:
        for day in ("2013-01-01", "2013-01-02", "2013-01-03"):  # three run shards and the index
            assert materialize([days], instance=instance, partition_key=day).success
        storage = instance.event_log_storage
        assert len(storage._engines) == 2 and "index" in storage._engines
        assert instance.get_materialized_partitions(AssetKey("days")) == {"2013-01-01", "2013-01-02", "2013-01-03"}
    assert not storage._engines
