"""The stream assets materialized into a temporary lake, the definitions, the resource per profile, and the CLI."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner
from dagster import AssetKey, AssetSelection, DagsterInstance, Definitions, build_sensor_context, materialize
from deltalake import write_deltalake

from assets import stream as stream_assets_module
from assets.stream import flight_weather_telemetry, stream_assets
from pipelines.core.lake import Lake
from pipelines.stream.cli import stream as stream_cli
from pipelines.stream.landing import STANDARDIZED
from resources.lake import LocalLakeResource
from resources.stream import KinesisStreamResource, MqttStreamResource, SpoolStreamResource, stream_resource
from sensors import stream as stream_sensors
from tests.stream.conftest import send

KEYS = {AssetKey(["raw", "telemetry"]), AssetKey(["standardized", "telemetry"]),
        AssetKey(["analytics", "telemetry_windows"]), AssetKey(["analytics", "telemetry_anomalies"])}


def test_the_stream_definitions_load_with_their_keys_group_and_sensor(tmp_path: Path) -> None:
    defs = Definitions.merge(stream_assets_module.defs, stream_sensors.defs, Definitions(resources={
        "lake": LocalLakeResource(root=str(tmp_path / "lake")), "stream": stream_resource("local")}))
    graph = defs.resolve_asset_graph()
    lineage_key = AssetKey(["analytics", "flight_weather_telemetry"])
    assert set(graph.materializable_asset_keys) == KEYS | {lineage_key}
    assert {graph.get(k).group_name for k in KEYS | {lineage_key}} == {"stream"}
    assert graph.get(AssetKey(["standardized", "telemetry"])).parent_keys == {AssetKey(["raw", "telemetry"])}
    assert defs.resolve_sensor_def("telemetry_landing_sensor").job_name == "telemetry_landing"
    assert defs.resolve_job_def("telemetry_landing")
    assert {c.name for c in graph.asset_check_keys} >= {"quarantine_share", "one_row_per_event", "flag_rate",
                                                        "telemetry_keys_unique", "telemetry_windows_consistent"}
    assert AssetKey(["standardized", "flights"]) in graph.get(lineage_key).parent_keys


def test_the_assets_land_plan_themselves_and_report_what_they_did(tmp_path: Path, replay) -> None:
    resources = {"lake": LocalLakeResource(root=str(tmp_path / "lake")),
                 "stream": SpoolStreamResource(spool_dir=str(tmp_path / "spool"), max_records=100_000)}
    send(resources["stream"].get_spool(fsync=False), replay)
    instance = DagsterInstance.ephemeral()
    result = materialize(stream_assets, resources=resources, instance=instance)  # batch 0: plan from the lake
    assert result.success
    metadata = {m.asset_key.to_user_string(): m.metadata
                for m in (e.event_specific_data.materialization for e in result.get_asset_materialization_events())}
    assert set(metadata) == {k.to_user_string() for k in KEYS}
    standardized = metadata["standardized/telemetry"]
    assert metadata["raw/telemetry"]["dagster/row_count"].value == replay.deliveries.height
    assert standardized["dagster/row_count"].value == standardized["landed_in_batch"].value > 1400
    assert standardized["delta_version"].value == 0 and standardized["batch"].value == 1
    assert standardized["dagster/uri"].value.endswith("standardized/telemetry")
    assert "|" in standardized["preview"].value
    assert metadata["analytics/telemetry_anomalies"]["flagged_in_run"].value
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"quarantine_share": True, "one_row_per_event": True, "flag_rate": True}

    again = materialize(stream_assets, resources=resources, instance=instance)  # nothing new
    assert again.success
    assert again.get_asset_materialization_events() == []  # no batch, and nothing downstream to redo
    assert pl.read_delta(Lake(resources["lake"].root).uri(STANDARDIZED)).height == standardized["landed_in_batch"].value

    heavy = materialize([*stream_assets, *stream_assets_module.stream_checks], resources=resources, instance=instance,
                        selection=AssetSelection.checks(*stream_assets_module.stream_checks))
    assert {c.check_name: c.passed for c in heavy.get_asset_check_evaluations()} == {
        "telemetry_keys_unique": True, "telemetry_windows_consistent": True}


def test_the_lineage_asset_joins_flights_to_the_stream(tmp_path: Path, replay) -> None:
    lake = Lake(str(tmp_path / "lake"))
    resources = {"lake": LocalLakeResource(root=lake.root),
                 "stream": SpoolStreamResource(spool_dir=str(tmp_path / "spool"), max_records=100_000)}
    send(resources["stream"].get_spool(fsync=False), replay)
    assert materialize(stream_assets, resources=resources).success
    departures = [dt.datetime(2013, 1, 2, 10, m, tzinfo=dt.timezone.utc) for m in (5, 20, 55)]
    flights = pl.DataFrame({"origin": ["EWR", "EWR", "JFK"], "sched_dep_utc": departures, "dep_delay": [10, 20, None]})
    write_deltalake(lake.uri("standardized/flights"), flights.to_arrow())
    result = materialize([*stream_assets, flight_weather_telemetry], resources=resources,
                         selection=[AssetKey(["analytics", "flight_weather_telemetry"])])
    assert result.success
    joined = pl.read_delta(lake.uri("analytics/flight_weather_telemetry")).sort("origin")
    assert joined.select("origin", "departures", "mean_dep_delay").rows() == [("EWR", 2, 15.0), ("JFK", 1, None)]
    assert joined["temp"].null_count() == 0 and joined["anomaly"].dtype == pl.Boolean


def test_the_stream_resource_per_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    local = stream_resource("local").process_config_and_initialize()
    assert local.kind == "spool" and local.spool_dir.startswith(str(tmp_path / "home"))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4999")
    localstack = stream_resource("localstack").process_config_and_initialize()
    assert (localstack.kind, localstack.endpoint_url, localstack.create_stream) == (
        "kinesis", "http://127.0.0.1:4999", True)
    aws = stream_resource("aws").process_config_and_initialize()
    assert (aws.kind, aws.endpoint_url, aws.create_stream, aws.access_key_id) == ("kinesis", "http://127.0.0.1:4999",
                                                                                  False, None)
    monkeypatch.setenv("TRIBUTARY_STREAM_KIND", "mqtt")
    monkeypatch.setenv("TRIBUTARY_MQTT_PORT", "1884")
    mqtt = stream_resource("local").process_config_and_initialize()
    assert (mqtt.kind, mqtt.mqtt_port, mqtt.get_source().kind) == ("mqtt", 1884, "spool")
    assert isinstance(mqtt, MqttStreamResource) and isinstance(localstack, KinesisStreamResource)
    with pytest.raises(ValueError, match="unknown stream kind 'pigeon'"):
        SpoolStreamResource().get_sink("pigeon")
    monkeypatch.setenv("TRIBUTARY_STREAM_KIND", "pigeon")
    with pytest.raises(ValueError, match="unknown stream kind 'pigeon'"):
        stream_resource("local")


def test_the_cli_produces_lands_and_evaluates(tmp_path: Path) -> None:
    runner = CliRunner()
    produced = runner.invoke(stream_cli, ["produce", "--speedup", "0", "--limit", "900", "--seed", "3"])
    assert produced.exit_code == 0, produced.output
    assert "producing 9" in produced.output and (tmp_path / "home" / "stream" / "ground_truth.parquet").exists()
    landed = runner.invoke(stream_cli, ["land", "--max-records", "400"])
    assert landed.exit_code == 0, landed.output
    assert landed.output.count("batch ") >= 2
    evaluated = runner.invoke(stream_cli, ["evaluate"])
    assert evaluated.exit_code == 0, evaluated.output
    lines = {line.split()[0] + "/" + line.split()[1]: line.split() for line in evaluated.output.splitlines()[1:]}
    assert set(lines) >= {"spike/detector", "spike/baseline", "malformed/landing", "duplicate/landing"}
    assert float(lines["duplicate/landing"][-1]) == 1.0


def test_the_cli_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(stream_cli, ["evaluate", "--truth", str(tmp_path / "none.parquet")])
    assert result.exit_code == 1 and result.output.startswith("error: no ground truth at ")
    result = CliRunner().invoke(stream_cli, ["produce", "--rate", "-5", "--limit", "10"])
    assert result.exit_code == 1 and result.output.strip() == "error: --rate must be positive, got -5.0"


def test_the_sensor_context_builds_with_profile_resources(tmp_path: Path) -> None:
    resources = {"lake": LocalLakeResource(root=str(tmp_path / "lake")), "stream": stream_resource("local")}
    result = stream_sensors.telemetry_landing_sensor(build_sensor_context(resources=resources))
    assert result.skip_reason.skip_message == "the spool stream has no shards yet"
