"""ML fixtures: MLflow kept offline and a private MLflow store per test (the warehouse fixtures are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.ml.tracking import QUIET_ENV, MlflowSettings
from tests.conftest import write_warehouse  # noqa: F401  (the ML tests import it from here)


@pytest.fixture(autouse=True)
def _mlflow_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No telemetry, no progress bars, no git lookups: MLflow stays on this machine."""
    for name, value in QUIET_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "TRIBUTARY_MLFLOW_TRACKING_URI",
                 "TRIBUTARY_MLFLOW_REGISTRY_URI", "TRIBUTARY_MLFLOW_ARTIFACT_LOCATION",
                 "TRIBUTARY_DRIFT_PSI_THRESHOLD", "TRIBUTARY_DRIFT_WINDOW_DAYS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def mlflow_settings(tmp_path: Path) -> MlflowSettings:
    """A SQLite tracking and registry store of the test's own, artifacts beside it."""
    return MlflowSettings(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}",
        artifact_location=(tmp_path / "mlflow" / "artifacts").as_uri(),
    )
