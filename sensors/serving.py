"""Serving automation: the endpoint follows the registry aliases; the invocation log lands when segments close."""

import json

from dagster import (
    AssetKey,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from pipelines.serving.invocations import ready_segments
from resources.mlflow import MlflowResource
from resources.serving import ServingResource

ENDPOINT_KEY = AssetKey(["serving", "delay_endpoint"])
INVOCATIONS_KEY = AssetKey(["serving", "invocations"])


def endpoint_run_key(champion: str | None, challenger: str | None) -> str:
    """Deterministic: one reconfiguration per (champion, challenger) pair, however many ticks see it."""
    return f"endpoint:champion={champion or '-'}:challenger={challenger or '-'}"


@sensor(
    name="delay_endpoint_follows_registry",
    asset_selection=[ENDPOINT_KEY],
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Re-apply serving/delay_endpoint when the registry's champion or challenger alias moves.",
)
def delay_endpoint_follows_registry(context: SensorEvaluationContext, mlflow: MlflowResource) -> SensorResult:
    from pipelines.ml.registry import CHALLENGER, CHAMPION, alias_version

    cursor = json.loads(context.cursor) if context.cursor else {}
    settings = mlflow.settings()
    seen = {"champion": alias_version(settings, CHAMPION), "challenger": alias_version(settings, CHALLENGER)}
    following = json.dumps(seen, sort_keys=True)
    if seen["champion"] is None:
        return SensorResult(skip_reason=SkipReason(f"{settings.model_name} has no champion yet"), cursor=following)
    if cursor == seen:
        return SensorResult(skip_reason=SkipReason(
            f"champion v{seen['champion']}, challenger v{seen['challenger'] or '-'}: unchanged since the last tick"),
            cursor=following)
    context.log.info(f"registry aliases moved from {cursor or 'nothing'} to {seen}: reconfiguring the endpoint")
    return SensorResult(run_requests=[RunRequest(
        run_key=endpoint_run_key(seen["champion"], seen["challenger"]),
        tags={"tributary/trigger": "registry-alias", "tributary/champion": seen["champion"],
              "tributary/challenger": seen["challenger"] or "-"})], cursor=following)


@sensor(
    name="serving_invocations_landing",
    asset_selection=[INVOCATIONS_KEY],
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.STOPPED,
    description="Land the endpoint's closed invocation-log segments into serving/invocations.",
)
def serving_invocations_landing(context: SensorEvaluationContext, serving: ServingResource) -> SensorResult:
    ready = ready_segments(serving.spool_dir, stale_seconds=serving.stale_segment_seconds)
    if not ready:
        return SensorResult(skip_reason=SkipReason(f"no closed segment in {serving.spool_dir}"),
                            cursor=context.cursor)
    newest = ready[-1].name
    if context.cursor == newest:
        return SensorResult(skip_reason=SkipReason(f"segments up to {newest} already requested"), cursor=newest)
    return SensorResult(run_requests=[RunRequest(run_key=f"invocations:{newest}",
                                                 tags={"tributary/segments": str(len(ready))})], cursor=newest)


defs = Definitions(sensors=[delay_endpoint_follows_registry, serving_invocations_landing])
