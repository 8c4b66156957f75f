"""Compaction and vacuum on real Delta tables: fewer files, the same rows at every version kept."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
from dagster import DagsterInstance, RunConfig

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.core.maintenance import maintain, maintain_lake
from resources.lake import LocalLakeResource
from sensors.lake import MaintenanceConfig, lake_maintenance

REL = "ml/delay_model_evaluation"


def _merged_table(lake: Lake, batches: int = 6) -> pl.DataFrame:
    for i in range(batches):  # one MERGE per run, as the evaluation table grows: one small file each
        delta.merge(lake, REL, pl.DataFrame({"run_id": [f"r{i}"], "score": [i / 10]}), keys=["run_id"])
    return delta.scan(lake, REL).collect().sort("run_id")


def test_compaction_leaves_one_file_with_the_same_rows(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    before = _merged_table(lake)
    result = maintain(lake, REL, retention_hours=24 * 7)
    assert result.files_before == 6 and result.files_after == 1
    assert result.version_after == result.version_before + 1 and result.files_vacuumed == 0  # the week is kept
    assert delta.scan(lake, REL).collect().sort("run_id").equals(before)
    assert delta.scan(lake, REL, version=result.version_before).collect().sort("run_id").equals(before)


def test_vacuum_deletes_only_what_no_kept_version_reads(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    before = _merged_table(lake)
    root = Path(lake.uri(REL).removeprefix("file://"))
    kept = maintain(lake, REL)  # compacted; the six small files stay for the week's versions
    assert kept.files_vacuumed == 0 and len(list(root.glob("*.parquet"))) == 7
    result = maintain(lake, REL, retention_hours=0)  # the retention counts from the commit that removed them
    assert result.files_vacuumed == 6
    assert len(list(root.glob("*.parquet"))) == 1
    assert delta.scan(lake, REL).collect().sort("run_id").equals(before)
    again = maintain(lake, REL, retention_hours=0)  # nothing left to do: no new commit
    assert (again.files_before, again.files_after, again.version_after) == (1, 1, result.version_after)


def test_the_job_maintains_every_table_of_the_lake(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    _merged_table(lake)
    day = dt.date(2013, 1, 1)
    delta.overwrite_range(lake, "warehouse/fact_flights", pl.DataFrame({"flight_date": [day], "x": [1]}),
                          column="flight_date", first=day, last=day)
    instance = DagsterInstance.ephemeral()
    result = lake_maintenance.execute_in_process(
        instance=instance, resources={"lake": LocalLakeResource(root=str(tmp_path / "lake"))},
        run_config=RunConfig(ops={"compact_and_vacuum": MaintenanceConfig()}),
    )
    assert result.success
    logged = [e.user_message for e in instance.all_logs(result.run_id) if "files before" in e.user_message]
    assert logged == ["2 tables: 7 files before, 2 after, 0 vacuumed"]
    assert {m.table for m in maintain_lake(lake)} == {REL, "warehouse/fact_flights"}
