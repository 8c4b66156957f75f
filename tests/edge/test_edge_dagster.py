"""The Dagster side: the bundle asset publishes once per version, the sensor follows the champion."""

from __future__ import annotations

import json

from dagster import build_sensor_context, materialize

from assets.edge import BUNDLE_KEY, delay_model_bundle
from pipelines.edge.repository import Repository
from pipelines.core.lake import Lake
from resources.edge import EdgeResource
from resources.lake import LocalLakeResource
from resources.ml import MlflowResource
from sensors.edge import edge_bundle_on_new_champion, run_key


def _mlflow(settings) -> MlflowResource:
    return MlflowResource(tracking_uri=settings.tracking_uri, artifact_location=settings.artifact_location)


def test_the_bundle_asset_publishes_the_champion_once(registered_delay_model, edge_models, tmp_path, monkeypatch):
    from pipelines.edge import release

    m = registered_delay_model
    monkeypatch.setattr(release, "selftest_rows_from_lake", lambda lake, n=64: edge_models.rows)
    resources = {"lake": LocalLakeResource(root=str(tmp_path / "lake")), "mlflow": _mlflow(m.settings),
                 "edge": EdgeResource(key_dir=str(edge_models.key_dir))}
    first = materialize([delay_model_bundle], resources=resources)
    assert first.success
    [mat] = first.asset_materializations_for_node("edge__delay_model_bundle")
    assert mat.metadata["model_version"].value == m.champion
    published = Repository(Lake(str(tmp_path / "lake"))).releases()
    assert [r.model_version for r in published] == [m.champion]
    assert published[0].sha256 == edge_models.champion.sha256  # the same bytes as built from the registry directly
    again = materialize([delay_model_bundle], resources=resources)
    assert again.success and not again.asset_materializations_for_node("edge__delay_model_bundle")


def test_the_sensor_requests_a_bundle_per_champion_version(registered_delay_model):
    mlflow = _mlflow(registered_delay_model.settings)
    result = edge_bundle_on_new_champion(build_sensor_context(cursor=None, resources={"mlflow": mlflow}))
    [request] = result.run_requests
    assert request.run_key == run_key(registered_delay_model.champion)
    assert json.loads(result.cursor) == {"champion": registered_delay_model.champion}
    again = edge_bundle_on_new_champion(build_sensor_context(cursor=result.cursor, resources={"mlflow": mlflow}))
    assert not again.run_requests and "still" in again.skip_reason.skip_message
    assert BUNDLE_KEY.path == ["edge", "delay_model_bundle"]


def test_edge_definitions_load_with_the_expected_keys():
    from dagster import AssetKey, Definitions

    import assets.edge as edge_assets
    import sensors.edge as edge_sensors
    from resources import build_resources
    from resources.edge import edge_resource

    defs = Definitions.merge(edge_assets.defs, edge_sensors.defs,
                             Definitions(resources={**build_resources("local"), "edge": edge_resource("local")}))
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert {AssetKey(["edge", n]) for n in ("delay_model_bundle", "rollout", "device_status")} <= keys
    assert [s.name for s in defs.sensors] == ["edge_bundle_on_new_champion"]
