"""The ML stage's resources: MLflow: a SQLite store on `local`, a tracking server on `localstack` and `aws`;
and the drift settings the drift sensor and `ml/drift_report` share.

- local: tracking and registry in `sqlite:///<TRIBUTARY_HOME>/mlflow.db`, artifacts in `<lake>/mlflow`.
- localstack, aws: the tracking server at `TRIBUTARY_MLFLOW_TRACKING_URI`, whose backend store is PostgreSQL
  and whose artifacts go where the server is told (`mlflow server --artifacts-destination s3://...`), or to
  `TRIBUTARY_MLFLOW_ARTIFACT_LOCATION` for a new experiment.

Building it touches nothing: the server is asked for its health only when a run uses it.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from pipelines.ml import drift
from pipelines.ml.tracking import EXPERIMENT, MODEL_NAME, MlflowSettings, MlflowUnavailable
from resources.ml_settings import check_not_moved, default_stores
from resources.profiles import env, number


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


def mlflow_resource(profile: str) -> MlflowResource:
    """The MLflow resource of a profile; every field can be overridden by its environment variable."""
    tracking, artifacts = default_stores(profile)
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
