"""The landing sensor, with built contexts: deterministic run keys, a cursor that moves only on commit, skip reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context, materialize

from assets.stream import stream_assets
from pipelines.core.lake import Lake
from pipelines.stream import landing
from pipelines.stream.landing import STANDARDIZED, BatchPlan, LandingState, ShardRange, committed_batch
from resources.lake import LocalLakeResource
from resources.stream import SpoolStreamResource
from sensors.stream import DEFAULT_INTERVAL_SECONDS, run_key, settle, telemetry_landing_sensor
from tests.stream.conftest import send


@pytest.fixture
def resources(tmp_path: Path) -> dict:
    return {"lake": LocalLakeResource(root=str(tmp_path / "lake")),
            "stream": SpoolStreamResource(spool_dir=str(tmp_path / "spool"), max_records=300)}


def tick(instance: DagsterInstance, resources: dict, cursor: str | None = None):
    return telemetry_landing_sensor(build_sensor_context(instance=instance, resources=resources, cursor=cursor))


def run(instance: DagsterInstance, resources: dict, request, *, raise_on_error: bool = True):
    return materialize(stream_assets, resources=resources, instance=instance, run_config=request.run_config,
                       tags=request.tags | {"dagster/run_key": request.run_key}, raise_on_error=raise_on_error)


def test_nothing_to_land_is_a_skip_that_says_why(resources: dict, replay) -> None:
    instance = DagsterInstance.ephemeral()
    empty = tick(instance, resources)
    assert empty.run_requests == [] and empty.skip_reason.skip_message == "the spool stream has no shards yet"
    send(resources["stream"].get_spool(fsync=False), replay)
    cursor = None
    for _ in range(20):  # land everything, one batch per two ticks
        result = tick(instance, resources, cursor)
        cursor = result.cursor
        for request in result.run_requests:
            assert run(instance, resources, request).success
        if result.skip_reason and "no new records" in result.skip_reason.skip_message:
            break
    state = json.loads(cursor)
    expected = f"no new records on 2 shard(s) of the spool stream after batch {state['batch']}"
    assert result.skip_reason.skip_message == expected
    assert state["batch"] == committed_batch(Lake(resources["lake"].root)) >= 4


def test_the_cursor_moves_only_when_the_lake_holds_the_batch(resources: dict, replay, monkeypatch) -> None:
    send(resources["stream"].get_spool(fsync=False), replay)
    instance = DagsterInstance.ephemeral()
    first = tick(instance, resources)
    [request] = first.run_requests
    cursor = json.loads(first.cursor)
    assert cursor["batch"] == 0 and cursor["shards"] == {} and cursor["pending"]["batch"] == 1
    assert request.run_key == tick(instance, resources).run_requests[0].run_key  # deterministic
    ranges = request.run_config["ops"]["land_telemetry"]["config"]["ranges"]
    assert [(r["after"], r["upto"]) for r in ranges] == [(None, "299"), (None, "299")]

    waiting = tick(instance, resources, first.cursor)
    assert isinstance(waiting.skip_reason, SkipReason) and "batch 1 is in flight" in waiting.skip_reason.skip_message
    assert json.loads(waiting.cursor) == cursor

    # The run dies after writing raw files and before the Delta commit.
    real = landing.insert_new

    def crash_on_commit(lake, rel, *args, **kwargs):
        if rel == STANDARDIZED:
            raise RuntimeError("killed before the commit")
        return real(lake, rel, *args, **kwargs)

    monkeypatch.setattr(landing, "insert_new", crash_on_commit)
    assert not run(instance, resources, request, raise_on_error=False).success
    lake = Lake(resources["lake"].root)
    raw_after_crash = sorted(p.name for p in Path(lake.path("raw/telemetry")).rglob("*.parquet"))
    assert raw_after_crash and committed_batch(lake) == 0

    retry = tick(instance, resources, waiting.cursor)
    [again] = retry.run_requests
    assert again.run_key == f"{request.run_key}-retry1" and again.run_config == request.run_config
    assert json.loads(retry.cursor)["shards"] == {}  # not moved by a failed run

    monkeypatch.setattr(landing, "insert_new", real)
    assert run(instance, resources, again).success
    assert sorted(p.name for p in Path(lake.path("raw/telemetry")).rglob("*.parquet")) == raw_after_crash

    moved = tick(instance, resources, retry.cursor)
    state = json.loads(moved.cursor)
    assert state["batch"] == 1 and state["shards"] == {r["shard"]: r["upto"] for r in ranges}
    assert state["pending"]["batch"] == 2 and moved.run_requests[0].run_key.startswith("telemetry-00000002-")


def test_a_lake_rebuilt_from_scratch_brings_the_cursor_back(resources: dict, replay) -> None:
    send(resources["stream"].get_spool(fsync=False), replay)
    stale = json.dumps({"batch": 7, "shards": {"shardId-000000000000": "999"}, "pending": None})
    result = tick(DagsterInstance.ephemeral(), resources, stale)
    assert json.loads(result.cursor)["batch"] == 0
    assert result.run_requests[0].run_config["ops"]["land_telemetry"]["config"]["batch"] == 1


def _plan(batch: int, after: str | None) -> dict:
    return BatchPlan(batch, (ShardRange("s0", after, "9"),)).to_json()


@pytest.mark.parametrize(
    ("cursor", "committed", "state", "expected"),
    [
        ({}, 0, None, {"batch": 0, "shards": {}, "pending": None}),
        ({"batch": 0, "pending": {"batch": 1, "plan": _plan(1, None)}}, 0, None,
         {"batch": 0, "shards": {}, "pending": {"batch": 1, "plan": _plan(1, None)}}),  # still in flight
        ({"batch": 0, "pending": {"batch": 1, "plan": _plan(1, None)}}, 1, LandingState(1, {"s0": "9"}),
         {"batch": 1, "shards": {"s0": "9"}, "pending": None}),  # committed: move
        ({"batch": 1, "shards": {"s0": "9"}, "pending": {"batch": 2, "plan": _plan(2, "9")}}, 2,
         LandingState(2, {"s0": "12"}), {"batch": 2, "shards": {"s0": "12"}, "pending": None}),  # landed by another run
    ],
)
def test_settle(cursor: dict, committed: int, state, expected: dict) -> None:
    assert settle(cursor, committed, state) == expected


def test_run_keys_name_the_plan() -> None:
    plan = BatchPlan(3, (ShardRange("shardId-000000000000", "10", "20"),))
    assert run_key(plan) == run_key(BatchPlan.from_json(plan.to_json()))
    assert run_key(plan).startswith("telemetry-00000003-") and run_key(plan, 2).endswith("-retry2")
    assert run_key(plan) != run_key(BatchPlan(3, (ShardRange("shardId-000000000000", "10", "21"),)))
    assert DEFAULT_INTERVAL_SECONDS == 30


def test_the_sensor_request_runs_as_the_job_the_daemon_launches(resources: dict, replay) -> None:
    from dagster import Definitions

    from assets.stream import defs as asset_defs
    from sensors.stream import defs as sensor_defs

    send(resources["stream"].get_spool(fsync=False), replay)
    job = Definitions.merge(asset_defs, sensor_defs, Definitions(resources=resources)).resolve_job_def(
        "telemetry_landing")
    instance = DagsterInstance.ephemeral()
    [request] = tick(instance, resources).run_requests
    result = job.execute_in_process(run_config=request.run_config, instance=instance, tags=request.tags)
    assert result.success
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {
        "raw/telemetry", "standardized/telemetry", "analytics/telemetry_windows", "analytics/telemetry_anomalies"}
