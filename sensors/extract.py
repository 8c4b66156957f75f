"""Extract automation: the daily schedule, and change capture on the source's `updated_at`."""


import datetime as dt
import json

from dagster import (AssetKey, AssetSelection, DefaultSensorStatus, Definitions, RunRequest, SensorEvaluationContext,
                     SensorResult, SkipReason, build_schedule_from_partitioned_job, define_asset_job, sensor)

from assets.partitions import daily_partitions
from pipelines.extract.extraction import changed_since, manifest_path, snapshot_pointer
from pipelines.extract.source import TABLES
from resources.lake import LakeResource
from resources.extract import SourceDatabaseResource

daily_extract_job = define_asset_job(
    "daily_extract",
    selection=AssetSelection.groups("extract") - AssetSelection.assets(
        *[AssetKey(["raw", t]) for t, spec in TABLES.items() if not spec.partitioned]
    ),
    partitions_def=daily_partitions,
    description="Extract one day of flights and weather from the source database.",
)

daily_extract_schedule = build_schedule_from_partitioned_job(
    daily_extract_job, name="daily_extract_schedule", hour_of_day=1, description="Extract yesterday's partition."
)


def _later(a: str, b: str | None) -> bool:
    return b is None or dt.datetime.fromisoformat(a) > dt.datetime.fromisoformat(b)


def plan_change_capture(
    changes: dict[str, dict[str, str]], manifests: dict[tuple[str, str], dict | None]
) -> list[tuple[str, str, str]]:
    """(table, day or "", newest updated_at) of every extracted partition whose source changed after extraction.

    A day never extracted is left to the schedule and backfills: change capture re-extracts, it does not backfill.
    """
    stale = []
    for table, days in changes.items():
        for day, newest in sorted(days.items()):
            manifest = manifests.get((table, day))
            if manifest is None:
                continue
            if _later(newest, manifest.get("source_updated_at")):
                stale.append((table, day, newest))
    return stale


@sensor(
    name="source_change_capture",
    asset_selection=AssetSelection.groups("extract"),
    minimum_interval_seconds=120,
    default_status=DefaultSensorStatus.STOPPED,
    description="Re-extract days whose source rows changed (updated_at) after their last extraction.",
)
def source_change_capture(
    context: SensorEvaluationContext, source_db: SourceDatabaseResource, lake: LakeResource
) -> SensorResult | SkipReason:
    cursor: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    engine = source_db.get_engine(tables=list(TABLES))
    the_lake = lake.get_lake()
    changes = {table: changed_since(engine, table, cursor.get(table)) for table in TABLES}
    manifests = {
        (table, day): the_lake.read_json(manifest_path(table, day) if day else snapshot_pointer(table))
        for table, days in changes.items()
        for day in days
    }
    stale = plan_change_capture(changes, manifests)
    new_cursor = dict(cursor)
    for table, days in changes.items():
        for newest in days.values():
            if _later(newest, new_cursor.get(table)):
                new_cursor[table] = newest
    requests = [
        RunRequest(
            run_key=f"{table}:{day or 'snapshot'}:{newest}",
            asset_selection=[AssetKey(["raw", table])],
            partition_key=day or None,
            tags={"tributary/trigger": "change_capture"},
        )
        for table, day, newest in stale
    ]
    if not requests:
        scanned = sum(len(d) for d in changes.values())
        return SensorResult(
            skip_reason=SkipReason(
                f"no extracted partition changed at the source ({scanned} changed day(s) scanned, "
                "none extracted before the change)"
                if scanned
                else "no source row changed since the last tick"
            ),
            cursor=json.dumps(new_cursor, sort_keys=True),
        )
    context.log.info(f"re-extracting {len(requests)} partition(s) changed at the source")
    return SensorResult(run_requests=requests, cursor=json.dumps(new_cursor, sort_keys=True))


defs = Definitions(
    jobs=[daily_extract_job], schedules=[daily_extract_schedule], sensors=[source_change_capture]
)
