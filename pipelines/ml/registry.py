"""Champion and challenger in the MLflow model registry: decide, promote with a margin, roll back.

No Dagster. A new version gets the alias `challenger`; `champion` names the version serving traffic. Every
move of `champion` is appended to a tag on the registered model (`tributary.champion_history`), so a
rollback knows which version served before, whoever moved it (the evaluation asset or a person).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from pipelines.ml.tracking import MlflowSettings, MlflowUnavailable, activate, client

CHAMPION: Final = "champion"
CHALLENGER: Final = "challenger"
HISTORY_TAG: Final = "tributary.champion_history"

Verdict = Literal["promote", "within_margin", "not_better", "worse_than_baseline", "broken", "nothing_to_evaluate"]
BLOCKING_VERDICTS: Final = frozenset({"worse_than_baseline", "broken"})
"""A challenger that is broken or below the baseline is a defect; one that does not beat the champion is news."""


class RegistryError(ValueError):
    """A registry request that cannot be carried out (unknown version, nothing to roll back to)."""


@dataclass(frozen=True)
class Decision:
    """What to do with the challenger, and why in one sentence (shown in the run and the asset check)."""

    verdict: Verdict
    reason: str

    @property
    def promote(self) -> bool:
        return self.verdict == "promote"

    @property
    def blocking(self) -> bool:
        return self.verdict in BLOCKING_VERDICTS


@dataclass(frozen=True)
class VersionInfo:
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    created: dt.datetime
    status: str
    tags: dict[str, str]


def decide(
    challenger: float | None,
    champion: float | None,
    *,
    margin: float,
    metric: str = "roc_auc",
    challenger_version: str | None = None,
    champion_version: str | None = None,
    baseline: float | None = None,
) -> Decision:
    """Promote only a challenger that beats the champion (or, with no champion yet, the baseline) by `margin`.

    Blocking: a score that is not a number (`broken`), or a challenger below the baseline by more than the
    margin (`worse_than_baseline`): something is wrong with the model or its data. Not blocking: a challenger
    that does not beat the champion, within the margin (`within_margin`: a retrain on unchanged data lands
    here) or below it (`not_better`): the champion stays, the run is green and the verdict is recorded.
    """
    if margin < 0:
        raise ValueError(f"the promotion margin cannot be negative: {margin}")
    if challenger is None or (challenger_version is not None and challenger_version == champion_version):
        return Decision("nothing_to_evaluate", "no challenger other than the champion: nothing to promote")
    who = f"challenger v{challenger_version}" if challenger_version else "the challenger"
    if not math.isfinite(challenger):
        return Decision("broken", f"{who} scored {metric} {challenger} on the holdout: the model is broken; "
                                  "not promoted")
    if baseline is not None and challenger < baseline - margin:
        return Decision("worse_than_baseline",
                        f"{who} {metric} {challenger:.4f} is worse than the baseline {baseline:.4f} by more than "
                        f"the margin {margin:.4f} ({challenger - baseline:+.4f}): not promoted")
    if champion is None:
        if baseline is None:
            return Decision("promote", f"{who} ({metric} {challenger:.4f}) is the first model: promoted")
        reference, against = baseline, "the baseline (no champion yet)"
    else:
        reference = champion
        against = f"champion v{champion_version}" if champion_version else "the champion"
    if challenger >= reference + margin:
        return Decision("promote", f"{who} {metric} {challenger:.4f} beats {against} {reference:.4f} "
                                   f"by {challenger - reference:+.4f} (margin {margin:.4f}): promoted")
    if challenger < reference - margin:
        return Decision("not_better", f"{who} {metric} {challenger:.4f} is below {against} {reference:.4f} "
                                      f"({challenger - reference:+.4f}, margin {margin:.4f}): the champion stays")
    return Decision("within_margin", f"{who} {metric} {challenger:.4f} is within the margin {margin:.4f} of "
                                     f"{against} {reference:.4f} ({challenger - reference:+.4f}): not promoted")


def _history(mlflow_client, name: str) -> list[str]:
    model = mlflow_client.get_registered_model(name)
    raw = model.tags.get(HISTORY_TAG, "")
    return [v for v in raw.split(",") if v]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _require_version(mlflow_client, name: str, version: str) -> None:
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 - start-up: mlflow ~3.6 s

    try:
        mlflow_client.get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(f"model {name} has no version {version}") from None


def _alias(mlflow_client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 - start-up: mlflow ~3.6 s

    try:
        return str(mlflow_client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def alias_version(settings: MlflowSettings, alias: str) -> str | None:
    """The version an alias names, or None (also when the model is not registered yet)."""
    return _alias(client(settings), settings.model_name, alias)


def load_model(settings: MlflowSettings, version_or_alias: str = CHAMPION) -> tuple[str, Any]:
    """A registered version (the champion by default) as the MLflow pyfunc the evaluation scores, with its
    version number: for notebooks and scripts. RegistryError when the version or alias names none."""
    import mlflow  # noqa: PLC0415 - start-up: mlflow ~1.8 s

    activate(settings)
    mlflow_client = client(settings)
    ref = str(version_or_alias).strip()
    version = ref if ref.isdigit() else _alias(mlflow_client, settings.model_name, ref)
    if version is None:
        raise RegistryError(f"model {settings.model_name} has no version with the alias {ref!r}")
    _require_version(mlflow_client, settings.model_name, version)
    return version, mlflow.pyfunc.load_model(f"models:/{settings.model_name}/{version}")


def set_challenger(settings: MlflowSettings, version: str, *, run_id: str | None = None,
                   tags: dict[str, str] | None = None) -> None:
    """Give a new version the alias `challenger` (and its evaluation tags)."""
    mlflow_client = client(settings)
    _require_version(mlflow_client, settings.model_name, version)
    mlflow_client.set_registered_model_alias(settings.model_name, CHALLENGER, str(version))
    for key, value in {**(tags or {}), **({"run_id": run_id} if run_id else {})}.items():
        mlflow_client.set_model_version_tag(settings.model_name, str(version), key, value)


def promote(settings: MlflowSettings, version: str, *, reason: str) -> str | None:
    """Make `version` the champion; return the previous champion (None if there was none).

    The challenger alias is cleared when it named the promoted version: it has nothing left to challenge.
    """
    mlflow_client = client(settings)
    name = settings.model_name
    version = str(version)
    _require_version(mlflow_client, name, version)
    previous = _alias(mlflow_client, name, CHAMPION)
    if previous == version:
        return previous
    mlflow_client.set_registered_model_alias(name, CHAMPION, version)
    history = _history(mlflow_client, name)
    if previous is not None and (not history or history[-1] != previous):
        history.append(previous)  # a champion set outside this module still counts as served
    history.append(version)
    mlflow_client.set_registered_model_tag(name, HISTORY_TAG, ",".join(history))
    mlflow_client.set_model_version_tag(name, version, "promoted_at", _now())
    mlflow_client.set_model_version_tag(name, version, "promotion_reason", reason[:4000])
    if _alias(mlflow_client, name, CHALLENGER) == version:
        mlflow_client.delete_registered_model_alias(name, CHALLENGER)
    return previous


def rollback(settings: MlflowSettings) -> tuple[str, str]:
    """Give `champion` back to the version that held it before the current one; return (from, to)."""
    mlflow_client = client(settings)
    name = settings.model_name
    current = _alias(mlflow_client, name, CHAMPION)
    if current is None:
        raise RegistryError(f"model {name} has no champion to roll back")
    history = _history(mlflow_client, name)
    if history and history[-1] == current:
        history.pop()
    if not history:
        raise RegistryError(f"champion v{current} of {name} has no earlier champion to roll back to")
    target = history[-1]
    mlflow_client.set_registered_model_alias(name, CHAMPION, target)
    mlflow_client.set_registered_model_tag(name, HISTORY_TAG, ",".join(history))
    mlflow_client.set_model_version_tag(name, current, "rolled_back_at", _now())
    return current, target


def list_versions(settings: MlflowSettings) -> list[VersionInfo]:
    """Every registered version, newest first, with its aliases and tags (empty when nothing is registered).

    A SQLite registry is read directly, read-only (`tributary model list` in ~0.3 s instead of ~6 s: importing
    MLflow alone takes ~1.8 s, opening its store more); any other store, or a SQLite store whose tables are not
    the ones read here, goes through MLflow's client."""
    if settings.registry.startswith("sqlite:///"):
        found = _versions_in_sqlite(Path(settings.registry.removeprefix("sqlite:///")), settings.model_name)
        if found is not None:
            return found
    return _client_versions(settings)


