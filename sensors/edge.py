"""Edge automation: a new champion becomes a new bundle (one run per champion version)."""

import json

from dagster import DefaultSensorStatus, Definitions, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from assets.edge import BUNDLE_KEY
from resources.mlflow import MlflowResource


def run_key(version: str) -> str:
    """Deterministic: one bundle run per champion version, however many ticks see it."""
    return f"edge-bundle:champion:{version}"


@sensor(
    name="edge_bundle_on_new_champion",
    asset_selection=[BUNDLE_KEY],
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.STOPPED,
    description="Request edge/delay_model_bundle when the `champion` alias of delay_model moves.",
)
def edge_bundle_on_new_champion(context: SensorEvaluationContext, mlflow: MlflowResource) -> SensorResult:
    from pipelines.ml.registry import CHAMPION, alias_version

    cursor = json.loads(context.cursor) if context.cursor else {}
    version = alias_version(mlflow.settings(), CHAMPION)
    if version is None:
        return SensorResult(skip_reason=SkipReason("delay_model has no champion yet"), cursor=json.dumps(cursor))
    if cursor.get("champion") == str(version):
        return SensorResult(skip_reason=SkipReason(f"champion still v{version}, its bundle already requested"),
                            cursor=json.dumps(cursor))
    context.log.info(f"champion moved to v{version}: requesting its edge bundle")
    return SensorResult(run_requests=[RunRequest(run_key=run_key(str(version)),
                                                 tags={"tributary/trigger": "new_champion",
                                                       "tributary/model_version": str(version)})],
                        cursor=json.dumps({"champion": str(version)}))


defs = Definitions(sensors=[edge_bundle_on_new_champion])
