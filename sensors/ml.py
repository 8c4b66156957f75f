"""ML automation: the drift sensor asks for a retrain when recent flights no longer look like the training data."""

import json
import os

from dagster import (
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets.ml import RETRAIN_SELECTION
from pipelines.core import delta
from pipelines.ml import drift
from pipelines.ml.data import FACT, MissingTableError, features_from_warehouse
from resources.lake import LakeResource


def _setting(name: str, default: float, kind: type) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {raw}")
    return value


def psi_threshold() -> float:
    """TRIBUTARY_DRIFT_PSI_THRESHOLD, read at each tick."""
    return _setting("TRIBUTARY_DRIFT_PSI_THRESHOLD", drift.PSI_THRESHOLD, float)


def window_days() -> int:
    """TRIBUTARY_DRIFT_WINDOW_DAYS, read at each tick."""
    return int(_setting("TRIBUTARY_DRIFT_WINDOW_DAYS", drift.WINDOW_DAYS, int))


def run_key(reference_id: str, window_start: object, window_end: object) -> str:
    """Deterministic: one retrain per training reference and recent window, however many ticks see it."""
    return f"drift-retrain:{reference_id}:{window_start}:{window_end}"


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
    threshold, days = psi_threshold(), window_days()
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
