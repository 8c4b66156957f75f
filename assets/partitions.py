"""The one partitioning of time-based tables, imported everywhere that needs it."""

from __future__ import annotations

import os

from dagster import DailyPartitionsDefinition

from pipelines.source import FIRST_DATE

PARTITIONS_END_DEFAULT = "2014-01-01"
"""First day after the data (exclusive). A seed at --scale N reaches 2013+N; set TRIBUTARY_PARTITIONS_END to
cover it, or to an empty value for an open-ended source that keeps receiving flights (production)."""


def partitions_end() -> str | None:
    return os.environ.get("TRIBUTARY_PARTITIONS_END", PARTITIONS_END_DEFAULT) or None


daily_partitions = DailyPartitionsDefinition(start_date=FIRST_DATE, end_date=partitions_end())
