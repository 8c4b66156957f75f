"""Score champion and challenger on the same holdout and move `champion` only for a better challenger.

No Dagster. Both versions are loaded the way serving loads them (the MLflow pyfunc), so what is compared is
what would answer requests; the baseline is scored beside them for reference.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.ml import registry
from pipelines.ml.baseline import fit_baseline
from pipelines.ml.features import LABEL, model_inputs
from pipelines.ml.metrics import score
from pipelines.ml.registry import CHALLENGER, CHAMPION, Decision, decide
from pipelines.ml.split import TimeSplit, split
from pipelines.ml.tracking import MlflowSettings, activate
from pipelines.ml.tracking import client


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    metric: str
    margin: float
    holdout_rows: int
    time_split: TimeSplit
    baseline: dict[str, float]
    challenger_version: str | None
    challenger: dict[str, float] | None
    champion_before: str | None
    champion: dict[str, float] | None
    champion_after: str | None


def score_version(settings: MlflowSettings, version: str, holdout: pl.DataFrame) -> dict[str, float]:
    """The scores of one registered version on labelled flights, through its pyfunc."""
    import mlflow  # noqa: PLC0415 - start-up: mlflow ~3.6 s

    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")
    schema = model.metadata.get_input_schema()
    names = schema.input_names() if schema is not None else model_inputs(holdout.columns)
    missing = [c for c in names if c not in holdout.columns]
    if missing:
        raise ValueError(
            f"{settings.model_name} v{version} needs column(s) the feature table lacks: {', '.join(missing)}"
        )
    p_late = np.asarray(model.predict(holdout.select(names).to_pandas()), dtype="float64")
    bad = int((~np.isfinite(p_late) | (p_late < 0) | (p_late > 1)).sum())
    if bad:
        raise ValueError(f"{bad:,} of {len(p_late):,} predictions are not probabilities")
    return score(holdout[LABEL].cast(pl.Int8).to_numpy(), p_late)


def _score_challenger(settings: MlflowSettings, version: str | None,
                      holdout: pl.DataFrame) -> tuple[dict[str, float] | None, Decision | None]:
    """The challenger's scores; a challenger that cannot load or predict is a `broken` verdict, not a crash,
    so the evaluation is recorded and the champion keeps serving."""
    if not version:
        return None, None
    try:
        return score_version(settings, version, holdout), None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        nan = float("nan")
        return {"roc_auc": nan, "pr_auc": nan, "log_loss": nan}, Decision(
            "broken", f"challenger v{version} could not be scored on the holdout ({first}): the model is broken; "
                      "not promoted")


def evaluate_and_promote(
    features: pl.DataFrame,
    settings: MlflowSettings,
    *,
    margin: float,
    metric: str = "roc_auc",
    time_split: TimeSplit | None = None,
) -> Evaluation:
    """Score `challenger` and `champion` on the holdout; promote the challenger when `decide` says so."""
    activate(settings)
    time_split = time_split or TimeSplit.latest(features["flight_date"])
    parts = split(features, time_split)
    baseline = score(parts.holdout[LABEL].cast(pl.Int8).to_numpy(), fit_baseline(parts.train).predict(parts.holdout))
    challenger_version = registry.alias_version(settings, CHALLENGER)
    champion_version = registry.alias_version(settings, CHAMPION)
    champion = None
    if champion_version and champion_version != challenger_version:
        champion = score_version(settings, champion_version, parts.holdout)
    challenger, broken = _score_challenger(settings, challenger_version, parts.holdout)
    decision = broken or decide(
        challenger[metric] if challenger else None,
        champion[metric] if champion else None,
        margin=margin,
        metric=metric,
        challenger_version=challenger_version,
        champion_version=champion_version,
        baseline=baseline[metric],
    )
    _tag(settings, challenger_version, challenger, decision)
    _tag(settings, champion_version if champion else None, champion, None)
    champion_after = champion_version
    if decision.promote and challenger_version:
        registry.promote(settings, challenger_version, reason=decision.reason)
        champion_after = challenger_version
    return Evaluation(
        decision=decision, metric=metric, margin=margin, holdout_rows=parts.holdout.height, time_split=time_split,
        baseline=baseline, challenger_version=challenger_version, challenger=challenger,
        champion_before=champion_version, champion=champion, champion_after=champion_after,
    )


def _tag(settings: MlflowSettings, version: str | None, metrics: dict[str, float] | None,
         decision: Decision | None) -> None:
    if version is None or metrics is None:
        return

    mlflow_client = client(settings, check=False)
    tags = {f"holdout_{k}": f"{metrics[k]:.6f}" for k in ("roc_auc", "pr_auc", "log_loss")}
    tags["evaluated_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if decision is not None:
        tags["evaluation"] = decision.verdict
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(settings.model_name, version, key, value)
