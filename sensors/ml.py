"""ML automation: the drift sensor asks for a retrain when recent flights no longer look like the training data;
`alias_sensor` builds the edge and serving sensors that follow the registry's aliases."""

import json
from collections.abc import Callable, Sequence

from dagster import (AssetKey, DefaultSensorStatus, Definitions, RunRequest, SensorDefinition, SensorEvaluationContext,
                     SensorResult, SkipReason, sensor)

from assets.ml import RETRAIN_SELECTION
from pipelines.core import delta
from pipelines.ml import drift
from pipelines.ml.data import FACT, MissingTableError, features_from_warehouse
from resources.lake import LakeResource
from resources.ml import MlflowResource, drift_psi_threshold, drift_window_days
from pipelines.ml.registry import CHAMPION, alias_version


def run_key(reference_id: str, window_start: object, window_end: object) -> str:
    """Deterministic: one retrain per training reference and recent window, however many ticks see it."""
    return f"drift-retrain:{reference_id}:{window_start}:{window_end}"


def alias_sensor(
    name: str,
    *,
    asset_selection: Sequence[AssetKey],
    minimum_interval_seconds: int,
    description: str,
    aliases: tuple[str, ...],
    run_key: Callable[[dict], str],
    tags: Callable[[dict], dict[str, str]],
    done: str,
    action: str,
) -> SensorDefinition:
    """A sensor that follows the registry's aliases of the model: one run when an alias moves (the cursor holds
    the versions last seen), a SkipReason while there is no champion or nothing moved (`done` says what the
    unchanged aliases already have)."""

    @sensor(name=name, asset_selection=list(asset_selection), minimum_interval_seconds=minimum_interval_seconds,
            default_status=DefaultSensorStatus.STOPPED, description=description)
    def follow(context: SensorEvaluationContext, mlflow: MlflowResource) -> SensorResult:
        cursor = json.loads(context.cursor) if context.cursor else {}
        settings = mlflow.settings()
        seen = {alias: alias_version(settings, alias) for alias in aliases}
        following = json.dumps(seen, sort_keys=True)
        if seen.get(CHAMPION) is None:
            return SensorResult(skip_reason=SkipReason(f"{settings.model_name} has no champion yet"),
                                cursor=following)
        if cursor == seen:
            state = ", ".join(f"{alias} v{version or '-'}" for alias, version in seen.items())
            return SensorResult(skip_reason=SkipReason(f"{state} still, unchanged since the last tick: {done}"),
                                cursor=following)
        context.log.info(f"registry aliases moved from {cursor or 'nothing'} to {seen}: {action}")
        return SensorResult(run_requests=[RunRequest(run_key=run_key(seen), tags=tags(seen))], cursor=following)

    return follow


@sensor(
    name="delay_model_drift",
    asset_selection=RETRAIN_SELECTION,
    minimum_interval_seconds=3600,
    default_status=DefaultSensorStatus.STOPPED,
    description="Compare the last weeks' features with the training reference (PSI, KS); retrain above the threshold.",
)
def delay_model_drift(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    the_lake = lake.get_lake()
    reference_id = drift.reference_id(the_lake)
    fact_version = delta.version(the_lake, FACT)
    if reference_id is None or fact_version is None:
        missing = "no training reference (ml/delay_model writes one)" if reference_id is None else f"no {FACT}"
        return SensorResult(skip_reason=SkipReason(f"nothing to compare yet: {missing}"), cursor=json.dumps(cursor))
    threshold, days = drift_psi_threshold(), drift_window_days()
    seen = {"fact_flights_version": fact_version, "reference": reference_id, "threshold": threshold, "days": days}
    if all(cursor.get(k) == v for k, v in seen.items()):
        return SensorResult(
            skip_reason=SkipReason(f"{FACT} still at version {fact_version} and the reference {reference_id} "
                                   f"unchanged since the last check ({cursor.get('summary', 'no drift')})"),
            cursor=json.dumps(cursor, sort_keys=True),
        )
    try:
        features, _ = features_from_warehouse(the_lake)
    except MissingTableError as exc:
        return SensorResult(skip_reason=SkipReason(str(exc)), cursor=json.dumps(cursor, sort_keys=True))
    reference = drift.load_reference(the_lake)
    current = drift.recent_window(features, days=days)
    assessment = drift.assess(reference.sample, current, threshold=threshold, reference_id=reference.id)
    start, end = current["flight_date"].min(), current["flight_date"].max()
    summary = f"{assessment.summary()} over {start}..{end} against reference {reference.id}"
    following = json.dumps({**seen, "reference": reference.id, "summary": summary}, sort_keys=True)
    if not assessment.drifted:
        return SensorResult(skip_reason=SkipReason(summary), cursor=following)
    context.log.info(f"requesting a retrain: {summary}")
    feature, psi = assessment.worst
    return SensorResult(
        run_requests=[RunRequest(
            run_key=run_key(reference.id, start, end),
            tags={"tributary/trigger": "drift", "tributary/drift_feature": feature,
                  "tributary/drift_psi": f"{psi:.3f}", "tributary/drift_window": f"{start}..{end}"},
        )],
        cursor=following,
    )


defs = Definitions(sensors=[delay_model_drift])
