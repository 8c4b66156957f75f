"""Registry decisions and moves, `tributary model`, the MLflow resource per profile, and its clear errors."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.core.lake import Lake
from pipelines.ml import registry
from pipelines.ml.cli import model
from pipelines.ml.data import MissingTableError, features_from_warehouse
from pipelines.ml.tracking import MlflowSettings, MlflowUnavailable, activate, check_reachable, client
from resources.ml import MlflowResource, mlflow_resource


def _register(settings: MlflowSettings, tmp_path: Path, count: int) -> list[str]:
    """Registered versions without training: the registry moves do not care what the model is."""
    activate(settings)
    mlflow_client = client(settings)
    mlflow_client.create_registered_model(settings.model_name)
    source = tmp_path / "model"
    source.mkdir(exist_ok=True)
    return [str(mlflow_client.create_model_version(settings.model_name, source.as_uri()).version)
            for _ in range(count)]


@pytest.mark.parametrize(
    ("challenger", "champion", "baseline", "verdict"),
    [
        (0.72, 0.70, 0.62, "promote"),
        (0.702, 0.70, 0.62, "within_margin"),
        (0.70, 0.70, 0.62, "within_margin"),  # a retrain on unchanged data
        (0.697, 0.70, 0.62, "within_margin"),  # a little worse is noise: kept, not blocked
        (0.69, 0.70, 0.62, "not_better"),  # a normal result: recorded, the champion stays, the run is green
        (0.61, 0.70, 0.62, "worse_than_baseline"),  # below the baseline: something is wrong, blocking
        (float("nan"), 0.70, 0.62, "broken"),
        (0.70, None, 0.62, "promote"),  # the first model must beat the baseline
        (0.60, None, 0.62, "worse_than_baseline"),
        (None, 0.70, 0.62, "nothing_to_evaluate"),
    ],
)
def test_decide(challenger, champion, baseline, verdict) -> None:
    decision = registry.decide(challenger, champion, margin=0.005, baseline=baseline, challenger_version="3",
                               champion_version="2" if champion else None)
    assert decision.verdict == verdict
    assert decision.promote == (verdict == "promote")
    assert decision.blocking == (verdict in ("worse_than_baseline", "broken"))


def test_decide_explains_itself() -> None:
    below = registry.decide(0.69, 0.70, margin=0.005, challenger_version="3", champion_version="2")
    assert below.reason == ("challenger v3 roc_auc 0.6900 is below champion v2 0.7000 (-0.0100, margin 0.0050): "
                            "the champion stays")
    worse = registry.decide(0.60, 0.70, margin=0.005, challenger_version="3", champion_version="2", baseline=0.62)
    assert worse.reason == ("challenger v3 roc_auc 0.6000 is worse than the baseline 0.6200 by more than the margin "
                            "0.0050 (-0.0200): not promoted")
    with pytest.raises(ValueError, match="margin cannot be negative"):
        registry.decide(0.7, 0.6, margin=-0.1)


def test_promote_and_rollback_follow_the_champion_history(mlflow_settings: MlflowSettings, tmp_path: Path) -> None:
    v1, v2, v3 = _register(mlflow_settings, tmp_path, 3)
    assert registry.promote(mlflow_settings, v1, reason="first") is None
    registry.set_challenger(mlflow_settings, v2)
    assert registry.promote(mlflow_settings, v2, reason="better") == v1
    assert registry.alias_version(mlflow_settings, registry.CHALLENGER) is None  # it became the champion
    assert registry.promote(mlflow_settings, v3, reason="by hand") == v2
    assert registry.rollback(mlflow_settings) == (v3, v2)
    assert registry.rollback(mlflow_settings) == (v2, v1)
    with pytest.raises(registry.RegistryError, match="has no earlier champion"):
        registry.rollback(mlflow_settings)
    with pytest.raises(registry.RegistryError, match="model delay_model has no version 9"):
        registry.promote(mlflow_settings, "9", reason="typo")
    tags = {v.version: v.tags for v in registry.list_versions(mlflow_settings)}
    assert tags[v3]["rolled_back_at"] and tags[v2]["promotion_reason"] == "better"


def test_the_model_cli_lists_promotes_and_rolls_back(
    mlflow_settings: MlflowSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIBUTARY_MLFLOW_TRACKING_URI", mlflow_settings.tracking_uri)
    monkeypatch.setenv("TRIBUTARY_MLFLOW_ARTIFACT_LOCATION", mlflow_settings.artifact_location)
    runner = CliRunner()
    empty = runner.invoke(model, ["list"])
    assert empty.exit_code == 0 and "no version of delay_model is registered" in empty.output

    v1, v2 = _register(mlflow_settings, tmp_path, 2)
    registry.promote(mlflow_settings, v1, reason="first")
    registry.set_challenger(mlflow_settings, v2, tags={"holdout_roc_auc": "0.714600"})
    listing = runner.invoke(model, ["list"])
    assert listing.exit_code == 0, listing.output
    lines = listing.output.splitlines()
    assert lines[0].split()[:2] == ["version", "aliases"]
    assert lines[1].split()[:3] == ["2", "challenger", "0.7146"] and lines[2].split()[:3] == ["1", "champion", "-"]

    promoted = runner.invoke(model, ["promote", v2])
    assert promoted.exit_code == 0 and promoted.output.strip() == "delay_model champion: v1 -> v2"
    assert runner.invoke(model, ["promote", v2]).output.strip() == "delay_model v2 is already the champion"
    rolled = runner.invoke(model, ["rollback"])
    assert rolled.exit_code == 0 and rolled.output.strip() == "delay_model champion rolled back: v2 -> v1"
    assert registry.alias_version(mlflow_settings, registry.CHAMPION) == v1

    unknown = runner.invoke(model, ["promote", "42"])
    assert unknown.exit_code == 1 and unknown.output.strip() == "error: model delay_model has no version 42"
    nothing = runner.invoke(model, ["rollback"])
    assert nothing.exit_code == 1
    assert nothing.output.strip() == "error: champion v1 of delay_model has no earlier champion to roll back to"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_retried_then_one_clear_line() -> None:
    settings = MlflowSettings(tracking_uri=f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(MlflowUnavailable) as error:
        check_reachable(settings, attempts=3, backoff_seconds=0.05)
    assert time.monotonic() - started < 10
    message = str(error.value)
    assert message.startswith(f"cannot reach the MLflow tracking server at {settings.tracking_uri} after 3 attempts: ")
    assert "\n" not in message


def test_the_cli_reports_an_unreachable_server_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIBUTARY_MLFLOW_TRACKING_URI", f"http://127.0.0.1:{_closed_port()}")
    result = CliRunner().invoke(model, ["list"])
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot reach the MLflow tracking server at http://127.0.0.1:")
    assert len(result.output.strip().splitlines()) == 1


def test_the_local_profile_keeps_mlflow_under_the_home_with_artifacts_in_the_lake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIBUTARY_HOME", str(tmp_path / "home"))
    settings = mlflow_resource("local").process_config_and_initialize().settings()
    assert settings.tracking_uri == f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    assert settings.registry == settings.tracking_uri
    assert settings.artifact_location == (tmp_path / "home" / "lake" / "mlflow").as_uri()
    monkeypatch.setenv("TRIBUTARY_LAKE_ROOT", "s3://bucket/prefix")
    assert mlflow_resource("local").artifact_location == "s3://bucket/prefix/mlflow"


def test_server_profiles_take_the_tracking_server_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert mlflow_resource("localstack").process_config_and_initialize().settings().tracking_uri == \
        "http://127.0.0.1:5000"
    with pytest.raises(MlflowUnavailable, match="set TRIBUTARY_MLFLOW_TRACKING_URI"):
        mlflow_resource("aws").process_config_and_initialize().settings()
    monkeypatch.setenv("TRIBUTARY_MLFLOW_TRACKING_URI", "https://mlflow.internal:5000")
    monkeypatch.setenv("TRIBUTARY_MLFLOW_ARTIFACT_LOCATION", "s3://models/mlflow")
    resource = mlflow_resource("aws")
    settings = resource.process_config_and_initialize().settings()
    assert settings.tracking_uri == "https://mlflow.internal:5000" and settings.artifact_location == "s3://models/mlflow"
    assert settings.is_server


def test_a_missing_warehouse_table_names_itself_and_what_to_run(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    with pytest.raises(MissingTableError) as error:
        features_from_warehouse(lake)
    assert str(error.value) == (
        f"warehouse/fact_flights does not exist in the lake {lake.uri()}: materialize it first "
        "(tributary run --select 'group:warehouse')"
    )


def test_an_empty_resource_is_refused_before_any_mlflow_call() -> None:
    with pytest.raises(MlflowUnavailable, match="no MLflow tracking server configured"):
        MlflowResource().settings()


def test_the_sqlite_listing_reads_what_mlflow_lists(mlflow_settings: MlflowSettings, tmp_path: Path) -> None:
    """`tributary model list` reads a SQLite registry with SQL (no MLflow import): the same versions, aliases and
    tags as MLflow's client, deleted versions left out; an MLflow upgrade that changes its tables fails here."""
    db = Path(mlflow_settings.tracking_uri.removeprefix("sqlite:///"))
    assert registry._versions_in_sqlite(db, mlflow_settings.model_name) == []  # no store yet: nothing registered
    v1, v2, v3, v4 = _register(mlflow_settings, tmp_path, 4)
    registry.promote(mlflow_settings, v1, reason="first")
    registry.set_challenger(mlflow_settings, v3, run_id="abc", tags={"holdout_roc_auc": "0.7146"})
    client(mlflow_settings).delete_model_version(mlflow_settings.model_name, v2)
    client(mlflow_settings).create_registered_model("other_model")  # another model's rows are not listed

    read = registry._versions_in_sqlite(db, mlflow_settings.model_name)
    assert read == registry._client_versions(mlflow_settings)
    assert [(v.version, v.aliases) for v in read] == [(v4, ()), (v3, ("challenger",)), (v1, ("champion",))]
    assert read[1].tags["holdout_roc_auc"] == "0.7146" and read[1].tags["run_id"] == "abc"
    assert registry.list_versions(mlflow_settings) == read
    assert registry._versions_in_sqlite(db, "nothing_registered") == []


def test_the_plain_settings_are_the_resource_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tributary model` reads the stores without Dagster: the same as the resource the assets use."""
    from resources.ml_settings import mlflow_settings

    monkeypatch.setenv("TRIBUTARY_HOME", str(tmp_path / "home"))
    assert mlflow_settings("local") == mlflow_resource("local").process_config_and_initialize().settings()
    assert mlflow_settings("localstack") == mlflow_resource("localstack").process_config_and_initialize().settings()
    with pytest.raises(MlflowUnavailable, match="set TRIBUTARY_MLFLOW_TRACKING_URI"):
        mlflow_settings("aws")
    monkeypatch.setenv("TRIBUTARY_MLFLOW_TRACKING_URI", "https://mlflow.internal:5000")
    monkeypatch.setenv("TRIBUTARY_MLFLOW_REGISTRY_URI", "https://registry.internal:5000")
    assert mlflow_settings("aws") == mlflow_resource("aws").process_config_and_initialize().settings()
