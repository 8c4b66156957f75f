"""Train the delay model: XGBoost tuned by Optuna with early stopping, every trial and the final fit in MLflow.

No Dagster. The flow: split by time; tune on train with early stopping on validate (one nested MLflow run per
trial); refit the best parameters on train + validate (the two most recent months matter most to a model
that is used on the months after); score the holdout beside the baseline; log the model as a pyfunc with
a signature and explicit requirements; register it as `delay_model` and give it the alias `challenger`.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from pipelines.ml import registry
from pipelines.ml.baseline import fit_baseline
from pipelines.ml.distributed import EngineConfig, engine
from pipelines.ml.features import CATEGORICAL_FEATURES, LABEL, horizon_of, model_inputs
from pipelines.ml.metrics import score
from pipelines.ml.split import Parts, TimeSplit, split
from pipelines.ml.tracking import MlflowSettings, activate

PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")


@dataclass(frozen=True)
class TuningConfig:
    """How hard to search. The defaults keep the model's share of a main-job run to a minute or two on two cores."""

    n_trials: int = 4
    max_rounds: int = 300
    early_stopping_rounds: int = 25
    timeout_seconds: float | None = None
    seed: int = 13
    nthread: int = 0
    """XGBoost threads; 0 uses every core."""
    refit_on_validation: bool = True
    train_sample: int | None = None
    """Train on at most this many (randomly drawn, seeded) training flights; None uses all of them."""
    engine: EngineConfig = field(default_factory=EngineConfig)
    """Where each booster is fitted: in this process, or data-parallel on Ray Train workers (distributed.py)."""


@dataclass(frozen=True)
class TrainResult:
    run_id: str
    experiment_id: str
    model_version: str
    model_uri: str
    params: dict[str, Any]
    best_iteration: int
    validation: dict[str, float]
    holdout: dict[str, float]
    baseline_holdout: dict[str, float]
    trials: int
    seconds: float
    time_split: TimeSplit
    importance: dict[str, float] = field(default_factory=dict)


def search_space(trial) -> dict[str, Any]:
    """The hyper-parameters Optuna explores (XGBoost names)."""
    return {
        "max_depth": trial.suggest_int("max_depth", 3, 9),
        "eta": trial.suggest_float("eta", 0.05, 0.3, log=True),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 50.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.6, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.5, 1.0),
        "lambda": trial.suggest_float("lambda", 1e-3, 10.0, log=True),
        "gamma": trial.suggest_float("gamma", 1e-3, 5.0, log=True),
    }


FIRST_TRIAL: dict[str, Any] = {
    "max_depth": 6, "eta": 0.1, "min_child_weight": 1.0, "subsample": 1.0, "colsample_bytree": 1.0,
    "lambda": 1.0, "gamma": 1e-3,
}
"""XGBoost's defaults (nearly): the search starts from a known-good point, so two trials are never worse."""


def spec_for(train: pl.DataFrame, inputs: list[str]) -> dict[str, Any]:
    """The encoding the model is trained with: feature order and each categorical's training vocabulary."""
    categories = {c: sorted(train[c].drop_nulls().unique().to_list()) for c in inputs if c in CATEGORICAL_FEATURES}
    return {"features": inputs, "categories": categories, "label": LABEL, "predict_nthread": 1}


def _matrix(frame: pl.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    from pipelines.ml.pyfunc_model import encode  # noqa: PLC0415 - start-up: pulls in mlflow ~3.6 s

    return encode(frame.select(spec["features"]).to_pandas(), spec)


def _base_params(config: TuningConfig) -> dict[str, Any]:
    return {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],  # early stopping follows the last one
        "tree_method": "hist",
        "max_bin": 256,
        "nthread": config.nthread,
        "seed": config.seed,
        "verbosity": 0,
    }


def _calibration_figure(y: np.ndarray, p: np.ndarray, title: str):
    import matplotlib  # noqa: PLC0415 - start-up: matplotlib.pyplot ~0.5 s

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - start-up: matplotlib.pyplot ~0.5 s
    from sklearn.calibration import calibration_curve  # noqa: PLC0415 - start-up: scikit-learn ~2.4 s

    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    fig, ax = plt.subplots(figsize=(5, 5), dpi=80)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    ax.plot(predicted, observed, marker="o", label="model")
    ax.set_xlabel("predicted P(late)")
    ax.set_ylabel("observed late share")
    ax.set_title(title)
    ax.legend(loc="upper left")
    return fig


