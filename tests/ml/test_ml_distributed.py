"""Distributed training (issue 17): the delay model fitted on 2 Ray Train workers scores like the one-process fit.

Same data, seed and parameters; the two are not bit-identical (the distributed quantile sketch picks slightly
different histogram cut points), so the holdout ROC-AUCs must agree within AUC_TOLERANCE. Needs the `scale`
extra; a private local Ray instance is started for the fit and stopped after it.
"""

from __future__ import annotations

import polars as pl
import pytest

pytest.importorskip("ray.train", reason="the `scale` extra (pip install '.[scale]') is not installed")

from pipelines.ml.distributed import EngineConfig  # noqa: E402 - after the skip
from pipelines.ml.train import TuningConfig, fit  # noqa: E402 - after the skip
from resources.training import training_engine  # noqa: E402 - after the skip

AUC_TOLERANCE = 0.01
"""Measured gap on 40,000 training flights of 2013: see the README's "Scale out" (well under this)."""
CONFIG = TuningConfig(n_trials=1, max_rounds=60, early_stopping_rounds=10, train_sample=40_000,
                      refit_on_validation=False, nthread=1)


@pytest.fixture
def ray_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep Ray on loopback and out of auth and usage reporting (deploy/ray/README.md's pitfalls)."""
    for name, value in (("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"), ("RAY_AUTH_MODE", "disabled"),
                        ("RAY_USAGE_STATS_ENABLED", "0")):
        monkeypatch.setenv(name, value)


@pytest.mark.e2e
@pytest.mark.usefixtures("ray_env")
def test_two_ray_workers_score_like_one_process(features: pl.DataFrame) -> None:
    import ray

    local = fit(features, config=CONFIG)
    distributed = fit(features, config=TuningConfig(**{**CONFIG.__dict__,
                                                       "engine": EngineConfig(backend="ray", workers=2)}))
    assert not ray.is_initialized(), "the engine left its local Ray instance running"
    gap = abs(local.holdout["roc_auc"] - distributed.holdout["roc_auc"])
    print(f"holdout ROC-AUC: one process {local.holdout['roc_auc']:.4f}, 2 Ray workers "
          f"{distributed.holdout['roc_auc']:.4f} (gap {gap:.4f})")
    assert gap < AUC_TOLERANCE
    assert local.holdout["roc_auc"] > local.baseline_holdout["roc_auc"]  # both learned something real
    assert distributed.holdout["roc_auc"] > distributed.baseline_holdout["roc_auc"]
    assert local.booster_bytes() != distributed.booster_bytes()  # it really was another engine


def test_the_engine_is_chosen_by_config_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRIBUTARY_TRAINING_BACKEND", raising=False)
    monkeypatch.delenv("TRIBUTARY_TRAINING_WORKERS", raising=False)
    assert training_engine() == EngineConfig()
    monkeypatch.setenv("TRIBUTARY_TRAINING_WORKERS", "2")
    assert training_engine() == EngineConfig(backend="ray", workers=2)
    assert training_engine("ray", 3).workers == 3
    monkeypatch.setenv("TRIBUTARY_RAY_ADDRESS", "ray://head:10001")
    assert training_engine().ray_address == "ray://head:10001"
    with pytest.raises(ValueError, match="backend must be one of"):
        training_engine("spark")
    with pytest.raises(ValueError, match="need the `ray` backend"):
        EngineConfig(backend="local", workers=2)
