"""`tributary model`: see the registered delay models and move the champion by a person's decision."""

from __future__ import annotations

import time

import click

from pipelines.core.errors import Failure, one_line_errors, run_failure_reason
from pipelines.core.instance import local_instance_home
from pipelines.core.progress import step
from pipelines.ml.tracking import MlflowSettings, MlflowUnavailable


def _settings() -> MlflowSettings:
    """The profile's stores, without Dagster (the same choice as `resources.ml.mlflow_resource`)."""
    from resources import ProfileError
    from resources.ml_settings import mlflow_settings

    try:
        return mlflow_settings()
    except (ProfileError, MlflowUnavailable) as exc:
        raise Failure(str(exc)) from None


def _errors() -> tuple[type[BaseException], ...]:
    """The registry's and MLflow's own errors; anything else is a bug and keeps its traceback."""
    from pipelines.ml.registry import RegistryError

    return RegistryError, MlflowUnavailable


_guard = one_line_errors(_errors)


@click.group()
def model() -> None:
    """The delay model in the MLflow registry: versions, champion and challenger."""


@model.command("list")
@_guard
def list_cmd() -> None:
    """Registered versions, newest first, with aliases and holdout scores."""
    from pipelines.ml.registry import list_versions

    with step("model: reading the versions in the MLflow registry"):
        settings = _settings()
        versions = list_versions(settings)
    if not versions:
        click.echo(f"no version of {settings.model_name} is registered at {settings.tracking_uri}")
        return
    click.echo(f"{'version':>7}  {'aliases':<21} {'holdout ROC-AUC':>15}  {'created (UTC)':<19}  run")
    for v in versions:
        auc = v.tags.get("holdout_roc_auc")
        auc_text = f"{float(auc):.4f}" if auc else "-"
        click.echo(f"{v.version:>7}  {','.join(v.aliases) or '-':<21} {auc_text:>15}  "
                   f"{v.created:%Y-%m-%d %H:%M:%S}  {v.run_id or '-'}")


def _registry_step(doing: str):
    """The wait of a registry command, said on a terminal: importing MLflow takes seconds, opening its store a
    few more; the work itself is a few queries."""
    return step(f"model: {doing} in the MLflow registry (MLflow loads first)")


@model.command()
@click.argument("version")
@_guard
def promote(version: str) -> None:
    """Make VERSION the champion (no margin: a person decided)."""
    from pipelines.ml.registry import promote as promote_version

    with _registry_step(f"moving the champion alias to v{version}"):
        settings = _settings()
        previous = promote_version(settings, version, reason="promoted by hand (tributary model promote)")
    if previous == version:
        click.echo(f"{settings.model_name} v{version} is already the champion")
    else:
        click.echo(f"{settings.model_name} champion: v{previous or '-'} -> v{version}")


@model.command()
@_guard
def rollback() -> None:
    """Give the champion alias back to the version that held it before."""
    from pipelines.ml.registry import rollback as rollback_champion

    with _registry_step("moving the champion alias back"):
        settings = _settings()
        current, target = rollback_champion(settings)
    click.echo(f"{settings.model_name} champion rolled back: v{current} -> v{target}")


@model.command()
@_guard
def retrain() -> None:
    """Run the ml_retrain job once: features, tuning, evaluation, drift (what the weekly schedule runs)."""
    run_retrain(trigger="manual")


def run_retrain(*, trigger: str) -> None:
    """ml_retrain as one run in the project's Dagster instance, so it shows in the UI like a scheduled one."""

    from dagster import DagsterInstance

    from pipelines.definitions import defs
    from resources import current_profile, home

    local_instance_home(home(), current_profile())
    started = time.monotonic()
    result = defs.resolve_job_def("ml_retrain").execute_in_process(
        instance=DagsterInstance.get(), tags={"tributary/trigger": trigger},
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}}, raise_on_error=False,
    )
    if not result.success:
        raise Failure(f"ml_retrain run {result.run_id} failed: {run_failure_reason(result)}")
    champion = _champion_or_none(_settings())
    click.echo(f"ml_retrain run {result.run_id} succeeded in {time.monotonic() - started:.1f}s; "
               f"champion: {'v' + champion if champion else 'none yet (see the run log)'}")


def _champion_or_none(settings: MlflowSettings) -> str | None:
    from pipelines.ml.registry import CHAMPION, alias_version

    return alias_version(settings, CHAMPION)


def ensure_champion() -> None:
    """After a main-job run: train once when the registry has no champion yet (a fresh checkout), else nothing.

    Retraining is ml_retrain's (weekly, on drift, or `tributary model retrain`); this only keeps `tributary run`
    on a fresh checkout ending with a model to serve."""
    try:
        settings = _settings()
        champion = _champion_or_none(settings)
    except (Failure, MlflowUnavailable) as exc:
        message = exc.message if isinstance(exc, Failure) else str(exc)
        click.echo(f"no first model trained: {message} (then run `tributary model retrain`)")
        return
    if champion is not None:
        return
    click.echo(f"no champion in {settings.tracking_uri} yet: training the first one (ml_retrain)")
    run_retrain(trigger="first_champion")