def _importance_figure(importance: dict[str, float], top: int = 20):
    import matplotlib  # noqa: PLC0415 - start-up: matplotlib.pyplot ~0.5 s

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - start-up: matplotlib.pyplot ~0.5 s

    items = sorted(importance.items(), key=lambda kv: kv[1])[-top:]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(items) + 1), dpi=80)
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set_xlabel("total gain")
    ax.set_title("Feature importance (gain)")
    return fig


@dataclass(frozen=True)
class Trial:
    number: int
    params: dict[str, Any]
    validation: dict[str, float]
    best_iteration: int
    seconds: float


@dataclass(frozen=True)
class Fit:
    """A trained booster and everything measured on the way: the pure half of training (no MLflow)."""

    booster: Any
    spec: dict[str, Any]
    inputs: list[str]
    time_split: TimeSplit
    parts: Parts
    trials: list[Trial]
    best: Trial
    rounds: int
    holdout: dict[str, float]
    baseline_validation: dict[str, float]
    baseline_holdout: dict[str, float]
    p_holdout: np.ndarray
    importance: dict[str, float]

    def booster_bytes(self) -> bytes:
        """The model as XGBoost serializes it: what "the same model" means."""
        return bytes(self.booster.save_raw(raw_format="ubj"))


def fit(
    features: pl.DataFrame,
    *,
    config: TuningConfig | None = None,
    time_split: TimeSplit | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> Fit:
    """Tune on train with early stopping on validate, refit, score the holdout beside the baseline.

    Deterministic: the windows come sorted, the sampler, the sample and XGBoost are seeded, and no wall-clock
    budget applies unless `config.timeout_seconds` asks for one, so the same data and config give the same
    booster bytes however busy the machine is."""
    import optuna  # noqa: PLC0415 - start-up: optuna ~0.25 s
    import xgboost as xgb  # noqa: PLC0415 - start-up: xgboost ~1.9 s

    config = config or TuningConfig()
    if config.n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, not {config.n_trials}")
    inputs = model_inputs(features.columns)
    time_split = time_split or TimeSplit.latest(features["flight_date"])
    parts = split(features, time_split)
    baseline = fit_baseline(parts.train)  # on the whole training period, whatever the model samples
    train = parts.train
    if config.train_sample is not None and train.height > config.train_sample:
        train = train.sample(config.train_sample, seed=config.seed).sort("flight_date", "flight_id")
    parts = Parts(train=train, validate=parts.validate, holdout=parts.holdout)
    spec = spec_for(parts.train, inputs)
    x_train, x_val, x_hold = (_matrix(p, spec) for p in (parts.train, parts.validate, parts.holdout))
    y_train, y_val, y_hold = (p[LABEL].cast(pl.Int8).to_numpy() for p in (parts.train, parts.validate, parts.holdout))
    fitter = engine(config.engine, x_train, y_train, x_val, y_val, inputs)
    d_val = xgb.DMatrix(x_val, y_val, feature_names=inputs)
    base = _base_params(config)
    baseline_holdout = score(y_hold, baseline.predict(parts.holdout))
    baseline_val = score(y_val, baseline.predict(parts.validate))
    log(f"split {time_split.as_params()}: {parts.train.height:,} / {parts.validate.height:,} / "
        f"{parts.holdout.height:,} labelled flights; baseline holdout ROC-AUC {baseline_holdout['roc_auc']:.4f}")

    trials: list[Trial] = []
    boosters: dict[int, Any] = {}

    def objective(trial) -> float:
        params = search_space(trial)
        began = time.monotonic()
        booster = fitter.train({**base, **params}, config.max_rounds,
                               early_stopping_rounds=config.early_stopping_rounds)
        metrics = score(y_val, booster.predict(d_val, iteration_range=(0, booster.best_iteration + 1)))
        record = Trial(trial.number, params, metrics, int(booster.best_iteration), time.monotonic() - began)
        trials.append(record)
        boosters[trial.number] = booster
        log(f"trial {trial.number}: validation ROC-AUC {metrics['roc_auc']:.4f} after "
            f"{booster.best_iteration + 1} rounds ({record.seconds:.1f}s) {params}")
        return metrics["roc_auc"]

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=config.seed))
    study.enqueue_trial(FIRST_TRIAL)
    try:
        study.optimize(objective, n_trials=config.n_trials, timeout=config.timeout_seconds)
        best = trials[study.best_trial.number]
        if config.refit_on_validation:
            rounds = math.ceil((best.best_iteration + 1) * (parts.train.height + parts.validate.height)
                               / parts.train.height)
            booster = fitter.train({**base, **best.params}, rounds, refit=True)
        else:
            rounds = best.best_iteration + 1
            booster = boosters[best.number][: best.best_iteration + 1]
    finally:
        fitter.close()
    p_hold = booster.inplace_predict(x_hold)
    log(f"final fit: {rounds} rounds on {'train + validate' if config.refit_on_validation else 'train'}")
    return Fit(
        booster=booster, spec=spec, inputs=inputs, time_split=time_split, parts=parts, trials=trials, best=best,
        rounds=rounds, holdout=score(y_hold, p_hold), baseline_validation=baseline_val,
        baseline_holdout=baseline_holdout, p_holdout=p_hold,
        importance={k: float(v) for k, v in booster.get_score(importance_type="total_gain").items()},
    )


