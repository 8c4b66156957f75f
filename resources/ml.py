"""The ML stage's resources: MLflow: a SQLite store on `local`, a tracking server on `localstack` and `aws`;
and the drift settings the drift sensor and `ml/drift_report` share.

- local: tracking and registry in `sqlite:///<TRIBUTARY_HOME>/mlflow.db`, artifacts in `<lake>/mlflow`.
- localstack, aws: the tracking server at `TRIBUTARY_MLFLOW_TRACKING_URI`, whose backend store is PostgreSQL
  and whose artifacts go where the server is told (`mlflow server --artifacts-destination s3://...`), or to
  `TRIBUTARY_MLFLOW_ARTIFACT_LOCATION` for a new experiment.

Building it touches nothing: the server is asked for its health only when a run uses it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from dagster import ConfigurableResource
from pydantic import Field

from pipelines.ml import drift
from pipelines.ml.tracking import EXPERIMENT, MODEL_NAME, MlflowSettings, MlflowUnavailable
from resources.profiles import check_profile, env, home, number, setting

LOCALSTACK_TRACKING_URI = "http://127.0.0.1:5000"
"""Where `mlflow server` listens by default: the tracking server beside LocalStack."""


class MlflowResource(ConfigurableResource):
    """Where runs, registered models and their artifacts live."""

    tracking_uri: str | None = Field(
        default=None, description="sqlite:///path/mlflow.db, or the http(s) URL of an MLflow tracking server."
    )
    registry_uri: str | None = Field(default=None, description="Model registry store; the tracking URI when unset.")
    artifact_location: str | None = Field(
        default=None,
        description="Artifact root of the experiment when it is created (a lake folder or s3:// prefix); the "
                    "server's own default when unset.",
    )
    experiment: str = EXPERIMENT
    model_name: str = MODEL_NAME

    def settings(self) -> MlflowSettings:
        """The stores as plain settings for pipelines.ml; MlflowUnavailable when no tracking URI is set."""
        if not self.tracking_uri:
            raise MlflowUnavailable(
                "no MLflow tracking server configured: set TRIBUTARY_MLFLOW_TRACKING_URI (e.g. http://mlflow:5000)"
            )
        settings = MlflowSettings(
            tracking_uri=self.tracking_uri,
            registry_uri=self.registry_uri or None,
            artifact_location=self.artifact_location or None,
            experiment=self.experiment,
            model_name=self.model_name,
        )
        check_not_moved(settings)
        return settings


def _local_path(uri: str) -> Path:
    return Path(url2pathname(urlparse(uri).path)).resolve()


def stored_artifact_root(db: Path, experiment: str) -> str | None:
    """The experiment's artifact root as MLflow stored it, read from its SQLite store without importing MLflow;
    None when the store or the experiment does not exist yet."""
    if not db.is_file():
        return None
    try:
        with contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT artifact_location FROM experiments WHERE name = ?", (experiment,)).fetchone()
    except sqlite3.Error:  # not an MLflow store yet (MLflow creates its tables on first use)
        return None
    return row[0] if row else None


def check_not_moved(settings: MlflowSettings) -> None:
    """Refuse a SQLite store whose experiment keeps its artifacts somewhere else than this home's artifact folder.

    MLflow stores artifact locations as absolute URIs (`file:///.../.tributary/lake/mlflow/<exp>/<run>/...`; it
    resolves relative ones at once), in the experiment, every run and every model version. A copied or moved
    home would still read, and write new runs into, the original's artifacts: refuse it with what to do."""
    if not (settings.tracking_uri.startswith("sqlite:///") and (settings.artifact_location or "").startswith("file:")):
        return
    db = Path(settings.tracking_uri.removeprefix("sqlite:///"))
    stored = stored_artifact_root(db, settings.experiment)
    if stored is None or not stored.startswith("file:"):
        return
    here, there = _local_path(settings.artifact_location), _local_path(stored)
    if here == there:
        return
    use = (f"TRIBUTARY_HOME={there.parent.parent}" if there.parts[-2:] == ("lake", "mlflow")
           else f"TRIBUTARY_MLFLOW_ARTIFACT_LOCATION={there.as_uri()}")
    raise MlflowUnavailable(
        f"{db} keeps the MLflow artifacts of experiment {settings.experiment!r} at {there}, not at {here}: this home "
        f"was copied or moved (MLflow stores absolute artifact paths, so it would read and write the original's "
        f"models). Use the original ({use}), or give this copy a registry of its own: remove {db} and {here}, "
        f"then run `tributary model retrain`"
    )


def _local_lake_uri() -> str:
    root = setting("TRIBUTARY_LAKE_ROOT")
    if root and root.startswith("s3://"):
        return root.rstrip("/")
    path = root.removeprefix("file://") if root else os.path.join(home(), "lake")
    return Path(path).expanduser().resolve().as_uri()


def mlflow_resource(profile: str) -> MlflowResource:
    """The MLflow resource of a profile; every field can be overridden by its environment variable."""
    if check_profile(profile) == "local":
        store = Path(home(), "mlflow.db").expanduser().resolve()
        tracking = f"sqlite:///{store}"
        artifacts = f"{_local_lake_uri()}/mlflow"
    else:
        tracking = LOCALSTACK_TRACKING_URI if profile == "localstack" else None
        artifacts = None
    return MlflowResource(
        tracking_uri=env("TRIBUTARY_MLFLOW_TRACKING_URI", tracking),
        registry_uri=env("TRIBUTARY_MLFLOW_REGISTRY_URI", None),
        artifact_location=env("TRIBUTARY_MLFLOW_ARTIFACT_LOCATION", artifacts),
    )


def drift_window_days() -> int:
    """TRIBUTARY_DRIFT_WINDOW_DAYS, read when called (each sensor tick, each drift report)."""
    return int(number("TRIBUTARY_DRIFT_WINDOW_DAYS", drift.WINDOW_DAYS, int))


def drift_psi_threshold() -> float:
    """TRIBUTARY_DRIFT_PSI_THRESHOLD, read when called (each sensor tick, each drift report)."""
    return number("TRIBUTARY_DRIFT_PSI_THRESHOLD", drift.PSI_THRESHOLD, float)
