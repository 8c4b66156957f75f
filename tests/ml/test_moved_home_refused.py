"""A copied `.tributary` must not read and write the original's MLflow artifacts: MLflow stores them as absolute
paths, so a moved home is refused with one line that says what to do."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.ml.cli import model
from pipelines.ml.tracking import MlflowUnavailable, activate
from resources.ml import MlflowResource, mlflow_resource


def _list(monkeypatch: pytest.MonkeyPatch, home: Path):
    monkeypatch.setenv("TRIBUTARY_HOME", str(home))
    return CliRunner().invoke(model, ["list"])


def test_a_copied_local_home_is_refused_and_the_original_still_works(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    original, copy = tmp_path / "original" / ".tributary", tmp_path / "copy" / ".tributary"
    monkeypatch.setenv("TRIBUTARY_HOME", str(original))
    activate(mlflow_resource("local").settings())  # the experiment, with its artifacts in <home>/lake/mlflow
    shutil.copytree(original, copy)

    refused = _list(monkeypatch, copy)
    assert refused.exit_code == 1
    [line] = refused.output.strip().splitlines()
    assert line.startswith("error: ") and "copied or moved" in line
    assert f"TRIBUTARY_HOME={original.resolve()}" in line and "tributary model retrain" in line

    accepted = _list(monkeypatch, original)
    assert accepted.exit_code == 0, accepted.output
    assert "no version of delay_model is registered" in accepted.output


def test_a_copied_store_with_a_registered_model_is_refused(registered_delay_model, tmp_path: Path) -> None:
    settings = registered_delay_model.settings
    store = Path(settings.tracking_uri.removeprefix("sqlite:///")).parent
    copy = tmp_path / "copied_store"
    shutil.copytree(store, copy)

    def resource(root: Path) -> MlflowResource:
        return MlflowResource(tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                              artifact_location=(root / "artifacts").as_uri())

    assert resource(store).settings().tracking_uri == settings.tracking_uri  # the original: as it was
    with pytest.raises(MlflowUnavailable, match="copied or moved") as refused:
        resource(copy).settings()
    assert str(store / "artifacts") in str(refused.value)
