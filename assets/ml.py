"""ML group: leak-free features, a tuned XGBoost model in MLflow, champion/challenger, drift.

Unpartitioned: each asset works on the whole warehouse, so the main job (daily partitions) can include them
and the weekly `ml_retrain` job runs them alone. The MLflow-heavy imports happen inside the assets.
"""

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Literal

import polars as pl
from dagster import (AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetCheckSpec,
                     AssetExecutionContext, AssetKey, AssetSelection, Config, Definitions,
                     MaterializeResult, MetadataValue, asset, asset_check, define_asset_job)
from pydantic import Field

from assets.automation import utc_schedule
from assets.common import chart_metadata, delta_metadata, optional_asset
from pipelines.core import delta
from pipelines.ml import drift
from pipelines.ml.data import (CHARTS, DIM_AIRPORT, DIM_DATE, DIM_PLANE, DRIFT_REPORT, EVALUATIONS, FACT, FEATURES,
                               WEATHER, features_from_warehouse, read_features, require)
from pipelines.ml.features import (AVAILABILITY, DEFAULT_HORIZON_HOURS, FACT_COLUMNS, LABEL, WEATHER_COLUMNS,
                                   changed_by_later_outcomes, checked_inputs, horizon_of, late_features)
from pipelines.ml.split import TimeSplit, missing_windows
from resources.lake import LakeResource
from resources.ml import MlflowResource, drift_psi_threshold, drift_window_days
from resources.training import training_engine

GROUP = "ml"
FEATURES_KEY = AssetKey.from_user_string(FEATURES)
MODEL_KEY = AssetKey(["ml", "delay_model"])
"""A registered model in MLflow, not a lake table."""
EVALUATION_KEY = AssetKey.from_user_string(EVALUATIONS)
DRIFT_KEY = AssetKey.from_user_string(DRIFT_REPORT)
WAREHOUSE_DEPS = [AssetKey.from_user_string(rel) for rel in (FACT, DIM_PLANE, DIM_AIRPORT, DIM_DATE, WEATHER)]


class DelayFeaturesConfig(Config):
    prediction_horizon_hours: float = Field(
        default=DEFAULT_HORIZON_HOURS, ge=0,
        description="How long before the scheduled departure the model predicts: every feature is built from what "
                    "was known then (weather reported by then, outcomes landed by then, the published schedule).",
    )


class DelayModelConfig(Config):
    n_trials: int = Field(default=4, ge=1, description="Optuna trials (each with early stopping).")
    timeout_seconds: float | None = Field(default=None, description="Stop starting new trials after this long.")
    max_rounds: int = Field(default=300, ge=1, description="Boosting rounds a trial may use at most.")
    early_stopping_rounds: int = Field(default=25, ge=1)
    seed: int = 13
    train_sample: int | None = Field(default=None, description="Train on at most this many flights (quick runs).")
    nthread: int = Field(default=0, ge=0, description="XGBoost threads; 0 uses every core.")
    training_backend: str | None = Field(
        default=None, description="local (this run's process) or ray (Ray Train workers); unset: "
                                  "TRIBUTARY_TRAINING_BACKEND, else local.")
    training_workers: int | None = Field(
        default=None, ge=1, description="Ray Train workers of each fit; unset: TRIBUTARY_TRAINING_WORKERS, else 1.")


class EvaluationConfig(Config):
    margin: float = Field(default=0.005, ge=0, description="How much better the challenger must score to be promoted.")
    metric: Literal["roc_auc", "pr_auc"] = "roc_auc"


@asset(
    key=FEATURES_KEY,
    group_name=GROUP,
    deps=WAREHOUSE_DEPS,
    kinds={"polars", "delta"},
    check_specs=[AssetCheckSpec(
        "no_leak", asset=FEATURES_KEY, blocking=True,
        description="Row by row, every model input's availability instant is at or before the scheduled departure "
                    "minus the prediction horizon.",
    )],
    description="One row per flight: what is known a declared horizon before its scheduled departure (published "
                "schedule, weather reported by then, outcomes of earlier days landed by then), the label.",
)
def delay_features(
    context: AssetExecutionContext, config: DelayFeaturesConfig, lake: LakeResource
) -> MaterializeResult:
    the_lake = lake.get_lake()
    horizon = config.prediction_horizon_hours
    features, versions = features_from_warehouse(the_lake, horizon_hours=horizon)
    version = delta.overwrite(the_lake, FEATURES, features)
    leak = no_leak_result(features, horizon)
    labelled = features.filter(pl.col(LABEL).is_not_null())
    metadata = delta_metadata(rows=features.height, uri=the_lake.uri(FEATURES), version=version,
                              schema=features.schema, preview=features)
    metadata.update({
        "labelled_rows": labelled.height,
        "late_share": round(float(labelled[LABEL].mean() or 0.0), 4),
        "first_date": str(features["flight_date"].min()),
        "last_date": str(features["flight_date"].max()),
        "prediction_horizon_hours": horizon,
        "source_versions": MetadataValue.json({FACT: versions.fact_flights, DIM_PLANE: versions.dim_plane,
                                               DIM_AIRPORT: versions.dim_airport, DIM_DATE: versions.dim_date,
                                               WEATHER: versions.weather}),
    })
    context.log.info(f"delay_features: {features.height:,} flights at a {horizon:g} h horizon "
                     f"(Delta version {version})")
    return MaterializeResult(metadata=metadata, check_results=[leak])


