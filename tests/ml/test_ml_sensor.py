"""The drift sensor with built contexts: a winter window against summer training data asks for a retrain."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from dagster import RunRequest, SkipReason, build_sensor_context

from pipelines.ml import drift
from resources.lake import LocalLakeResource
from sensors.ml import delay_model_drift, run_key
from tests.ml.conftest import write_warehouse

SUMMER = (dt.date(2013, 7, 1), dt.date(2013, 8, 31))


def _with_summer_reference(root: Path, warehouse_tables: dict, features: pl.DataFrame, **kwargs):
    lake = write_warehouse(root, warehouse_tables, **kwargs)
    sample = drift.reference_sample(features.filter(pl.col("flight_date").is_between(*SUMMER)))
    drift.save_reference(lake, sample, reference_id="run-summer", meta={"train_start": str(SUMMER[0]),
                                                                       "train_end": str(SUMMER[1])})
    return lake


def _tick(root: Path, cursor: str | None = None):
    context = build_sensor_context(cursor=cursor, resources={"lake": LocalLakeResource(root=str(root))})
    return delay_model_drift(context), context


def test_a_winter_window_against_summer_training_data_requests_a_retrain(
    tmp_path: Path, warehouse_tables: dict, features: pl.DataFrame
) -> None:
    _with_summer_reference(tmp_path / "lake", warehouse_tables, features)
    result, _ = _tick(tmp_path / "lake")
    assert len(result.run_requests) == 1
    request: RunRequest = result.run_requests[0]
    assert request.run_key == run_key("run-summer", dt.date(2013, 12, 4), dt.date(2013, 12, 31))
    assert request.tags["tributary/trigger"] == "drift"
    assert request.tags["tributary/drift_feature"] == "origin_temp" and float(request.tags["tributary/drift_psi"]) > 1
    cursor = json.loads(result.cursor)
    assert cursor["reference"] == "run-summer" and cursor["fact_flights_version"] == 0

    again, _ = _tick(tmp_path / "lake", result.cursor)  # nothing new since: no second request
    assert not again.run_requests
    assert isinstance(again.skip_reason, SkipReason)
    assert again.skip_reason.skip_message.startswith("warehouse/fact_flights still at version 0")


def test_an_unshifted_window_is_skipped_with_the_figures(
    tmp_path: Path, warehouse_tables: dict, features: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_summer_reference(tmp_path / "lake", warehouse_tables, features, last_day=SUMMER[1])
    monkeypatch.setenv("TRIBUTARY_DRIFT_WINDOW_DAYS", "62")  # the recent window is the training window itself
    result, _ = _tick(tmp_path / "lake")
    assert not result.run_requests
    message = result.skip_reason.skip_message
    assert message.startswith("no feature shifted: the highest PSI is 0.0")
    assert "over 2013-07-01..2013-08-31 against reference run-summer" in message
    assert json.loads(result.cursor)["days"] == 62


def test_a_lower_threshold_turns_the_same_window_into_a_request(
    tmp_path: Path, warehouse_tables: dict, features: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_summer_reference(tmp_path / "lake", warehouse_tables, features, last_day=SUMMER[1])
    monkeypatch.setenv("TRIBUTARY_DRIFT_PSI_THRESHOLD", "0.05")  # August alone against July and August
    result, _ = _tick(tmp_path / "lake")
    assert [r.run_key for r in result.run_requests] == [run_key("run-summer", dt.date(2013, 8, 4), SUMMER[1])]


def test_without_a_reference_or_a_warehouse_the_sensor_says_so(tmp_path: Path) -> None:
    result, _ = _tick(tmp_path / "empty")
    assert result.skip_reason.skip_message == (
        "nothing to compare yet: no training reference (ml/delay_model writes one)"
    )


def test_a_bad_threshold_setting_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from resources.ml import drift_psi_threshold as psi_threshold

    monkeypatch.setenv("TRIBUTARY_DRIFT_PSI_THRESHOLD", "high")
    with pytest.raises(ValueError, match="TRIBUTARY_DRIFT_PSI_THRESHOLD='high' is not a float"):
        psi_threshold()
