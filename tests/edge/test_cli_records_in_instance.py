"""`tributary edge publish`, `rollout` and `simulate` record what they did in the Dagster instance: the UI shows
the bundle and the rollout the commands made, and a simulation as an observation (it changes nothing)."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner
from dagster import AssetKey, DagsterInstance

from pipelines.edge.cli import edge
from pipelines.edge.repository import Repository
from pipelines.core.lake import Lake

BUNDLE = AssetKey(["edge", "delay_model_bundle"])
ROLLOUT = AssetKey(["edge", "rollout"])
STATUS = AssetKey(["edge", "device_status"])


def _latest(key: AssetKey):
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(key)
        return event.asset_materialization if event is not None else None


def _observations(key: AssetKey) -> list:
    with DagsterInstance.get() as instance:
        return [r.asset_observation for r in instance.fetch_observations(key, limit=10).records]


def _invoke(*args: str):
    result = CliRunner().invoke(edge, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_publish_records_the_bundle(registered_delay_model, edge_models, tmp_path, monkeypatch) -> None:
    from pipelines.edge import release

    m = registered_delay_model
    monkeypatch.setattr(release, "selftest_rows_from_lake", lambda lake, n=64: edge_models.rows)
    monkeypatch.setenv("TRIBUTARY_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("TRIBUTARY_MLFLOW_TRACKING_URI", m.settings.tracking_uri)
    monkeypatch.setenv("TRIBUTARY_MLFLOW_ARTIFACT_LOCATION", m.settings.artifact_location)
    monkeypatch.setenv("TRIBUTARY_EDGE_KEY_DIR", str(edge_models.key_dir))
    assert _latest(BUNDLE) is None

    result = _invoke("publish", "--version", "champion")
    assert f"recorded in the Dagster instance {os.environ['DAGSTER_HOME']}: edge/delay_model_bundle" in result.output
    [published] = Repository(Lake(str(tmp_path / "lake"))).releases()
    bundle = _latest(BUNDLE)
    assert bundle.metadata["model_version"].value == m.champion
    assert bundle.metadata["sha256"].value == published.sha256
    assert bundle.metadata["tributary/command"].value == "tributary edge publish"

    again = _invoke("publish", "--version", "champion")  # already published: nothing new, nothing recorded
    assert "nothing to do" in again.output and "recorded" not in again.output
    with DagsterInstance.get() as instance:
        assert len(instance.fetch_materializations(BUNDLE, limit=10).records) == 1


def test_simulate_is_an_observation_not_a_materialization(repo, monkeypatch) -> None:
    monkeypatch.setenv("TRIBUTARY_LAKE_ROOT", repo.lake.uri())
    result = _invoke("simulate", "--devices", "12", "--faults", "0", "--workers", "2")
    assert "recorded in the Dagster instance" in result.stderr
    assert json.loads(result.stdout)["devices"] == 12  # stdout stays JSON
    [observation] = _observations(ROLLOUT)
    assert observation.metadata["simulated"].value is True
    assert observation.metadata["target"].value == repo.releases["challenger"].path
    assert observation.metadata["figures"].value["devices"] == 12
    assert _latest(ROLLOUT) is None and _latest(STATUS) is None  # the lake's rollout and device status: untouched


@pytest.mark.e2e
@pytest.mark.usefixtures("mosquitto")
def test_rollout_records_the_rollout_and_the_device_status(repo, monkeypatch) -> None:
    """Two devices that never answer: the rollout ends at its timeout; what it wrote is recorded all the same."""
    monkeypatch.setenv("TRIBUTARY_LAKE_ROOT", repo.lake.uri())
    result = _invoke("rollout", "--things", "ghost-1,ghost-2", "--timeout", "2")
    assert "recorded in the Dagster instance" in result.output
    rollout, status = _latest(ROLLOUT), _latest(STATUS)
    assert rollout.metadata["target"].value == repo.releases["bad"].path  # the newest release
    assert rollout.metadata["tributary/command"].value == "tributary edge rollout"
    assert status.metadata["dagster/row_count"].value == 2
    assert status.metadata["dagster/uri"].value == repo.lake.uri("edge/device_status")
