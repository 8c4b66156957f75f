"""The serving sensors with built contexts, and the serving definitions merged into the code location."""

from __future__ import annotations

import json
from pathlib import Path

from dagster import AssetKey, Definitions, build_sensor_context

from resources.ml import MlflowResource
from resources.serving import LocalServingResource
from sensors.serving import (
    delay_endpoint_follows_registry, endpoint_run_key, serving_invocations_landing,
)
from tests.conftest import RegisteredDelayModel


def test_endpoint_follows_the_aliases(registered_delay_model: RegisteredDelayModel) -> None:
    m = registered_delay_model
    mlflow = MlflowResource(tracking_uri=m.settings.tracking_uri)
    first = delay_endpoint_follows_registry(build_sensor_context(resources={"mlflow": mlflow}))
    assert [r.run_key for r in first.run_requests] == [endpoint_run_key(m.champion, m.challenger)]
    again = delay_endpoint_follows_registry(build_sensor_context(cursor=first.cursor, resources={"mlflow": mlflow}))
    assert not again.run_requests and "unchanged" in again.skip_reason.skip_message
    moved = json.dumps({"champion": "0", "challenger": None})
    later = delay_endpoint_follows_registry(build_sensor_context(cursor=moved, resources={"mlflow": mlflow}))
    assert len(later.run_requests) == 1


def test_landing_sensor_asks_once_per_new_segment(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    serving = LocalServingResource(spool_dir=str(spool))
    empty = serving_invocations_landing(build_sensor_context(resources={"serving": serving}))
    assert not empty.run_requests
    (spool / "20131102T000000-1-a.ndjson").write_text("{}\n")
    asked = serving_invocations_landing(build_sensor_context(resources={"serving": serving}))
    assert [r.run_key for r in asked.run_requests] == ["invocations:20131102T000000-1-a.ndjson"]
    assert not serving_invocations_landing(build_sensor_context(cursor=asked.cursor,
                                                                resources={"serving": serving})).run_requests


def test_serving_definitions_load_with_the_rest() -> None:
    from assets import serving as serving_assets
    from pipelines.definitions import defs as project
    from resources import build_resources
    from resources.serving import serving_resource
    from sensors import serving as serving_sensors

    if AssetKey(["serving", "delay_endpoint"]) in project.resolve_asset_graph().get_all_asset_keys():
        merged = project  # wired into pipelines/definitions.py already
    else:
        resources = {**build_resources("local"), "serving": serving_resource("local")}
        merged = Definitions.merge(
            Definitions(assets=list(project.assets or []), asset_checks=project.asset_checks,
                        sensors=project.sensors, schedules=project.schedules, jobs=project.jobs,
                        executor=project.executor),
            serving_assets.defs, serving_sensors.defs, Definitions(resources=resources))
    graph = merged.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"serving/delay_endpoint", "serving/invocations", "serving/ab_report"} <= keys
    assert AssetKey(["ml", "delay_model_evaluation"]) in graph.get(AssetKey(["serving", "delay_endpoint"])).parent_keys
    Definitions.validate_loadable(merged)
