"""`tributary serve example` (issue 22.2): a request built from the lake that the running endpoint answers, as
printed, whether pasted as a curl line or piped as a body; and the same flights by flight key (issue 20.1)."""

from __future__ import annotations

import os
import subprocess

import orjson
import polars as pl
import pytest
from click.testing import CliRunner

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.ml.data import FACT, FEATURES
from pipelines.serving.cli import serve
from pipelines.serving.config import publish
from tests.serving.conftest import Models, OnlineCase, Server, publish_online, spec_features


@pytest.fixture
def lake_with_features(features: pl.DataFrame, serving_models: Models,
                       warehouse_tables: dict[str, pl.DataFrame]) -> Lake:
    """ml/delay_features (its last 500 flights) and their fact_flights rows in this test's lake, and the
    fixture's config published."""
    lake = Lake(os.path.join(os.environ["TRIBUTARY_HOME"], "lake"))
    delta.overwrite(lake, FEATURES, features.tail(500))
    delta.overwrite(lake, FACT, warehouse_tables[FACT].filter(
        pl.col("flight_id").is_in(features.tail(500)["flight_id"].implode())))
    publish(os.path.join(os.environ["TRIBUTARY_HOME"], "serving", "endpoint.json"), serving_models.config())
    return lake


@pytest.mark.usefixtures("lake_with_features")
def test_the_printed_curl_lines_are_answered_by_the_endpoint(server: Server, online_case: OnlineCase) -> None:
    publish_online(server, online_case.table)
    result = CliRunner().invoke(serve, ["example", "--url", server.url, "--rows", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    line, comment, by_flight = result.output.strip().splitlines()
    assert line.startswith(f"curl -s {server.url}/invocations") and comment.startswith("# ")
    answered = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=60, check=True)
    doc = orjson.loads(answered.stdout)
    assert len(doc["predictions"]) == 2 and "ignored_columns" not in doc, doc
    assert by_flight.startswith(f"curl -s {server.url}/invocations") and '"flights"' in by_flight
    keyed = orjson.loads(subprocess.run(["bash", "-c", by_flight], capture_output=True, text=True, timeout=60,
                                        check=True).stdout)
    assert len(keyed["predictions"]) == 2 and len(keyed["features"]) == 2, keyed
    assert keyed["features_as_of"] == online_case.row["predict_at"].isoformat()


@pytest.mark.usefixtures("lake_with_features")
def test_the_flight_keys_are_the_latest_flights_as_the_warehouse_has_them(
        features: pl.DataFrame, warehouse_tables: dict[str, pl.DataFrame]) -> None:
    result = CliRunner().invoke(serve, ["example", "--flights", "--body", "--rows", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.output)
    assert doc["return_features"] is True
    latest = features.tail(500).sort(["flight_date", "flight_id"], descending=True).head(3)["flight_id"]
    fact = warehouse_tables[FACT]
    for key, flight_id in zip(doc["flights"], latest, strict=True):
        flight = fact.filter(pl.col("flight_id") == flight_id).row(0, named=True)
        assert key == {"carrier": flight["carrier"], "flight": flight["flight"], "origin": flight["origin"],
                       "dest": flight["dest"], "sched_dep": flight["sched_dep_local"].isoformat(timespec="minutes"),
                       "tailnum": flight["tailnum"]}
    refused = CliRunner().invoke(serve, ["example", "--flights", "--csv"])
    assert refused.exit_code != 0 and "drop --csv" in refused.output


@pytest.mark.usefixtures("lake_with_features")
def test_the_body_holds_the_served_models_features_from_the_latest_flights(
        features: pl.DataFrame, serving_models: Models, server: Server) -> None:
    result = CliRunner().invoke(serve, ["example", "--body"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (record,) = orjson.loads(result.output)["dataframe_records"]
    assert list(record) == spec_features(serving_models, serving_models.champion)
    latest = features.tail(500).sort(["flight_date", "flight_id"], descending=True).head(1)
    assert record["carrier"] == latest["carrier"][0] and record["origin"] == latest["origin"][0]

    csv = CliRunner().invoke(serve, ["example", "--body", "--csv"], catch_exceptions=False).output
    answered = subprocess.run(["curl", "-s", f"{server.url}/invocations", "-H", "Content-Type: text/csv",
                               "--data-binary", "@-"], input=csv, capture_output=True, text=True, timeout=60,
                              check=True)
    assert len(orjson.loads(answered.stdout)["predictions"]) == 1


def test_without_the_feature_table_it_says_what_to_run() -> None:
    result = CliRunner().invoke(serve, ["example"])
    assert result.exit_code == 1
    assert "ml/delay_features does not exist" in result.output and "tributary run --select" in result.output