def no_leak_result(features: pl.DataFrame, horizon_hours: float,
                   availability: Mapping[str, str] = AVAILABILITY) -> AssetCheckResult:
    """The `no_leak` check on a feature table, row by row: every model input has a declared availability column
    and no row's value became known after `sched_dep_utc - horizon_hours`."""
    late = late_features(features, horizon_hours, availability=availability)
    inputs = checked_inputs(features.columns, availability)
    description = (
        f"{len(inputs)} model inputs on {features.height:,} rows, all known {horizon_hours:g} h before the scheduled "
        "departure" if not late else
        f"not known {horizon_hours:g} h before departure: " + ", ".join(f"{c} ({n:,} rows)" for c, n in late.items())
    )
    return AssetCheckResult(check_name="no_leak", passed=not late, description=description,
                            metadata={"prediction_horizon_hours": horizon_hours, "late_rows": MetadataValue.json(late)})


@asset_check(
    asset=FEATURES_KEY,
    name="history_uses_earlier_days_only",
    blocking=True,
    description="Flipping every outcome from the holdout's first day on leaves that day's features unchanged.",
)
def history_uses_earlier_days_only(context: AssetCheckExecutionContext, lake: LakeResource) -> AssetCheckResult:
    the_lake = lake.get_lake()
    fact = delta.scan(the_lake, FACT, version=require(the_lake, FACT)).select(FACT_COLUMNS).collect()
    if fact.height == 0:
        return AssetCheckResult(passed=True, description="warehouse/fact_flights is empty")
    day = TimeSplit.latest(fact["flight_date"]).holdout[0]
    day = min(day, fact["flight_date"].max())
    table, _ = read_features(the_lake)
    changed = changed_by_later_outcomes(
        fact, weather=delta.scan(the_lake, WEATHER, version=require(the_lake, WEATHER)).select(WEATHER_COLUMNS).collect(),
        planes=delta.scan(the_lake, DIM_PLANE).collect(), airports=delta.scan(the_lake, DIM_AIRPORT).collect(),
        dates=delta.scan(the_lake, DIM_DATE).collect(), day=day,
        horizon_hours=horizon_of(table) or DEFAULT_HORIZON_HOURS,
    )
    return AssetCheckResult(
        passed=not changed,
        description=(f"features of {day} do not depend on outcomes from {day} on" if not changed
                     else f"features of {day} change with later outcomes: {', '.join(changed)}"),
        metadata={"day": str(day), "changed": MetadataValue.json(changed)},
    )


@optional_asset(MODEL_KEY, group=GROUP, deps=[FEATURES_KEY], kinds={"xgboost", "mlflow"},
                description="XGBoost tuned by Optuna, tracked in MLflow, registered as `delay_model` with the alias "
                            "`challenger`.")
