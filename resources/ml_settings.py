"""The MLflow stores of a profile without Dagster: what `MlflowResource` resolves to, for `tributary model list`
(which must start in under a second) and notebooks.

A leaf like `lake_settings`: the profile's default stores are chosen here once; `resources.ml.mlflow_resource`
builds the Dagster resource from the same choice.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from pipelines.ml.tracking import MlflowSettings, MlflowUnavailable
from resources.profiles import check_profile, current_profile, home, setting

LOCALSTACK_TRACKING_URI = "http://127.0.0.1:5000"
"""Where `mlflow server` listens by default: the tracking server beside LocalStack."""


def _local_lake_uri() -> str:
    root = setting("TRIBUTARY_LAKE_ROOT")
    if root and root.startswith("s3://"):
        return root.rstrip("/")
    path = root.removeprefix("file://") if root else os.path.join(home(), "lake")
    return Path(path).expanduser().resolve().as_uri()


def default_stores(profile: str) -> tuple[str | None, str | None]:
    """The profile's (tracking URI, artifact location) when no TRIBUTARY_MLFLOW_* variable says otherwise."""
    if check_profile(profile) == "local":
        store = Path(home(), "mlflow.db").expanduser().resolve()
        return f"sqlite:///{store}", f"{_local_lake_uri()}/mlflow"
    return (LOCALSTACK_TRACKING_URI if profile == "localstack" else None), None


def mlflow_settings(profile: str | None = None) -> MlflowSettings:
    """The profile's MLflow stores as plain settings, read from the environment now; MlflowUnavailable when no
    tracking URI is set, or when a copied home would use the original's artifacts."""
    tracking, artifacts = default_stores(profile or current_profile())
    tracking = setting("TRIBUTARY_MLFLOW_TRACKING_URI") or tracking
    if not tracking:
        raise MlflowUnavailable(
            "no MLflow tracking server configured: set TRIBUTARY_MLFLOW_TRACKING_URI (e.g. http://mlflow:5000)"
        )
    settings = MlflowSettings(tracking_uri=tracking, registry_uri=setting("TRIBUTARY_MLFLOW_REGISTRY_URI"),
                              artifact_location=setting("TRIBUTARY_MLFLOW_ARTIFACT_LOCATION") or artifacts)
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
