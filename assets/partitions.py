"""The one partitioning of time-based tables, imported everywhere that needs it."""

from __future__ import annotations

import datetime as dt

from dagster import DailyPartitionsDefinition

from pipelines.extract.source import FIRST_DATE
from resources.extract import partitions_end

daily_partitions = DailyPartitionsDefinition(start_date=FIRST_DATE, end_date=partitions_end())


def days_in_run(context) -> list[dt.date]:
    """The days of the run's partition or partition range (a range run is one run for many days)."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


def chunks(days: list[dt.date], size: int = 31) -> list[list[dt.date]]:
    """Consecutive runs of at most `size` days: work (and memory) in month-sized pieces, not the whole range."""
    return [days[i : i + size] for i in range(0, len(days), size)]