def train_and_register(
    features: pl.DataFrame,
    settings: MlflowSettings,
    *,
    config: TuningConfig | None = None,
    data_version: int | None = None,
    data_uri: str | None = None,
    time_split: TimeSplit | None = None,
    tags: dict[str, str] | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> TrainResult:
    """Fit, then track every trial and the final model in MLflow and register it as the challenger."""
    import mlflow  # noqa: PLC0415 - start-up: mlflow ~3.6 s

    config = config or TuningConfig()
    started = time.monotonic()
    fitted = fit(features, config=config, time_split=time_split, log=log)
    parts, best, holdout, inputs = fitted.parts, fitted.best, fitted.holdout, fitted.inputs
    experiment_id = activate(settings)
    data_params = {
        "features_delta_version": -1 if data_version is None else data_version,
        "features_uri": data_uri or "",
        "train_rows": parts.train.height,
        "validate_rows": parts.validate.height,
        "holdout_rows": parts.holdout.height,
        "features": len(inputs),
        "prediction_horizon_hours": horizon_of(features),
        **fitted.time_split.as_params(),
    }
    with mlflow.start_run(experiment_id=experiment_id, run_name="delay_model", tags=tags) as parent:
        mlflow.log_params({**data_params, "n_trials": config.n_trials, "max_rounds": config.max_rounds,
                           "early_stopping_rounds": config.early_stopping_rounds, "seed": config.seed,
                           "refit_on_validation": config.refit_on_validation})
        mlflow.log_metrics({f"baseline_validation_{k}": v for k, v in fitted.baseline_validation.items()})
        mlflow.log_metrics({f"baseline_holdout_{k}": v for k, v in fitted.baseline_holdout.items()})
        for trial in fitted.trials:
            with mlflow.start_run(experiment_id=experiment_id, run_name=f"trial-{trial.number}", nested=True):
                mlflow.log_params({**trial.params, "trial": trial.number})
                mlflow.log_metrics({f"validation_{k}": v for k, v in trial.validation.items()}
                                   | {"best_iteration": trial.best_iteration, "seconds": trial.seconds})
        mlflow.log_params({**{f"best_{k}": v for k, v in best.params.items()}, "best_trial": best.number,
                           "rounds": fitted.rounds})
        mlflow.log_metrics({f"validation_{k}": v for k, v in best.validation.items()}
                           | {f"holdout_{k}": v for k, v in holdout.items()}
                           | {"best_iteration": best.best_iteration, "trials": len(fitted.trials),
                              "holdout_roc_auc_lift": holdout["roc_auc"] - fitted.baseline_holdout["roc_auc"]})
        y_hold = parts.holdout[LABEL].cast(pl.Int8).to_numpy()
        _log_figure(_calibration_figure(y_hold, fitted.p_holdout, "Calibration on the holdout"),
                    "plots/calibration.png")
        _log_figure(_importance_figure(fitted.importance), "plots/feature_importance.png")
        mlflow.log_dict(dict(sorted(fitted.importance.items(), key=lambda kv: -kv[1])), "feature_importance.json")
        mlflow.log_dict(fitted.spec, "model_spec.json")
        version = _log_and_register(fitted, settings)
        log(f"registered {settings.model_name} v{version}: holdout ROC-AUC {holdout['roc_auc']:.4f} "
            f"(baseline {fitted.baseline_holdout['roc_auc']:.4f})")
        registry.set_challenger(settings, version, run_id=parent.info.run_id,
                                tags={"features_delta_version": str(data_params["features_delta_version"]),
                                      "validation_roc_auc": f"{best.validation['roc_auc']:.6f}",
                                      "holdout_roc_auc": f"{holdout['roc_auc']:.6f}"})
    return TrainResult(
        run_id=parent.info.run_id,
        experiment_id=experiment_id,
        model_version=version,
        model_uri=f"models:/{settings.model_name}/{version}",
        params=best.params,
        best_iteration=best.best_iteration,
        validation=best.validation,
        holdout=holdout,
        baseline_holdout=fitted.baseline_holdout,
        trials=len(fitted.trials),
        seconds=time.monotonic() - started,
        time_split=fitted.time_split,
        importance=fitted.importance,
    )


def _log_and_register(fitted: Fit, settings: MlflowSettings) -> str:
    """Log the booster and its spec as a pyfunc in the active run and register it; returns the new version."""
    import mlflow  # noqa: PLC0415 - start-up: mlflow ~3.6 s

    from pipelines.ml.pyfunc_model import BOOSTER_ARTIFACT, SPEC_ARTIFACT  # noqa: PLC0415 - start-up: pulls in mlflow ~3.6 s

    with tempfile.TemporaryDirectory() as tmp:
        spec_path, booster_path = Path(tmp, "spec.json"), Path(tmp, "booster.ubj")
        spec_path.write_text(json.dumps(fitted.spec))
        fitted.booster.save_model(booster_path)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            artifacts={SPEC_ARTIFACT: str(spec_path), BOOSTER_ARTIFACT: str(booster_path)},
            signature=signature(fitted.inputs),
            input_example=fitted.parts.holdout.select(fitted.inputs).head(3).to_pandas(),
            pip_requirements=pip_requirements(),
            registered_model_name=settings.model_name,
            metadata={"label": "is_late: arrival more than 15 minutes late", "features": fitted.inputs},
        )
    return str(info.registered_model_version)


