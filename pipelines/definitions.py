"""The one code location: a thin merge of the per-stage definitions, with project-wide policy applied once."""

from __future__ import annotations

import importlib
import os
import pkgutil
import warnings
from types import ModuleType

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor, multiprocess_executor

from dagster import BetaWarning, PreviewWarning

# A range run's materializations reach the event log as one batch per step (resources/event_log.py writes
# it in one transaction on SQLite; dagster-postgres in one statement), and its "planned" events as one event per
# asset instead of one per partition. The price of the second: the partitions of a failed range run show as
# missing, not failed, in the UI (the run itself shows the failure). Every process loading the code sets them.
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")

# The single-run backfill policy is marked beta; it is what keeps a year one run instead of 365.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)

import assets  # noqa: E402 - after the warning filters
import sensors  # noqa: E402 - after the warning filters
from assets.partitions import daily_partitions, monthly_partitions  # noqa: E402 - after the warning filters
from assets.policy import apply_policy  # noqa: E402 - after the warning filters
from assets.quality import gx_checks  # noqa: E402 - after the warning filters
from resources import build_resources, current_profile, max_concurrent  # noqa: E402 - after the warning filters

# The main job: the batch graph up to the warehouse, over a range of days. Dagster runs one partitioning per
# job, so it is two jobs, run one after the other by `tributary run`: the days of the extract group, then the
# months that hold those days downstream (`assets/partitions.py`). Locally each runs in one process (a
# multiprocess step costs seconds of start-up); elsewhere steps fan out to processes.
# The stream and the documents land by their own sensors, batch by batch; the endpoint and the edge fleet
# follow the registry's aliases through theirs. Retraining is its own job (`ml_retrain`: weekly, on drift, or by
# hand): a day's extract must not wait 25 s for a model, nor go red because a retrain was not better.
MAIN = AssetSelection.all() - AssetSelection.groups("stream", "documents", "serving", "edge", "ml")
main_days = define_asset_job(
    "main_days",
    selection=MAIN & AssetSelection.groups("extract"),
    partitions_def=daily_partitions,
    description="The batch graph's first half: extract the days of a range from the source database.",
)
main_months = define_asset_job(
    "main_months",
    # The runs' own checks (the suites in polars, the blocking quarantine share) run with their assets; Great
    # Expectations' full validation is the nightly job's (`assets/quality.py`).
    selection=MAIN - AssetSelection.groups("extract") - AssetSelection.checks(*gx_checks),
    partitions_def=monthly_partitions,
    description="The batch graph's second half: standardize and warehouse the months that hold a range's days.",
)
MAIN_JOBS = (main_days, main_months)

_executor = in_process_executor if current_profile() == "local" else multiprocess_executor.configured(
    {"max_concurrent": max_concurrent()}
)


def stage_definitions(*packages: ModuleType) -> list[Definitions]:
    """Every stage module's own `defs`, found by walking the packages: a new stage needs no line here.

    Dagster's `load_from_defs_folder` wants one `defs/` folder per project; the design card keeps `assets/` and
    `sensors/` apart at the top level, so the same idea is applied to both folders."""
    found = []
    for package in packages:
        for module in pkgutil.iter_modules(package.__path__):
            stage = importlib.import_module(f"{package.__name__}.{module.name}")
            if isinstance(getattr(stage, "defs", None), Definitions):
                found.append(stage.defs)
    return found


defs = apply_policy(Definitions.merge(
    *stage_definitions(assets, sensors),
    Definitions(jobs=list(MAIN_JOBS), resources=build_resources(), executor=_executor),
))
