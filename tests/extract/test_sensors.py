"""Change capture: a JSON cursor, deterministic run keys, and a skip reason that explains itself."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance, SkipReason, build_sensor_context

from pipelines.extract.extraction import extract
from pipelines.core.lake import Lake
from pipelines.extract.sourcedb import create_engine
from resources.lake import LocalLakeResource
from resources.extract import SourceDatabaseResource
from sensors.extract import daily_extract_schedule, plan_change_capture, source_change_capture

T0 = "2026-01-01T00:00:00+00:00"
T1 = "2026-01-02T00:00:00+00:00"


@pytest.mark.parametrize(
    ("changes", "manifests", "expected"),
    [
        ({"flights": {"2013-01-01": T1}}, {("flights", "2013-01-01"): {"source_updated_at": T0}},
         [("flights", "2013-01-01", T1)]),
        ({"flights": {"2013-01-01": T0}}, {("flights", "2013-01-01"): {"source_updated_at": T0}}, []),
        ({"flights": {"2013-01-01": T1}}, {("flights", "2013-01-01"): None}, []),  # never extracted
        ({"airports": {"": T1}}, {("airports", ""): {"source_updated_at": None}}, [("airports", "", T1)]),
    ],
)
def test_plan_change_capture(changes: dict, manifests: dict, expected: list) -> None:
    assert plan_change_capture(changes, manifests) == expected


def test_sensor_requests_only_days_changed_after_extraction(seeded_sqlite: str, tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    shutil.copy(seeded_sqlite.removeprefix("sqlite:///"), source)
    engine = create_engine(str(source))
    lake = Lake(str(tmp_path / "lake"))
    for day in (dt.date(2013, 3, 1), dt.date(2013, 3, 2)):
        extract(engine, lake, "flights", date=day, run_id="first")
    resources = {"source_db": SourceDatabaseResource(dsn=str(source)), "lake": LocalLakeResource(root=str(tmp_path / "lake"))}
    instance = DagsterInstance.ephemeral()

    first = source_change_capture(build_sensor_context(instance=instance, resources=resources))
    assert first.run_requests == []
    assert "none extracted before the change" in first.skip_reason.skip_message
    cursor = first.cursor
    assert set(json.loads(cursor)) == {"flights", "weather", "airports", "planes", "airlines"}

    with engine.begin() as conn:  # a correction at the source on 2013-03-01 and on a day never extracted
        conn.execute(sa.text("UPDATE flights SET arr_delay = 1, updated_at = '2030-01-01 00:00:00.000000' "
                             "WHERE id IN (136250, 200000)"))
    second = source_change_capture(build_sensor_context(instance=instance, resources=resources, cursor=cursor))
    assert [(r.partition_key, r.run_key) for r in second.run_requests] == [
        ("2013-03-01", "flights:2013-03-01:2030-01-01T00:00:00+00:00")
    ]
    assert second.run_requests[0].asset_selection[0].path == ["raw", "flights"]

    third = source_change_capture(build_sensor_context(instance=instance, resources=resources, cursor=second.cursor))
    assert isinstance(third.skip_reason, SkipReason) and "no source row changed" in third.skip_reason.skip_message


def test_daily_schedule_targets_the_extract_job() -> None:
    assert daily_extract_schedule.job_name == "daily_extract"
    assert daily_extract_schedule.cron_schedule == "0 1 * * *"
