"""Project-wide asset policy, applied once over the merged definitions: owners, tags, freshness.

Set here rather than on each asset, so a new asset of a stage gets its stage's policy without a copy
(dagster-open-platform's `definitions.py` does the same).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

from dagster import AssetSpec, Definitions, FreshnessPolicy, apply_freshness_policy

from assets.sources import READS

OWNERS: Final[dict[str, str]] = {
    "sources": "team:data-platform",
    "extract": "team:data-platform",
    "standardize": "team:data-platform",
    "warehouse": "team:data-platform",
    "stream": "team:streaming",
    "documents": "team:documents",
    "ml": "team:ml",
    "serving": "team:ml-platform",
    "edge": "team:ml-platform",
}
"""Who answers for a stage's tables: the UI shows them and a failed check names them."""

DAILY: Final = FreshnessPolicy.time_window(fail_window=timedelta(hours=48), warn_window=timedelta(hours=26))
WEEKLY: Final = FreshnessPolicy.time_window(fail_window=timedelta(days=15), warn_window=timedelta(days=8))
FRESHNESS: Final[dict[str, FreshnessPolicy]] = {
    "extract": DAILY,  # the 01:00 schedule; a missed night warns, two fail
    "standardize": DAILY,
    "warehouse": DAILY,
    "ml": WEEKLY,  # the Monday retrain; a missed week warns
}
"""Stages on a clock. The stream, the documents, serving and edge follow events, not a clock: no policy."""


def stage_policy(spec: AssetSpec) -> AssetSpec:
    """One asset's owners, tags and freshness from its group (the stage) and the first part of its key (the zone)."""
    stage = spec.group_name or "default"
    spec = spec.merge_attributes(tags={"tributary/stage": stage, "tributary/zone": spec.key.path[0]})
    if spec.key in READS:  # a raw asset reads its external source (assets/sources.py)
        spec = spec.merge_attributes(deps=[READS[spec.key]])
    if not spec.owners and stage in OWNERS:
        spec = spec.replace_attributes(owners=[OWNERS[stage]])
    if stage in FRESHNESS:
        spec = apply_freshness_policy(spec, FRESHNESS[stage], overwrite_existing=False)
    return spec


def apply_policy(defs: Definitions) -> Definitions:
    return defs.map_asset_specs(func=stage_policy)
