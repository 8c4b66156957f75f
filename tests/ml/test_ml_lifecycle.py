"""The ML group materialized for real: features, a tuned model in a SQLite MLflow store, champion/challenger, drift.

One module-scoped run trains the model on the full 2013 year (a sample of the training months, two trials);
the promotion tests copy its MLflow store so each starts from the same registry.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from dagster import AssetCheckSeverity, DagsterInstance, RunConfig, materialize

from assets import ml
from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.ml import drift, registry
from pipelines.ml.data import FEATURES
from pipelines.ml.features import FEATURES as FEATURE_COLUMNS
from pipelines.ml.features import LABEL
from pipelines.ml.tracking import QUIET_ENV, MlflowSettings, client
from pipelines.ml.train import TuningConfig, train_and_register
from resources.lake import LocalLakeResource
from resources.ml import MlflowResource
from tests.ml.conftest import write_warehouse

QUICK = ml.DelayModelConfig(n_trials=2, train_sample=60_000, max_rounds=300, nthread=1)
"""Two trials on 60,000 of the 217,727 training flights: the tests' budget, not the job's defaults."""


def _resources(lake_root: Path, settings: MlflowSettings) -> dict:
    return {"lake": LocalLakeResource(root=str(lake_root)),
            "mlflow": MlflowResource(tracking_uri=settings.tracking_uri, artifact_location=settings.artifact_location)}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, warehouse_tables: dict):
    root = tmp_path_factory.mktemp("ml")
    settings = MlflowSettings(tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                              artifact_location=(root / "artifacts").as_uri())
    write_warehouse(root / "lake", warehouse_tables)
    with pytest.MonkeyPatch.context() as mp:
        for name, value in QUIET_ENV.items():
            mp.setenv(name, value)
        result = materialize(
            [*ml.ml_assets, *ml.ml_checks],
            resources=_resources(root / "lake", settings),
            run_config=RunConfig(ops={"ml__delay_model": QUICK}),
            instance=DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    return {"result": result, "root": root, "settings": settings, "lake": Lake(str(root / "lake"))}


@pytest.fixture
def registry_copy(pipeline: dict, tmp_path: Path) -> MlflowSettings:
    """The pipeline's registry (v1 champion) in a store of this test's own."""
    shutil.copy(pipeline["root"] / "mlflow.db", tmp_path / "mlflow.db")
    return MlflowSettings(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                          artifact_location=pipeline["settings"].artifact_location)


def _checks(result) -> dict:
    return {e.asset_check_key.name: e for e in result.get_asset_check_evaluations()}


def _run(settings: MlflowSettings):
    mlflow_client = client(settings)
    version = mlflow_client.get_model_version(settings.model_name, "1")
    return mlflow_client, mlflow_client.get_run(version.run_id)


def test_the_ml_graph_materializes_end_to_end(pipeline: dict) -> None:
    result = pipeline["result"]
    assert result.success
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert materialized == {ml.FEATURES_KEY, ml.MODEL_KEY, ml.EVALUATION_KEY, ml.DRIFT_KEY}
    checks = _checks(result)
    for name in ("no_leak", "history_uses_earlier_days_only", "challenger_not_worse"):
        assert checks[name].passed, (name, checks[name].description)
    # Training data ends in August; the recent window is December: the weather has moved.
    assert not checks["no_shift"].passed and "origin_temp" in checks["no_shift"].description
    assert checks["no_shift"].severity == AssetCheckSeverity.WARN


def test_the_model_beats_the_baseline_on_the_holdout(pipeline: dict) -> None:
    _, run = _run(pipeline["settings"])
    m = run.data.metrics
    print(f"\nholdout ROC-AUC model {m['holdout_roc_auc']:.4f} baseline {m['baseline_holdout_roc_auc']:.4f}; "
          f"PR-AUC model {m['holdout_pr_auc']:.4f} baseline {m['baseline_holdout_pr_auc']:.4f}; "
          f"log-loss model {m['holdout_log_loss']:.4f} baseline {m['baseline_holdout_log_loss']:.4f}")
    assert 0.60 < m["baseline_holdout_roc_auc"] < 0.65
    assert m["holdout_roc_auc"] >= m["baseline_holdout_roc_auc"] + 0.05  # the goal
    # And not too good: 3 h ahead, with weather reported by then and outcomes landed by then, the full job scores
    # about 0.70 (README); a feature measured after departure (dep_delay alone gives about 0.9) lands far above.
    assert m["holdout_roc_auc"] < 0.73, "a holdout ROC-AUC above 0.73 at a 3 h horizon: look for a leak"
    assert run.data.params["prediction_horizon_hours"] == "3.0"
    assert m["holdout_pr_auc"] >= m["baseline_holdout_pr_auc"] + 0.05
    assert m["holdout_log_loss"] < m["baseline_holdout_log_loss"]
    assert m["holdout_rows"] == pytest.approx(53_991)


def test_the_run_tracks_every_trial_and_the_final_fit(pipeline: dict) -> None:
    settings, lake = pipeline["settings"], pipeline["lake"]
    mlflow_client, run = _run(settings)
    params = run.data.params
    assert params["features_delta_version"] == str(delta.version(lake, FEATURES))
    assert params["features_uri"] == lake.uri(FEATURES)
    assert (params["train_start"], params["train_end"], params["holdout_end"]) == ("2013-01-01", "2013-08-31", "2013-12-31")
    assert {"best_max_depth", "best_eta", "rounds", "n_trials"} <= set(params)
    for name in ("validation_roc_auc", "validation_pr_auc", "validation_log_loss", "holdout_roc_auc",
                 "holdout_pr_auc", "holdout_log_loss", "best_iteration"):
        assert name in run.data.metrics
    artifacts = {a.path for a in mlflow_client.list_artifacts(run.info.run_id)}
    artifacts |= {a.path for a in mlflow_client.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/calibration.png", "plots/feature_importance.png", "feature_importance.json",
            "model_spec.json"} <= artifacts
    trials = mlflow_client.search_runs([run.info.experiment_id],
                                       filter_string=f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    assert len(trials) == 2
    assert all("validation_roc_auc" in t.data.metrics and "max_depth" in t.data.params for t in trials)
    version = mlflow_client.get_model_version(settings.model_name, "1")
    assert version.tags["features_delta_version"] == params["features_delta_version"]


def test_the_registered_model_has_a_signature_and_pinned_requirements(pipeline: dict) -> None:
    import mlflow
    import xgboost

    settings = pipeline["settings"]
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry)
    uri = f"models:/{settings.model_name}/1"
    model = mlflow.pyfunc.load_model(uri)
    assert model.metadata.get_input_schema().input_names() == list(FEATURE_COLUMNS)
    requirements = Path(mlflow.artifacts.download_artifacts(f"{uri}/requirements.txt")).read_text().split()
    assert f"xgboost=={xgboost.__version__}" in requirements
    assert any(r.startswith("mlflow==") for r in requirements)
    row = {c: None for c in FEATURE_COLUMNS} | {"carrier": "ZZ", "origin": "JFK", "distance": 1000.0}
    frame = pd.DataFrame([row]).astype({c: "float64" for c in FEATURE_COLUMNS if c not in
                                        ("carrier", "origin", "dest", "plane_type", "plane_manufacturer", "plane_engine")})
    p = model.predict(frame)
    assert p.shape == (1,) and 0 < p[0] < 1  # an unseen carrier and missing values still get a probability


def test_the_first_model_becomes_champion(pipeline: dict) -> None:
    settings, lake = pipeline["settings"], pipeline["lake"]
    assert registry.alias_version(settings, registry.CHAMPION) == "1"
    assert registry.alias_version(settings, registry.CHALLENGER) is None  # promoted: nothing left to challenge
    evaluations = delta.scan(lake, ml.EVALUATIONS).collect()
    row = evaluations.row(0, named=True)
    assert evaluations.height == 1 and row["verdict"] == "promote" and row["champion_after"] == "1"
    assert "beats the baseline (no champion yet)" in row["reason"]


def test_the_drift_report_keeps_a_table_and_a_plot(pipeline: dict) -> None:
    lake = pipeline["lake"]
    report = delta.scan(lake, "ml/drift_report").collect()
    assert set(report["feature"]) == set(FEATURE_COLUMNS)
    assert report.filter(pl.col("kind") == "continuous")["ks_statistic"].null_count() == 0
    temp = report.filter(pl.col("feature") == "origin_temp").row(0, named=True)
    assert temp["triggers"] and temp["psi"] > 0.25 and str(temp["window_end"]) == "2013-12-31"
    assert lake.read_bytes("ml/_charts/drift_report.png")[:4] == b"\x89PNG"
    pointer = lake.read_json(drift.REFERENCE_POINTER)
    assert pointer["model_version"] == "1" and pointer["train_end"] == "2013-08-31"


def test_a_warehouse_short_of_a_year_skips_training_instead_of_failing_the_run(
    tmp_path: Path, warehouse_tables: dict
) -> None:
    """A main-job run over a few days: features are built, the model is skipped with the reason, MLflow untouched."""
    import datetime as dt

    write_warehouse(tmp_path / "lake", warehouse_tables, last_day=dt.date(2013, 3, 3))
    unreachable = MlflowSettings(tracking_uri="http://127.0.0.1:9")  # would fail if anything called it
    instance = DagsterInstance.ephemeral()
    result = materialize([*ml.ml_assets, *ml.ml_checks], resources=_resources(tmp_path / "lake", unreachable),
                         instance=instance, raise_on_error=False)
    assert result.success
    assert {e.asset_key for e in result.get_asset_materialization_events()} == {ml.FEATURES_KEY}
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert skipped == {"ml__delay_model_evaluation", "ml__drift_report"}
    reasons = [e.user_message for e in instance.all_logs(result.run_id) if "not trained" in e.user_message]
    assert reasons == ["delay_model not trained: the features run 2013-01-01..2013-03-03, with no labelled flight "
                       "in the window(s) validate 2013-09-01..2013-10-31; holdout 2013-11-01..2013-12-31"]


def _register_noise(features: pl.DataFrame, settings: MlflowSettings) -> str:
    """A deliberately bad model: trained on shuffled labels."""
    shuffled = features.with_columns(pl.col(LABEL).shuffle(seed=7))
    return train_and_register(shuffled, settings, config=TuningConfig(
        n_trials=1, max_rounds=5, train_sample=20_000, nthread=1)).model_version


def _evaluate(pipeline: dict, settings: MlflowSettings, *, margin: float = 0.005):
    return materialize(
        [ml.delay_model_evaluation], resources=_resources(pipeline["root"] / "lake", settings),
        run_config=RunConfig(ops={"ml__delay_model_evaluation": ml.EvaluationConfig(margin=margin)}),
        instance=DagsterInstance.ephemeral(), raise_on_error=False,
    )


def test_a_challenger_below_the_baseline_blocks_and_the_run_says_why(pipeline: dict, registry_copy: MlflowSettings) -> None:
    features = delta.scan(pipeline["lake"], FEATURES).collect()
    version = _register_noise(features, registry_copy)
    assert registry.alias_version(registry_copy, registry.CHALLENGER) == version == "2"
    result = _evaluate(pipeline, registry_copy)
    assert not result.success  # the blocking check fails the step, so nothing downstream serves v2
    check = _checks(result)["challenger_not_worse"]
    assert not check.passed and check.severity == AssetCheckSeverity.ERROR
    assert check.description.startswith("challenger v2 roc_auc 0.")
    assert "is worse than the baseline" in check.description and check.description.endswith("not promoted")
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "blocking asset check" in failure.step_failure_data.error.message
    assert registry.alias_version(registry_copy, registry.CHAMPION) == "1"


def test_a_challenger_below_the_champion_is_a_warning_and_the_run_stays_green(
    pipeline: dict, registry_copy: MlflowSettings
) -> None:
    features = delta.scan(pipeline["lake"], FEATURES).collect()
    weak = train_and_register(features, registry_copy, config=TuningConfig(
        n_trials=1, max_rounds=1, train_sample=5_000, nthread=1)).model_version  # real, but short of v1
    result = _evaluate(pipeline, registry_copy, margin=0.0)  # any shortfall counts: training is deterministic
    assert result.success  # not beating the champion is a normal result
    check = _checks(result)["challenger_not_worse"]
    assert not check.passed and check.severity == AssetCheckSeverity.WARN
    assert check.description.startswith(f"challenger v{weak} roc_auc 0.")
    assert "is below champion v1" in check.description and check.description.endswith("the champion stays")
    assert "baseline" not in check.description
    assert registry.alias_version(registry_copy, registry.CHAMPION) == "1"
    row = delta.scan(pipeline["lake"], ml.EVALUATIONS).collect().filter(pl.col("run_id") == result.run_id)
    assert row["verdict"].to_list() == ["not_better"] and row["champion_after"].to_list() == ["1"]


def test_a_broken_challenger_blocks_and_the_champion_keeps_serving(
    pipeline: dict, registry_copy: MlflowSettings
) -> None:
    mlflow_client = client(registry_copy)
    source = pipeline["root"] / "not_a_model"
    source.mkdir(exist_ok=True)
    broken = str(mlflow_client.create_model_version(registry_copy.model_name, source.as_uri()).version)
    registry.set_challenger(registry_copy, broken)
    result = _evaluate(pipeline, registry_copy)
    assert not result.success
    check = _checks(result)["challenger_not_worse"]
    assert not check.passed and check.severity == AssetCheckSeverity.ERROR
    assert check.description.startswith(f"challenger v{broken} could not be scored on the holdout (")
    assert "the model is broken" in check.description
    assert registry.alias_version(registry_copy, registry.CHAMPION) == "1"


def test_a_better_challenger_is_promoted_and_rollback_restores_the_previous_champion(
    pipeline: dict, registry_copy: MlflowSettings
) -> None:
    features = delta.scan(pipeline["lake"], FEATURES).collect()
    noise = _register_noise(features, registry_copy)
    registry.promote(registry_copy, noise, reason="a person chose it")  # a weak champion, by hand
    registry.set_challenger(registry_copy, "1")

    within = _evaluate(pipeline, registry_copy, margin=1.0)  # no model can beat another by 1.0 ROC-AUC
    check = _checks(within)["challenger_not_worse"]
    assert within.success and check.passed and "is within the margin 1.0000 of champion" in check.description
    assert registry.alias_version(registry_copy, registry.CHAMPION) == noise

    better = _evaluate(pipeline, registry_copy)
    check = _checks(better)["challenger_not_worse"]
    assert better.success and check.passed and check.description.endswith("promoted")
    assert f"beats champion v{noise}" in check.description
    assert registry.alias_version(registry_copy, registry.CHAMPION) == "1"

    assert registry.rollback(registry_copy) == ("1", noise)
    assert registry.alias_version(registry_copy, registry.CHAMPION) == noise
    assert registry.rollback(registry_copy) == (noise, "1")
    with pytest.raises(registry.RegistryError, match="champion v1 of delay_model has no earlier champion"):
        registry.rollback(registry_copy)


def test_an_evaluation_without_a_challenger_passes_and_is_recorded(
    pipeline: dict, registry_copy: MlflowSettings
) -> None:
    lake = pipeline["lake"]
    before = delta.scan(lake, ml.EVALUATIONS).collect().height
    result = _evaluate(pipeline, registry_copy)  # v1 was promoted: no challenger is left
    assert result.success
    check = _checks(result)["challenger_not_worse"]
    assert check.passed and check.description == "no challenger other than the champion: nothing to promote"
    evaluations = delta.scan(lake, ml.EVALUATIONS).collect()
    assert evaluations.height == before + 1  # one row per evaluation run (MERGE on the run id)
    assert evaluations.filter(pl.col("run_id") == result.run_id)["verdict"].to_list() == ["nothing_to_evaluate"]
    assert evaluations["baseline_roc_auc"].is_finite().all()
