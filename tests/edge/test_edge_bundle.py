"""The bundle: deterministic bytes, the registered model's predictions, a self-test that catches a bad release."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from pipelines.edge import bundle as bundles
from pipelines.edge.runtime import BundleError, Predictor, read_members


def test_bundle_predictions_equal_the_registered_model_on_the_holdout(registered_delay_model, edge_models):
    import mlflow

    m = registered_delay_model
    sample = m.holdout.gather_every(max(1, m.holdout.height // 3000)).head(3000)
    mlflow.set_tracking_uri(m.settings.tracking_uri)
    mlflow.set_registry_uri(m.settings.registry)  # another test of this worker may have pointed it elsewhere
    registered = mlflow.pyfunc.load_model(f"models:/{m.settings.model_name}/{m.champion}")
    expected = np.asarray(registered.predict(sample.select(m.inputs).to_pandas()), dtype=np.float64)
    predictor = Predictor.from_bytes(edge_models.champion.data)
    got = predictor.predict(bundles.clean_rows(sample.to_dicts(), predictor.features))
    assert got.shape == expected.shape
    assert np.max(np.abs(got - expected)) < 1e-6


def test_bundle_is_deterministic_and_self_describing(registered_delay_model, edge_models, tmp_path):
    from pipelines.ml.artifacts import download

    again = bundles.build(download(registered_delay_model.settings, registered_delay_model.champion, tmp_path),
                          edge_models.rows)
    assert again.data == edge_models.champion.data
    members = read_members(edge_models.champion.data)
    manifest = json.loads(members["manifest.json"])
    assert manifest["model_version"] == registered_delay_model.champion
    assert set(manifest["files"]) == {"model.ubj", "spec.json", "selftest.json"}
    assert manifest["min_runtime"]["xgboost"][0] >= 3
    assert manifest["files"]["model.ubj"]["length"] == len(members["model.ubj"])


def test_self_test_passes_for_a_release_and_fails_for_the_drill(edge_models):
    assert Predictor.from_bytes(edge_models.champion.data).self_test().passed
    result = Predictor.from_bytes(edge_models.bad.data).self_test()
    assert not result.passed and "exceeds" in result.reason


def test_a_member_that_does_not_match_the_manifest_is_refused(edge_models):
    members = read_members(edge_models.champion.data)
    members["model.ubj"] = members["model.ubj"][:-1] + b"\0"
    with pytest.raises(BundleError, match="does not match its manifest"):
        Predictor(members)


def test_single_row_latency_is_sub_millisecond_scale(edge_models):
    predictor = Predictor.from_bytes(edge_models.champion.data)
    row = edge_models.rows[0]
    predictor.predict_one(row)
    started = time.perf_counter()
    for _ in range(200):
        predictor.predict_one(row)
    per_row = (time.perf_counter() - started) / 200
    assert per_row < 0.01
