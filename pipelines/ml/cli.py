"""`tributary model`: see the registered delay models and move the champion by a person's decision."""

from __future__ import annotations

import click

from pipelines.errors import Failure, one_line_errors
from pipelines.ml.tracking import MlflowSettings, MlflowUnavailable


def _settings() -> MlflowSettings:
    from resources import ProfileError, current_profile
    from resources.mlflow import mlflow_resource

    try:
        return mlflow_resource(current_profile()).process_config_and_initialize().settings()
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


@model.command()
@click.argument("version")
@_guard
def promote(version: str) -> None:
    """Make VERSION the champion (no margin: a person decided)."""
    from pipelines.ml.registry import promote as promote_version

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

    settings = _settings()
    current, target = rollback_champion(settings)
    click.echo(f"{settings.model_name} champion rolled back: v{current} -> v{target}")