def delay_model(
    context: AssetExecutionContext, config: DelayModelConfig, lake: LakeResource, mlflow: MlflowResource
) -> Iterator[MaterializeResult]:
    """Skipped (with the reason in the log), not failed, while the warehouse does not reach all three windows:
    a main-job run over a few days must not fail for want of a year of data."""
    the_lake = lake.get_lake()
    features, version = read_features(the_lake)
    time_split = TimeSplit.latest(features["flight_date"])
    gaps = missing_windows(features, time_split)
    if gaps:
        context.log.warning(
            f"delay_model not trained: the features run {features['flight_date'].min()}.."
            f"{features['flight_date'].max()}, with no labelled flight in the window(s) {'; '.join(gaps)}"
        )
        return

    from pipelines.ml.train import TuningConfig, train_and_register  # noqa: PLC0415 - start-up: pulls in scikit-learn ~2.4 s

    settings = mlflow.settings()
    result = train_and_register(
        features, settings,
        config=TuningConfig(n_trials=config.n_trials, timeout_seconds=config.timeout_seconds,
                            max_rounds=config.max_rounds, early_stopping_rounds=config.early_stopping_rounds,
                            seed=config.seed, train_sample=config.train_sample, nthread=config.nthread,
                            engine=training_engine(config.training_backend, config.training_workers)),
        data_version=version, data_uri=the_lake.uri(FEATURES), time_split=time_split,
        tags={"dagster.run_id": context.run_id, "tributary.asset": MODEL_KEY.to_user_string()},
        log=context.log.info,
    )
    train_start, train_end = time_split.train
    reference = drift.reference_sample(features.filter(pl.col("flight_date").is_between(train_start, train_end)))
    drift.save_reference(the_lake, reference, reference_id=result.run_id, meta={
        "model_version": result.model_version, "run_id": result.run_id, "train_start": str(train_start),
        "train_end": str(train_end), "features_delta_version": version,
    })
    lift = result.holdout["roc_auc"] - result.baseline_holdout["roc_auc"]
    (context.log.info if lift > 0 else context.log.warning)(
        f"holdout ROC-AUC {result.holdout['roc_auc']:.4f} vs baseline {result.baseline_holdout['roc_auc']:.4f} "
        f"({lift:+.4f})")
    yield MaterializeResult(
        metadata={
            "mlflow_run_id": result.run_id,
            "mlflow_tracking_uri": settings.tracking_uri,
            "model_uri": result.model_uri,
            "model_version": result.model_version,
            "features_delta_version": version,
            "trials": result.trials,
            "best_iteration": result.best_iteration,
            "best_params": MetadataValue.json(result.params),
            "validation_roc_auc": round(result.validation["roc_auc"], 4),
            "holdout_roc_auc": round(result.holdout["roc_auc"], 4),
            "holdout_pr_auc": round(result.holdout["pr_auc"], 4),
            "holdout_log_loss": round(result.holdout["log_loss"], 4),
            "baseline_holdout_roc_auc": round(result.baseline_holdout["roc_auc"], 4),
            "baseline_holdout_pr_auc": round(result.baseline_holdout["pr_auc"], 4),
            "holdout_roc_auc_lift": round(lift, 4),
            "train_seconds": round(result.seconds, 1),
            "split": MetadataValue.json(time_split.as_params()),
        },
    )


@asset(
    key=EVALUATION_KEY,
    group_name=GROUP,
    deps=[MODEL_KEY, FEATURES_KEY],
    kinds={"mlflow", "delta"},
    check_specs=[AssetCheckSpec(
        "challenger_not_worse", asset=EVALUATION_KEY, blocking=True,
        description="ERROR (blocking: stops what would serve it) when the challenger is broken or scores below the "
                    "baseline by more than the margin; WARN when it is below the champion (a normal result: the "
                    "champion stays, the run is green).",
    )],
    description="Champion and challenger scored on the same holdout; `champion` moves only for a margin's gain.",
)
def delay_model_evaluation(
    context: AssetExecutionContext, config: EvaluationConfig, lake: LakeResource, mlflow: MlflowResource
) -> MaterializeResult:
    from pipelines.ml.evaluate import evaluate_and_promote  # noqa: PLC0415 - start-up: pulls in scikit-learn ~2.4 s

    the_lake = lake.get_lake()
    settings = mlflow.settings()
    features, version = read_features(the_lake)
    evaluation = evaluate_and_promote(features, settings, margin=config.margin, metric=config.metric)
    decision = evaluation.decision
    (context.log.info if decision.verdict in ("promote", "within_margin", "nothing_to_evaluate")
     else context.log.warning)(decision.reason)
    metric = config.metric

    def figure(scores: dict | None, name: str) -> float | None:
        return None if scores is None else scores[name]

    row = pl.DataFrame([{
        "run_id": context.run_id,
        "evaluated_at": dt.datetime.now(dt.UTC),
        "verdict": decision.verdict,
        "reason": decision.reason,
        "metric": metric,
        "margin": config.margin,
        "challenger_version": evaluation.challenger_version,
        "champion_before": evaluation.champion_before,
        "champion_after": evaluation.champion_after,
        "challenger_roc_auc": figure(evaluation.challenger, "roc_auc"),
        "champion_roc_auc": figure(evaluation.champion, "roc_auc"),
        "baseline_roc_auc": evaluation.baseline["roc_auc"],
        "challenger_pr_auc": figure(evaluation.challenger, "pr_auc"),
        "champion_pr_auc": figure(evaluation.champion, "pr_auc"),
        "baseline_pr_auc": evaluation.baseline["pr_auc"],
        "holdout_rows": evaluation.holdout_rows,
        "features_delta_version": version,
    }], schema_overrides={"challenger_version": pl.String, "champion_before": pl.String, "champion_after": pl.String,
                          "challenger_roc_auc": pl.Float64, "champion_roc_auc": pl.Float64,
                          "challenger_pr_auc": pl.Float64, "champion_pr_auc": pl.Float64})
    table_version = delta.merge(the_lake, EVALUATIONS, row, keys=["run_id"])
    metadata = delta_metadata(rows=delta.scan(the_lake, EVALUATIONS).select(pl.len()).collect().item(),
                              uri=the_lake.uri(EVALUATIONS), version=table_version, schema=row.schema, preview=row)
    metadata.update({
        "verdict": decision.verdict,
        "reason": decision.reason,
        "champion": evaluation.champion_after or "none",
        "challenger": evaluation.challenger_version or "none",
        f"challenger_{metric}": round(evaluation.challenger[metric], 4) if evaluation.challenger else -1.0,
        f"champion_{metric}": round(evaluation.champion[metric], 4) if evaluation.champion else -1.0,
        f"baseline_{metric}": round(evaluation.baseline[metric], 4),
    })
    return MaterializeResult(
        metadata=metadata,
        check_results=[AssetCheckResult(
            check_name="challenger_not_worse", passed=decision.verdict != "not_better" and not decision.blocking,
            severity=AssetCheckSeverity.ERROR if decision.blocking else AssetCheckSeverity.WARN,
            description=decision.reason,
            metadata={"verdict": decision.verdict, "margin": config.margin},
        )],
    )


