"""The serving assets with real resources: the endpoint config from the registry, the log landing, the A/B report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from dagster import materialize

from assets.serving import ab_report, delay_endpoint, invocations, online_features
from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.ml.data import FACT, FEATURES
from pipelines.serving import abtest
from pipelines.serving.invocations import SpoolWriter
from resources.lake import LocalLakeResource
from resources.ml import MlflowResource
from resources.serving import LocalServingResource, serving_resource
from pipelines.serving.online import ONLINE_FILE, TABLE as ONLINE, OnlineFeatures
from tests.conftest import RegisteredDelayModel, write_warehouse


def _serving(tmp_path: Path) -> LocalServingResource:
    root = tmp_path / "serving"
    return LocalServingResource(config_path=str(root / "endpoint.json"), models_dir=str(root / "models"),
                                spool_dir=str(root / "spool"), state_dir=str(root / "state"))


def _mlflow(m: RegisteredDelayModel) -> MlflowResource:
    return MlflowResource(tracking_uri=m.settings.tracking_uri, artifact_location=m.settings.artifact_location)


def test_delay_endpoint_publishes_champion_and_challenger(registered_delay_model: RegisteredDelayModel,
                                                          tmp_path: Path) -> None:
    m = registered_delay_model
    serving = _serving(tmp_path)
    resources = {"serving": serving, "mlflow": _mlflow(m), "lake": LocalLakeResource(root=str(tmp_path / "lake"))}
    result = materialize([delay_endpoint], resources=resources, run_config={"ops": {"serving__delay_endpoint": {
        "config": {"champion_weight": 0.8, "challenger_weight": 0.2}}}})
    assert result.success
    doc = json.loads(Path(serving.config_path).read_text())
    assert [(v["name"], v["model_version"], v["weight"]) for v in doc["variants"]] == [
        ("champion", m.champion, 0.8), ("challenger", m.challenger, 0.2)]
    assert all((Path(v["model_dir"]) / "spec.json").is_file() for v in doc["variants"])
    metadata = result.asset_materializations_for_node("serving__delay_endpoint")[0].metadata
    assert metadata["action"].value == "created"

    shadowed = materialize([delay_endpoint], resources=resources, run_config={"ops": {"serving__delay_endpoint": {
        "config": {"shadow_share": 0.25}}}})
    doc = json.loads(Path(serving.config_path).read_text())
    assert [v["name"] for v in doc["variants"]] == ["champion"] and doc["variants"][0]["weight"] == 1.0
    assert (doc["shadow"]["model_version"], doc["shadow"]["sample_share"]) == (m.challenger, 0.25)
    assert shadowed.asset_materializations_for_node("serving__delay_endpoint")[0].metadata["action"].value == "updated"


def _spool_traffic(spool: Path, flights: pl.DataFrame, seed: int = 5) -> None:
    """A/B traffic as the server spools it: the challenger sees the outcome more clearly than the champion."""
    rng = np.random.default_rng(seed)
    writer = SpoolWriter(spool)
    now = dt.datetime(2013, 12, 1, tzinfo=dt.UTC)
    for i, (flight_id, late) in enumerate(flights.select("flight_id", "is_late").iter_rows()):
        variant = "challenger" if i % 2 else "champion"
        signal = 1.5 if variant == "challenger" else 0.4
        score = 1 / (1 + np.exp(-(signal * (1 if late else -1) + rng.normal())))
        writer.append({"request_id": f"r{i}", "row": 0, "shadow": False, "endpoint": "tributary-delay",
                       "variant": variant, "model_version": "2" if variant == "challenger" else "1",
                       "features": "{}", "prediction": float(score), "model_latency_us": int(rng.integers(20, 90)),
                       "overhead_latency_us": int(rng.integers(100, 400)), "invoked_at": now.isoformat(),
                       "flight_id": flight_id, "flight_date": "2013-11-02",
                       "custom_attributes": f"flight_id={flight_id}"})
        if i % 500 == 499:
            writer.flush()
            writer.close_segment()
    writer.close()


def test_invocations_land_once_and_the_ab_report_recommends(registered_delay_model: RegisteredDelayModel,
                                                            tmp_path: Path) -> None:
    flights = registered_delay_model.holdout.filter(pl.col("is_late").is_not_null()).head(3000)
    lake = Lake(str(tmp_path / "lake"))
    delta.overwrite(lake, FACT, flights.select("flight_id", "flight_date", "is_late"))
    serving = _serving(tmp_path)
    _spool_traffic(Path(serving.spool_dir), flights)
    resources = {"serving": serving, "lake": LocalLakeResource(root=str(tmp_path / "lake"))}
    result = materialize([invocations, ab_report], resources=resources)
    assert result.success
    landed = result.asset_materializations_for_node("serving__invocations")[0].metadata
    assert landed["landed_rows"].value == 3000 and landed["dagster/row_count"].value == 3000
    assert [c.passed for c in result.get_asset_check_evaluations()] == [True]
    report = result.asset_materializations_for_node("serving__ab_report")[0].metadata
    assert report["recommendation"].value == "promote", report["reason"].value
    assert report["ci_low"].value > 0
    table = delta.scan(lake, "serving/ab_report").collect()
    assert set(table["variant"]) == {"champion", "challenger"}
    assert table.filter(pl.col("variant") == "challenger")["roc_auc"][0] > \
        table.filter(pl.col("variant") == "champion")["roc_auc"][0]

    again = materialize([invocations], resources=resources)  # nothing new in the spool: the table is unchanged
    assert again.asset_materializations_for_node("serving__invocations")[0].metadata["landed_rows"].value == 0
    assert delta.scan(lake, "serving/invocations").select(pl.len()).collect().item() == 3000


def test_comparison_needs_traffic_and_keeps_an_equal_challenger() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(4000) < 0.3
    p = np.clip(y * 0.3 + rng.random(4000) * 0.7, 0, 1)
    auc, var = abtest.auc_delong(y, p)
    from sklearn.metrics import roc_auc_score

    assert auc == pytest.approx(roc_auc_score(y, p)) and var > 0
    # DeLong's variance is the sampling variance of the AUC: a bootstrap of the same flights agrees with it
    # (500 resamples estimate a variance to about 6 %; a factor of 1.3 either way is well outside that).
    draws = rng.integers(0, y.size, size=(500, y.size))
    boot = np.var([roc_auc_score(y[i], p[i]) for i in draws], ddof=1)
    assert boot / 1.3 < var < boot * 1.3, (var, boot)
    ece, bins = abtest.calibration(y, p)
    assert 0 <= ece <= 1 and sum(b["n"] for b in bins) == 4000

    def report(n_a: int, n_b: int, auc_a: float, auc_b: float, se: float) -> pl.DataFrame:
        return pl.DataFrame({"variant": ["champion", "challenger"], "labelled": [n_a, n_b],
                             "roc_auc": [auc_a, auc_b], "roc_auc_se": [se, se]})

    assert abtest.compare(report(100, 5000, 0.7, 0.8, 0.01)).recommendation == "need more traffic"
    assert abtest.compare(report(5000, 5000, 0.70, 0.70, 0.001)).recommendation == "keep"
    assert abtest.compare(report(5000, 5000, 0.70, 0.75, 0.005)).recommendation == "promote"
    assert abtest.compare(report(5000, 5000, 0.70, 0.705, 0.02)).recommendation == "need more traffic"


def test_the_profiles_resource() -> None:
    local = serving_resource("local")
    assert local.mode == "local" and local.config_path.endswith("serving/endpoint.json")
    assert serving_resource("aws").mode == "sagemaker"
    with pytest.raises(ValueError, match="unknown TRIBUTARY_PROFILE"):
        serving_resource("gcp")


def test_online_features_land_in_the_lake_and_beside_the_endpoint_config(
        warehouse_tables: dict[str, pl.DataFrame], features: pl.DataFrame, tmp_path: Path) -> None:
    """serving/online_features from the warehouse as of its last known instant, at the features' horizon."""
    lake = write_warehouse(tmp_path / "lake", warehouse_tables)
    delta.overwrite(lake, FEATURES, features.head(100))
    serving = _serving(tmp_path)
    result = materialize([online_features], resources={"serving": serving,
                                                       "lake": LocalLakeResource(root=str(tmp_path / "lake"))})
    assert result.success
    table = delta.scan(lake, ONLINE).collect()
    published = Path(serving.config_path).with_name(ONLINE_FILE)
    assert serving.online_features_path == str(published)
    assert pl.read_parquet(published).equals(table)
    online = OnlineFeatures(table)
    last_outcome = warehouse_tables[FACT].select(pl.max("arr_utc")).item()
    assert last_outcome <= online.as_of <= last_outcome + dt.timedelta(days=2)
    assert online.horizon == dt.timedelta(hours=3)
    assert len(online.rates["hist_late_rate_tailnum"]) > 3000 and online.weather and online.schedule
    metadata = result.asset_materializations_for_node("serving__online_features")[0].metadata
    assert metadata["as_of"].value == str(online.as_of)