def _client_versions(settings: MlflowSettings) -> list[VersionInfo]:
    """`list_versions` through MLflow's client (any store)."""
    from mlflow.exceptions import MlflowException  # noqa: PLC0415 - start-up: mlflow ~3.6 s

    mlflow_client = client(settings)
    name = settings.model_name
    try:
        model = mlflow_client.get_registered_model(name)
    except MlflowException:
        return []
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    try:
        versions = mlflow_client.search_model_versions(f"name = '{name}'")
    except MlflowException as exc:
        raise MlflowUnavailable(f"cannot list the versions of {name}: {str(exc).splitlines()[0]}") from None
    return sorted(
        (
            VersionInfo(
                version=str(v.version),
                aliases=tuple(sorted(aliases.get(str(v.version), []))),
                run_id=v.run_id,
                created=dt.datetime.fromtimestamp(v.creation_timestamp / 1000, dt.UTC),
                status=v.status,
                tags=dict(v.tags or {}),
            )
            for v in versions
        ),
        key=lambda info: int(info.version),
        reverse=True,
    )


_DEFAULT_WORKSPACE = "default"
"""MLflow's workspace when workspaces are off (mlflow.utils.workspace_utils.DEFAULT_WORKSPACE_NAME)."""
_DELETED = "Deleted_Internal"
"""The stage MLflow gives a deleted version before it is gone (its client never lists it)."""