def signature(inputs: list[str]):
    """Strings for the categories, doubles for the rest: every column must be there, any value may be missing
    (the trees route missing values); the output is P(late) per row."""
    from mlflow.models import ModelSignature  # noqa: PLC0415 - start-up: mlflow ~3.6 s
    from mlflow.types import ColSpec, Schema, TensorSpec  # noqa: PLC0415 - start-up: mlflow ~3.6 s

    columns = [ColSpec("string" if c in CATEGORICAL_FEATURES else "double", c, required=True) for c in inputs]
    return ModelSignature(inputs=Schema(columns), outputs=Schema([TensorSpec(np.dtype("float64"), (-1,), "p_late")]))


def _log_figure(fig, path: str) -> None:
    import matplotlib.pyplot as plt  # noqa: PLC0415 - start-up: matplotlib.pyplot ~0.5 s
    import mlflow  # noqa: PLC0415 - start-up: mlflow ~3.6 s

    try:
        mlflow.log_figure(fig, path)
    finally:
        plt.close(fig)


def pip_requirements() -> list[str]:
    """What serving installs: xgboost pinned to the version that wrote the booster, the rest bounded."""
    import mlflow  # noqa: PLC0415 - start-up: mlflow ~3.6 s
    import pandas  # noqa: PLC0415 - start-up: pandas ~0.4 s
    import xgboost  # noqa: PLC0415 - start-up: xgboost ~1.9 s

    def major(module) -> str:
        return module.__version__.split(".")[0]

    return [
        f"mlflow=={mlflow.__version__}",
        f"xgboost=={xgboost.__version__}",
        f"numpy>={np.__version__},<{int(major(np)) + 1}",
        f"pandas>={pandas.__version__},<{int(major(pandas)) + 1}",
    ]
