"""Lake upkeep on a clock: compact the Delta tables' small files and vacuum the ones no recent version needs."""

from dagster import Config, Definitions, OpExecutionContext, job, op
from pydantic import Field

from assets.automation import utc_schedule
from pipelines.core.maintenance import RETENTION_HOURS, TARGET_FILE_BYTES, maintain_lake
from resources.lake import LakeResource


class MaintenanceConfig(Config):
    tables: list[str] | None = Field(default=None, description="Lake paths (e.g. warehouse/fact_flights); all by default.")
    target_size_mb: int = Field(default=TARGET_FILE_BYTES // 2**20, ge=1)
    retention_hours: int = Field(default=RETENTION_HOURS, ge=0,
                                 description="Keep files a version of this many past hours still reads.")


@op(description="Compact, then vacuum, every Delta table of the lake (or the configured ones).")
def compact_and_vacuum(context: OpExecutionContext, config: MaintenanceConfig, lake: LakeResource) -> None:
    done = maintain_lake(lake.get_lake(), tables=config.tables, target_size=config.target_size_mb * 2**20,
                         retention_hours=config.retention_hours, log=context.log.info)
    context.log.info(f"{len(done)} tables: {sum(m.files_before for m in done):,} files before, "
                     f"{sum(m.files_after for m in done):,} after, {sum(m.files_vacuumed for m in done):,} vacuumed")


@job(name="lake_maintenance", description="Compact small files and vacuum unreferenced ones in every Delta table.")
def lake_maintenance() -> None:
    compact_and_vacuum()


weekly_lake_maintenance = utc_schedule("weekly_lake_maintenance", lake_maintenance, "0 3 * * 0",
                                       description="Sundays 03:00 UTC, when no daily run writes.")

defs = Definitions(jobs=[lake_maintenance], schedules=[weekly_lake_maintenance])