def _versions_in_sqlite(db: Path, name: str) -> list[VersionInfo] | None:
    """What `list_versions` returns, read with SQL from MLflow's SQLite registry tables; [] when the store does
    not exist yet, None when its tables are not the ones expected (the caller then asks MLflow).

    Read-only: nothing is created or migrated. tests/ml/test_ml_registry.py compares it with MLflow's client on a
    real store, so an MLflow upgrade that changes these tables fails a test instead of listing wrongly."""
    if not db.is_file():
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as conn:
            spaced = {row[1] for row in conn.execute("PRAGMA table_info(model_versions)")} >= {"workspace"}
            where = "name = ?" + (" AND workspace = ?" if spaced else "")
            args = (name, _DEFAULT_WORKSPACE) if spaced else (name,)
            rows = conn.execute(f"SELECT version, run_id, creation_time, status FROM model_versions WHERE {where}"
                                " AND current_stage != ?", (*args, _DELETED)).fetchall()
            aliases: dict[str, list[str]] = {}
            for alias, version in conn.execute(f"SELECT alias, version FROM registered_model_aliases WHERE {where}",
                                               args):
                aliases.setdefault(str(version), []).append(alias)
            tags: dict[str, dict[str, str]] = {}
            for version, key, value in conn.execute(
                    f"SELECT version, key, value FROM model_version_tags WHERE {where}", args):
                tags.setdefault(str(version), {})[key] = value
    except sqlite3.Error:  # no registry tables yet, or not the columns read here
        return None
    return [
        VersionInfo(version=str(version), aliases=tuple(sorted(aliases.get(str(version), []))), run_id=run_id,
                    created=dt.datetime.fromtimestamp(created / 1000, dt.UTC), status=status,
                    tags=tags.get(str(version), {}))
        for version, run_id, created, status in sorted(rows, key=lambda row: int(row[0]), reverse=True)
    ]
