"""Extract group: the source database's tables landed as Parquet in the raw zone."""


import time

from dagster import AssetExecutionContext, BackfillPolicy, Definitions, MaterializeResult, MetadataValue, asset

from assets.common import table_metadata
from assets.partitions import daily_partitions, days_in_run, months
from pipelines.core.progress import Every
from pipelines.extract.extraction import SOURCE, extract, extract_range
from pipelines.extract.source import PARTITIONED_TABLES, SNAPSHOT_TABLES, TABLES
from resources.lake import LakeResource
from resources.extract import SourceDatabaseResource

GROUP = "extract"


def _partitioned_asset(table: str):
    @asset(
        key=["raw", table],
        group_name=GROUP,
        partitions_def=daily_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        kinds={"sql", "parquet"},
        description=f"`{table}` rows of each day, extracted from the source database as they were.",
    )
    def _extract(
        context: AssetExecutionContext, lake: LakeResource, source_db: SourceDatabaseResource
    ) -> MaterializeResult:
        days = days_in_run(context)
        engine = source_db.get_engine(tables=[table])
        the_lake = lake.get_lake()
        started, report = time.monotonic(), Every()
        rows = 0
        last = None
        done = 0
        with engine.connect() as conn:
            # One query per month of the range (not one per day); each day is still its own file and manifest.
            for chunk in months(days):
                for last in extract_range(conn, the_lake, table, first=chunk[0], last=chunk[-1], run_id=context.run_id):
                    rows, done = rows + last.rows, done + 1
                if not report.due(last=done == len(days)):
                    continue
                elapsed = time.monotonic() - started
                context.log.info(
                    f"{table}: {done}/{len(days)} days, {rows:,} rows, {rows / max(elapsed, 1e-9):,.0f} rows/s"
                )
        if len(days) == 1:
            metadata = table_metadata(rows=rows, uri=last.uri, schema=TABLES[table].columns, preview=last.preview)
            metadata["source_updated_at"] = MetadataValue.text(last.source_updated_at or "")
            return MaterializeResult(metadata=metadata)
        # One result stands for every day of a range run, so it carries the run's figures, not a day's.
        return MaterializeResult(
            metadata={
                "rows_in_run": rows,
                "days_in_run": len(days),
                "first_day": days[0].isoformat(),
                "last_day": days[-1].isoformat(),
                "seconds": round(time.monotonic() - started, 2),
                "dagster/uri": MetadataValue.path(the_lake.uri(f"raw/{SOURCE}/{table}")),
            }
        )

    return _extract


def _snapshot_asset(table: str):
    @asset(
        key=["raw", table],
        group_name=GROUP,
        kinds={"sql", "parquet"},
        description=f"Snapshot of the `{table}` reference table, extracted from the source database.",
    )
    def _extract(
        context: AssetExecutionContext, lake: LakeResource, source_db: SourceDatabaseResource
    ) -> MaterializeResult:
        engine = source_db.get_engine(tables=[table])
        result = extract(engine, lake.get_lake(), table, date=None, run_id=context.run_id)
        context.log.info(f"{table}: {result.rows:,} rows to {result.uri}")
        metadata = table_metadata(
            rows=result.rows, uri=result.uri, schema=TABLES[table].columns, preview=result.preview
        )
        metadata["source_updated_at"] = MetadataValue.text(result.source_updated_at or "")
        return MaterializeResult(metadata=metadata)

    return _extract


raw_assets = [_partitioned_asset(t) for t in PARTITIONED_TABLES] + [_snapshot_asset(t) for t in SNAPSHOT_TABLES]

defs = Definitions(assets=raw_assets)
