"""The batched SQLite event log: a range run's materializations written together read back as the default's do."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import (AssetKey, BackfillPolicy, DagsterInstance, DailyPartitionsDefinition, MaterializeResult, asset,
                     materialize)

from resources.event_log import BatchedSqliteEventLogStorage
from pipelines.core.instance import LOCAL_INSTANCE_YAML

DAYS = DailyPartitionsDefinition(start_date="2013-01-01", end_date="2013-03-01")


@asset(partitions_def=DAYS, backfill_policy=BackfillPolicy.single_run())
def days(context) -> MaterializeResult:
    return MaterializeResult(metadata={"first": context.partition_key_range.start})


def _range_run(home: Path, yaml: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")
    with DagsterInstance.get() as instance:
        result = materialize([days], instance=instance, tags={"dagster/asset_partition_range_start": "2013-01-01",
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
    assert 59 in batches  # the step's 59 materializations in one batch
    default = _range_run(tmp_path / "default", "telemetry:\n  enabled: false\n", monkeypatch)
    assert batched.pop("storage") == "BatchedSqliteEventLogStorage"
    assert default.pop("storage") == "SqliteEventLogStorage"
    assert batched == default
    assert len(batched["partitions"]) == 59 and batched["run_events"] == 59
    assert batched["latest"] == ("2013-02-28", True)