@asset(
    key=DRIFT_KEY,
    group_name=GROUP,
    deps=[FEATURES_KEY, MODEL_KEY],
    kinds={"polars", "delta"},
    check_specs=[AssetCheckSpec(
        "no_shift", asset=DRIFT_KEY,
        description="No schedule, route, aircraft or weather feature of the recent window passes the PSI threshold.",
    )],
    description="PSI per feature and KS for continuous ones: the recent window against the training reference.",
)
def drift_report(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    reference = drift.load_reference(the_lake)
    if reference is None:
        raise RuntimeError(f"no training reference at {the_lake.uri(drift.REFERENCE_POINTER)}: "
                           "materialize ml/delay_model first")
    features, _ = read_features(the_lake)
    current = drift.recent_window(features, days=drift_window_days())
    assessment = drift.assess(reference.sample, current, threshold=drift_psi_threshold(), reference_id=reference.id)
    table = assessment.table
    version = delta.merge(the_lake, DRIFT_REPORT, table, keys=["reference_id", "window_end", "feature"])
    metadata = delta_metadata(rows=table.height, uri=the_lake.uri(DRIFT_REPORT), version=version,
                              schema=table.schema, preview=table.sort("psi", descending=True))
    window = f"{table['window_start'][0]}..{table['window_end'][0]}"
    metadata.update(chart_metadata(the_lake, CHARTS, "drift_report", drift.plot(
        table, title=f"PSI, {window} against the training reference")))
    metadata.update({"window": window, "reference_id": reference.id, "shifted": MetadataValue.json(assessment.drifted),
                     "highest_psi": round(assessment.worst[1], 4), "highest_psi_feature": assessment.worst[0]})
    context.log.info(f"drift over {window}: {assessment.summary()}")
    return MaterializeResult(
        metadata=metadata,
        check_results=[AssetCheckResult(check_name="no_shift", passed=not assessment.drifted,
                                        severity=AssetCheckSeverity.WARN, description=assessment.summary())],
    )


ml_assets = [delay_features, delay_model, delay_model_evaluation, drift_report]
ml_checks = [history_uses_earlier_days_only]
RETRAIN_SELECTION = AssetSelection.assets(*ml_assets)

ml_retrain_job = define_asset_job(
    "ml_retrain",
    selection=RETRAIN_SELECTION,
    description="Rebuild the features, retrain and register the delay model, evaluate champion and challenger, "
                "report drift.",
)

weekly_retrain_schedule = utc_schedule(
    "ml_weekly_retrain", ml_retrain_job, "0 4 * * 1",
    description="Retrain every Monday at 04:00 UTC so the model keeps up with the latest week of flights.",
)

defs = Definitions(assets=ml_assets, asset_checks=ml_checks, jobs=[ml_retrain_job], schedules=[weekly_retrain_schedule])
