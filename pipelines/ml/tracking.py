"""Where MLflow keeps runs, models and artifacts, and the one place that points the MLflow client there.

No Dagster. `mlflow` is imported inside the functions: it takes seconds to import, and the definitions, the
CLI's help and the drift sensor should not pay for it.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Final

MODEL_NAME: Final = "delay_model"
EXPERIMENT: Final = "delay_model"

QUIET_ENV: Final = {
    # MLflow 3 reports usage to a remote endpoint unless told not to; nothing here may call out.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    # MLflow asks git for the source version of a run; a missing git binary must stay a non-event.
    "GIT_PYTHON_REFRESH": "quiet",
    # Progress bars on a worker's log are noise.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


class MlflowUnavailable(RuntimeError):
    """The tracking server or store cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class MlflowSettings:
    """A tracking store, a registry store and where new experiments put their artifacts."""

    tracking_uri: str
    registry_uri: str | None = None
    artifact_location: str | None = None
    experiment: str = EXPERIMENT
    model_name: str = MODEL_NAME

    @property
    def registry(self) -> str:
        return self.registry_uri or self.tracking_uri

    @property
    def is_server(self) -> bool:
        return self.tracking_uri.startswith(("http://", "https://"))


def quiet() -> None:
    """Keep MLflow off the network (telemetry) unless the environment already decided."""
    for name, value in QUIET_ENV.items():
        os.environ.setdefault(name, value)


def check_reachable(settings: MlflowSettings, *, attempts: int = 3, backoff_seconds: float = 0.5) -> None:
    """Fail with one clear line when the tracking store cannot be used; a server gets `attempts` tries.

    MLflow's own client retries for minutes before it gives up; asking the server's /health first turns an
    unreachable server into a prompt error.
    """
    if settings.tracking_uri.startswith("sqlite:///"):
        folder = Path(settings.tracking_uri.removeprefix("sqlite:///")).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise MlflowUnavailable(f"cannot create the MLflow store folder {folder}: {exc.strerror}") from None
        return
    if not settings.is_server:
        return
    url = settings.tracking_uri.rstrip("/") + "/health"
    reason = "no answer"
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (an http(s) URL by construction)
                if response.status == 200:
                    return
                reason = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            reason = str(getattr(exc, "reason", exc)) or type(exc).__name__
        if attempt + 1 < attempts:
            time.sleep(backoff_seconds * 2**attempt)
    raise MlflowUnavailable(
        f"cannot reach the MLflow tracking server at {settings.tracking_uri} after {attempts} attempts: {reason}"
    )


def activate(settings: MlflowSettings, *, check: bool = True) -> str:
    """Point the MLflow client at the stores and return the experiment id (created on first use)."""
    quiet()
    if check:
        check_reachable(settings)
    import mlflow  # noqa: PLC0415 - start-up: mlflow ~3.6 s

    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.registry)
    try:
        experiment = mlflow.get_experiment_by_name(settings.experiment)
        if experiment is not None:
            return experiment.experiment_id
        return mlflow.create_experiment(settings.experiment, artifact_location=settings.artifact_location)
    except mlflow.exceptions.MlflowException as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MlflowUnavailable(f"MLflow at {settings.tracking_uri} refused the request: {first}") from None


def client(settings: MlflowSettings, *, check: bool = True):
    """An MlflowClient on the settings' stores (the registry included)."""
    quiet()
    if check:
        check_reachable(settings)
    from mlflow import MlflowClient  # noqa: PLC0415 - start-up: mlflow ~3.6 s

    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.registry)
