"""End to end on the `localstack` profile: Kinesis and S3 on a moto server, the sensor and the assets, the CLI."""

from __future__ import annotations

import json
import uuid

import polars as pl
import pytest
from click.testing import CliRunner
from dagster import DagsterInstance, build_sensor_context, materialize

from assets.stream import stream_assets
from pipelines.stream.cli import stream as stream_cli
from pipelines.stream.landing import QUARANTINE, STANDARDIZED
from resources import build_resources
from resources.stream import stream_resource
from sensors.stream import telemetry_landing_sensor

pytestmark = pytest.mark.e2e


def test_kinesis_to_an_s3_lake_through_the_sensor(s3_env: dict, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("TRIBUTARY_KINESIS_STREAM", f"telemetry-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("TRIBUTARY_STREAM_MAX_RECORDS", "500")
    truth_path = tmp_path / "truth.parquet"
    runner = CliRunner()
    produced = runner.invoke(stream_cli, ["produce", "--speedup", "0", "--limit", "1200", "--seed", "5",
                                          "--truth", str(truth_path)])
    assert produced.exit_code == 0, produced.output
    assert "to kinesis" in produced.output

    resources = {"lake": build_resources("localstack")["lake"], "stream": stream_resource("localstack")}
    instance = DagsterInstance.ephemeral()
    cursor, batches = None, 0
    for _ in range(12):
        tick = telemetry_landing_sensor(build_sensor_context(instance=instance, resources=resources, cursor=cursor))
        cursor = tick.cursor
        for request in tick.run_requests:
            result = materialize(stream_assets, resources=resources, instance=instance, run_config=request.run_config,
                                 tags={"dagster/run_key": request.run_key})
            assert result.success
            batches += 1
        if tick.skip_reason and "no new records" in tick.skip_reason.skip_message:
            break
    assert batches >= 2 and json.loads(cursor)["batch"] == batches
    assert "of the kinesis stream" in tick.skip_reason.skip_message

    lake = resources["lake"].process_config_and_initialize().get_lake()
    truth = pl.read_parquet(truth_path)
    malformed = set(truth.filter(pl.col("fault") == "malformed")["event_id"])
    events = pl.read_delta(lake.uri(STANDARDIZED), storage_options=lake.storage_options)
    assert events.height == events["event_id"].n_unique()
    assert not malformed & set(events["event_id"])
    quarantined = pl.read_delta(lake.uri(QUARANTINE), storage_options=lake.storage_options)
    assert malformed <= set(quarantined["key"])
    assert lake.uri().startswith("s3://")

    evaluated = runner.invoke(stream_cli, ["evaluate", "--truth", str(truth_path)])
    assert evaluated.exit_code == 0, evaluated.output
    assert "duplicate     landing" in evaluated.output
