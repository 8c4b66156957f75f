"""The one partitioning of time-based tables, imported everywhere that needs it."""

from __future__ import annotations

import datetime as dt
import os

from dagster import DailyPartitionsDefinition

from pipelines.extract.source import FIRST_DATE

PARTITIONS_END_DEFAULT = "2014-01-01"
"""First day after the data (exclusive). A seed at --scale N reaches 2013+N; set TRIBUTARY_PARTITIONS_END to
cover it, or to an empty value for an open-ended source that keeps receiving flights (production)."""


def partitions_end() -> str | None:
    return os.environ.get("TRIBUTARY_PARTITIONS_END", PARTITIONS_END_DEFAULT) or None


daily_partitions = DailyPartitionsDefinition(start_date=FIRST_DATE, end_date=partitions_end())


def days_in_run(context) -> list[dt.date]:
    """The days of the run's partition or partition range (a range run is one run for many days)."""
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + dt.timedelta(days=i) for i in range((end - start).days)]


def chunks(days: list[dt.date], size: int = 31) -> list[list[dt.date]]:
    """Consecutive runs of at most `size` days: work (and memory) in month-sized pieces, not the whole range."""
    return [days[i : i + size] for i in range(0, len(days), size)]
