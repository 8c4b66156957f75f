"""The one code location: a thin merge of the per-stage definitions, with project-wide policy applied once."""

from __future__ import annotations

import os
import warnings

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor, multiprocess_executor

from dagster import BetaWarning, PreviewWarning

# The single-run backfill policy is marked beta; it is what keeps a year one run instead of 365.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)

from assets import documents as documents_assets
from assets import edge as edge_assets
from assets import extract as extract_assets
from assets import ml as ml_assets
from assets import serving as serving_assets
from assets import standardize as standardize_assets
from assets import stream as stream_assets
from assets import warehouse as warehouse_assets
from assets.partitions import daily_partitions
from resources import build_resources, current_profile
from sensors import automation as automation_sensors
from sensors import documents as documents_sensors
from sensors import edge as edge_sensors
from sensors import extract as extract_sensors
from sensors import ml as ml_sensors
from sensors import serving as serving_sensors
from sensors import stream as stream_sensors

# The main job: the batch graph up to the warehouse, over a partition range. Locally it runs in one process
# (a multiprocess step costs seconds of start-up); elsewhere steps fan out to processes.
main_job = define_asset_job(
    "main",
    # The stream and the documents land by their own sensors, batch by batch; the endpoint and the edge fleet
    # follow the registry's aliases through theirs. Retraining is its own job (`ml_retrain`: weekly, on drift,
    # or by hand): a day's extract must not wait 25 s for a model, nor go red because a retrain was not better.
    selection=AssetSelection.all() - AssetSelection.groups("stream", "documents", "serving", "edge", "ml"),
    partitions_def=daily_partitions,
    description="The batch graph: extract, standardize and warehouse, over a range of days.",
)

_executor = in_process_executor if current_profile() == "local" else multiprocess_executor.configured(
    {"max_concurrent": int(os.environ.get("TRIBUTARY_MAX_CONCURRENT", "2"))}
)

defs = Definitions.merge(
    extract_assets.defs,
    standardize_assets.defs,
    warehouse_assets.defs,
    stream_assets.defs,
    Definitions(assets=stream_assets.lineage_assets),
    ml_assets.defs,
    documents_assets.defs,
    serving_assets.defs,
    edge_assets.defs,
    extract_sensors.defs,
    automation_sensors.defs,
    stream_sensors.defs,
    ml_sensors.defs,
    documents_sensors.defs,
    serving_sensors.defs,
    edge_sensors.defs,
    Definitions(jobs=[main_job], resources=build_resources(), executor=_executor),
)
