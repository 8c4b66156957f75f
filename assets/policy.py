"""Project-wide asset policy, applied once over the merged definitions: owners, tags, freshness, the retry of
transient faults, and each stage's concurrency pool.

Set here rather than on each asset, so a new asset of a stage gets its stage's policy without a copy
(dagster-open-platform's `definitions.py` does the same).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import timedelta
from typing import Final

from dagster import (AssetKey, AssetsDefinition, AssetSpec, Backoff, Definitions, Failure, FreshnessPolicy, In,
                     Jitter, OpDefinition, Out, RetryPolicy, apply_freshness_policy)
from dagster._core.definitions.decorators.op_decorator import DecoratedOpFunction
from dagster._record import replace

from assets.sources import READS
from pipelines.core.transient import is_transient

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
KEY_FRESHNESS: Final[dict[AssetKey, FreshnessPolicy]] = {
    # The endpoint follows the registry's aliases; a champion unchanged for a month is worth a look.
    AssetKey(["serving", "delay_endpoint"]): FreshnessPolicy.time_window(fail_window=timedelta(days=31),
                                                                          warn_window=timedelta(days=15)),
}
"""Assets off their stage's clock that still promise a freshness."""

TRANSIENT_RETRY: Final = RetryPolicy(max_retries=3, delay=5, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)
"""5, 10, 20 s (with jitter) between attempts: enough for S3 throttling or a database restart to pass."""


class NotRetried(Failure):
    """A step's failure that the retry policy must not repeat: bad data, bad configuration or a bug fail the same
    way every time. The original error is its cause."""


def stage_policy(spec: AssetSpec) -> AssetSpec:
    """One asset's owners, tags and freshness from its group (the stage) and the first part of its key (the zone)."""
    stage = spec.group_name or "default"
    spec = spec.merge_attributes(tags={"tributary/stage": stage, "tributary/zone": spec.key.path[0]})
    if spec.key in READS:  # a raw asset reads its external source (assets/sources.py)
        spec = spec.merge_attributes(deps=[READS[spec.key]])
    if not spec.owners and stage in OWNERS:
        spec = spec.replace_attributes(owners=[OWNERS[stage]])
    if stage in FRESHNESS or spec.key in KEY_FRESHNESS:
        spec = apply_freshness_policy(spec, KEY_FRESHNESS.get(spec.key) or FRESHNESS[stage], overwrite_existing=False)
    return spec


def only_transient_retried(fn: Callable) -> Callable:
    """`fn` (an asset's body) with every error that is not transient raised as `NotRetried`, so the retry policy
    repeats a step after a dropped connection or S3 throttling, never after bad data."""

    def classify(exc: Exception) -> None:
        if isinstance(exc, Failure) or is_transient(exc):
            raise exc
        raise NotRetried(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from exc

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - classified, then raised again
                classify(exc)
        return generator

    @functools.wraps(fn)
    def function(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - classified, then raised again
            classify(exc)
    return function


def with_retry_and_pool(assets_def: AssetsDefinition) -> AssetsDefinition:
    """The asset's op with the transient-fault retry policy and its stage's concurrency pool (`deploy/dagster.yaml`
    caps each pool). Dagster has no public way to change an existing asset's op, so the op is rebuilt as
    `OpDefinition.with_replaced_properties` does, with these two fields changed."""
    op = assets_def.node_def
    if not isinstance(op, OpDefinition) or not isinstance(op.compute_fn, DecoratedOpFunction):
        return assets_def
    groups = set(assets_def.group_names_by_key.values())
    new_op = OpDefinition.dagster_internal_init(
        name=op.name, ins={d.name: In.from_definition(d) for d in op.input_defs},
        outs={d.name: Out.from_definition(d) for d in op.output_defs},
        compute_fn=DecoratedOpFunction(only_transient_retried(op.compute_fn.decorated_fn)),
        config_schema=op.config_schema, description=op.description, tags=op.tags,
        required_resource_keys=op.required_resource_keys, code_version=op._version, version=None,  # noqa: SLF001
        retry_policy=op.retry_policy or TRANSIENT_RETRY, pool=op.pool or (groups.pop() if len(groups) == 1 else None),
    )
    return assets_def.__class__.dagster_internal_init(**{**assets_def.get_attributes_dict(), "node_def": new_op})


def apply_policy(defs: Definitions) -> Definitions:
    specs = defs.map_asset_specs(func=stage_policy)
    return replace(specs, assets=[with_retry_and_pool(a) if isinstance(a, AssetsDefinition) and a.is_executable
                                  else a for a in specs.assets or []])
