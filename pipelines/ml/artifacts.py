"""A registered version's booster and feature spec as plain files, for the stages that run it without MLflow.

No Dagster. The endpoint and the edge bundle do not load the pyfunc (pandas per call, MLflow at run time):
they take the two artifacts the pyfunc itself loads (`spec.json`, `booster.ubj`) straight from the registry.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.ml.pyfunc_model import BOOSTER_ARTIFACT, SPEC_ARTIFACT
from pipelines.ml.registry import RegistryError
from pipelines.ml.tracking import MlflowSettings, activate
from pipelines.ml.tracking import client


@dataclass(frozen=True)
class ModelFiles:
    """One registered version on local disk."""

    name: str
    version: str
    run_id: str | None
    spec: dict
    """`features` (input order), `categories` (vocabulary per categorical feature), and training details."""
    booster_path: Path
    spec_path: Path

    @property
    def features(self) -> list[str]:
        return list(self.spec["features"])


def resolve_version(settings: MlflowSettings, version_or_alias: str) -> str:
    """`"3"` stays `"3"`; `"champion"` becomes the version the alias names (RegistryError when it names none)."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 - start-up: mlflow ~3.6 s


    ref = str(version_or_alias).strip()
    if ref.isdigit():
        return ref
    try:
        return str(client(settings).get_model_version_by_alias(settings.model_name, ref).version)
    except MlflowException:
        raise RegistryError(f"model {settings.model_name} has no version with the alias {ref!r}") from None


def download(settings: MlflowSettings, version_or_alias: str, dest: str | Path | None = None) -> ModelFiles:
    """Fetch the version's artifacts into `dest` (a new temporary folder when None) and read its spec."""
    import mlflow  # noqa: PLC0415 - start-up: mlflow ~3.6 s
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 - start-up: mlflow ~3.6 s


    activate(settings, check=True)
    version = resolve_version(settings, version_or_alias)
    try:
        model_version = client(settings).get_model_version(settings.model_name, version)
    except MlflowException:
        raise RegistryError(f"model {settings.model_name} has no version {version}") from None
    target = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix=f"{settings.model_name}-v{version}-"))
    target.mkdir(parents=True, exist_ok=True)
    local = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{settings.model_name}/{version}", dst_path=str(target)
    ))
    spec_path = _find(local, SPEC_ARTIFACT)
    booster_path = _find(local, BOOSTER_ARTIFACT)
    return ModelFiles(name=settings.model_name, version=version, run_id=model_version.run_id,
                      spec=json.loads(spec_path.read_text()), booster_path=booster_path, spec_path=spec_path)


def _find(root: Path, artifact: str) -> Path:
    """The file MLflow stored for a pyfunc artifact (under `artifacts/`, named as it was logged)."""
    stems = {"spec": ("spec.json",), "booster": ("booster.ubj", "booster.json")}[artifact]
    for name in stems:
        hits = sorted(root.rglob(name))
        if hits:
            return hits[0]
    raise RegistryError(f"the model at {root} has no {artifact} artifact ({' or '.join(stems)})")
