"""Serving automation: the endpoint follows the registry aliases; the invocation log lands when segments close."""

from dagster import (DefaultSensorStatus, Definitions, RunRequest, SensorEvaluationContext, SensorResult, SkipReason,
                     sensor)

from assets.serving import ENDPOINT_KEY, INVOCATIONS_KEY
from pipelines.ml.registry import CHALLENGER, CHAMPION
from pipelines.serving.invocations import ready_segments
from resources.serving import ServingResource
from sensors.ml import alias_sensor


def endpoint_run_key(champion: str | None, challenger: str | None) -> str:
    """Deterministic: one reconfiguration per (champion, challenger) pair, however many ticks see it."""
    return f"endpoint:champion={champion or '-'}:challenger={challenger or '-'}"


delay_endpoint_follows_registry = alias_sensor(
    "delay_endpoint_follows_registry",
    asset_selection=[ENDPOINT_KEY],
    minimum_interval_seconds=60,
    description="Re-apply serving/delay_endpoint when the registry's champion or challenger alias moves.",
    aliases=(CHAMPION, CHALLENGER),
    run_key=lambda seen: endpoint_run_key(seen[CHAMPION], seen[CHALLENGER]),
    tags=lambda seen: {"tributary/trigger": "registry-alias", "tributary/champion": seen[CHAMPION],
                       "tributary/challenger": seen[CHALLENGER] or "-"},
    done="the endpoint follows them",
    action="reconfiguring the endpoint",
)

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
