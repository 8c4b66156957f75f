"""Running the batch graph in tests as `tributary run` does: the extract group's days, then the months holding them."""

from __future__ import annotations

import datetime as dt

from dagster import DagsterInstance, materialize

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


def _month(day: str) -> str:
    return dt.date.fromisoformat(day).replace(day=1).isoformat()


def materialize_days(assets: list, first: str, last: str | None = None, *, resources: dict,
                     instance: DagsterInstance | None = None, run_config=None, raise_on_error: bool = True):
    """Extract first..last (one run), then build the months that hold them (a second run); the second run's
    result, or the first's when it failed. `run_config` goes to the second run (the standardize ops)."""
    last = last or first
    instance = instance or DagsterInstance.ephemeral()
    extract = [a for a in assets if set(a.group_names_by_key.values()) == {"extract"}]
    build = [a for a in assets if a not in extract]
    days = materialize(extract, resources=resources, instance=instance, raise_on_error=raise_on_error,
                       tags={RANGE_START: first, RANGE_END: last})
    if not days.success or not build:
        return days
    return materialize(build, resources=resources, instance=instance, raise_on_error=raise_on_error,
                       run_config=run_config, tags={RANGE_START: _month(first), RANGE_END: _month(last)})
