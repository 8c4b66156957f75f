"""The two partitionings of time, imported everywhere that needs them.

Days are the unit of extraction and change capture: a failed or changed day is re-extracted alone, and the UI
shows which days are in. Everything downstream of the raw zone is partitioned by month through the default
`TimeWindowPartitionMapping` (a month depends on its days): Dagster stores one materialization event per
partition and asset (~10 ms each on the embedded instance), so a year is 12 events an asset instead of 365, and
the daily schedule refreshes the current month, which polars rebuilds in a fraction of a second.
"""

from __future__ import annotations

import datetime as dt

from dagster import AssetDep, DailyPartitionsDefinition, MonthlyPartitionsDefinition, TimeWindowPartitionMapping

from pipelines.extract.source import FIRST_DATE
from resources.extract import partitions_end

daily_partitions = DailyPartitionsDefinition(start_date=FIRST_DATE, end_date=partitions_end())


def _monthly() -> MonthlyPartitionsDefinition:
    end = partitions_end()
    if end is None:  # open-ended: the month in progress is a partition too, refreshed day by day
        return MonthlyPartitionsDefinition(start_date=FIRST_DATE, end_offset=1)
    last_day = dt.date.fromisoformat(end) - dt.timedelta(days=1)
    after = (last_day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return MonthlyPartitionsDefinition(start_date=FIRST_DATE, end_date=after.isoformat())


monthly_partitions = _monthly()


def from_days(key) -> AssetDep:
    """A monthly asset's dependency on a daily one: a month reads the days it holds that exist (the month in
    progress has days still to come)."""
    return AssetDep(key, partition_mapping=TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True))


def _last_day() -> dt.date | None:
    keys = daily_partitions.get_last_partition_key()
    return dt.date.fromisoformat(keys) if keys else None


def days_in_run(context) -> list[dt.date]:
    """The days of the run's partition or partition range (a range run is one run for many days); for months,
    only the days that are partitions already (not the rest of the month in progress)."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    last = _last_day()
    return [d for d in days if last is None or d <= last]


def months(days: list[dt.date]) -> list[list[dt.date]]:
    """The days grouped by calendar month, in order: the unit of work, memory and Delta writes downstream."""
    grouped: dict[tuple[int, int], list[dt.date]] = {}
    for day in days:
        grouped.setdefault((day.year, day.month), []).append(day)
    return list(grouped.values())


def run_months(context) -> tuple[dt.date, dt.date] | None:
    """The calendar months an unpartitioned asset's run covers, from the run's partition tags: the first day of
    the first month and the last day of the last (a day range is widened to its months). None for a run over no
    partitions, where the whole table is rebuilt.

    The dimensions and the carrier KPIs are not partitioned (one table, upserted), but the main job runs them
    after a range of months: they need only those months' rows, not a scan of a century of flights."""
    tags = context.run.tags
    start = tags.get("dagster/asset_partition_range_start") or tags.get("dagster/partition")
    end = tags.get("dagster/asset_partition_range_end") or tags.get("dagster/partition")
    try:
        first, last = dt.date.fromisoformat(start[:10]), dt.date.fromisoformat(end[:10])
    except (TypeError, ValueError):
        return None
    after = (last.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return first.replace(day=1), after - dt.timedelta(days=1)
