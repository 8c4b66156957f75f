"""Flight keys on the `aws` path (issue 20.1): the container reads the lake's serving/online_features Delta table
from S3 (here a moto server on loopback, real HTTP), at start and whenever its version moves, and the deploy names
the table in each model container's environment."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import polars as pl
import pytest

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.serving import online
from tests.conftest import service_missing
from tests.serving.conftest import ROOT, Models, OnlineCase, Server, start_server, stop_server


def _s3_lake(endpoint: str) -> Lake:
    lake = Lake(f"s3://lake-{uuid.uuid4().hex[:10]}", endpoint_url=endpoint, access_key_id="test",
                secret_access_key="test")
    try:
        lake.check(create=True)
    except Exception as exc:  # noqa: BLE001 (any failure here means the server is not there)
        service_missing(f"moto at {endpoint}", exc)
    return lake


def _wait_as_of(server: Server, as_of: str, deadline_seconds: float = 60.0) -> dict:
    """Until 12 answers in a row (each on a new connection, so from any worker) serve the table as of `as_of`."""
    deadline = time.monotonic() + deadline_seconds
    streak, status = 0, {}
    while streak < 12:
        if time.monotonic() > deadline:
            raise AssertionError(f"the service did not load the online features as of {as_of}: {status} "
                                 f"{server.log()}")
        status = httpx.get(f"{server.url}/status", headers={"Connection": "close"}, timeout=5).json()
        streak = streak + 1 if (status.get("online_features") or {}).get("as_of") == as_of else 0
        if streak == 0:
            time.sleep(0.1)
    return status


@pytest.fixture(scope="module")
def s3_online(s3_endpoint: str, serving_models: Models, online_case: OnlineCase,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Lake]]:
    """A `tributary serve` with no table beside its config, told (as the SageMaker deploy tells a container) to
    read the lake's table on S3, with the container's AWS connection from the environment."""
    lake = _s3_lake(s3_endpoint)
    delta.overwrite(lake, online.TABLE, online_case.table)
    server = start_server(tmp_path_factory.mktemp("serve-s3"), serving_models.config(), env={
        "TRIBUTARY_SERVE_ONLINE_FEATURES": lake.uri(online.TABLE), "TRIBUTARY_SERVE_ONLINE_CHECK_SECONDS": "0.5",
        "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1"})
    yield server, lake
    stop_server(server)


def test_flight_keys_are_served_from_the_lake_table_on_s3_and_a_new_version_is_picked_up(
        s3_online: tuple[Server, Lake], online_case: OnlineCase) -> None:
    server, lake = s3_online
    assert not (server.config_path.with_name(online.ONLINE_FILE)).exists()  # nothing beside the config
    first = online_case.row["predict_at"].isoformat()
    status = _wait_as_of(server, first)
    assert status["online_features"]["path"] == f"{lake.uri(online.TABLE)} (version 0)"
    # One variant for both requests: the endpoint splits 90/10, so unpinned they may meet different models.
    headers = {"content-type": "application/json", "X-Amzn-SageMaker-Target-Variant": "champion"}
    doc = httpx.post(f"{server.url}/invocations", headers=headers, timeout=10,
                     content=orjson.dumps({"flights": [online_case.key], "return_features": True})).json()
    assert doc["features_as_of"] == first and doc["fallbacks"] == [[]]
    assert doc["features"][0]["carrier"] == online_case.key["carrier"]

    later = online_case.table.with_columns(
        as_of=pl.when(pl.col("part") == "meta").then(pl.col("as_of") + dt.timedelta(hours=1)).otherwise("as_of"))
    assert delta.overwrite(lake, online.TABLE, later) == 1
    second = (online_case.row["predict_at"] + dt.timedelta(hours=1)).isoformat()
    status = _wait_as_of(server, second)
    assert status["online_features"]["path"].endswith("(version 1)") and status["online_error"] is None
    again = httpx.post(f"{server.url}/invocations", headers=headers, timeout=10,
                       content=orjson.dumps({"flights": [online_case.key]})).json()
    assert again["features_as_of"] == second and again["predictions"] == doc["predictions"]


def test_a_missing_table_is_said_and_answered_503_until_it_appears(
        s3_endpoint: str, serving_models: Models, online_case: OnlineCase, tmp_path: Path) -> None:
    lake = _s3_lake(s3_endpoint)
    server = start_server(tmp_path, serving_models.config(), workers=1, env={
        "TRIBUTARY_SERVE_ONLINE_FEATURES": lake.uri(online.TABLE), "TRIBUTARY_SERVE_ONLINE_CHECK_SECONDS": "0.5",
        "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1"})
    try:
        body = orjson.dumps({"flights": [online_case.key]})
        refused = httpx.post(f"{server.url}/invocations", headers={"content-type": "application/json"}, content=body)
        assert refused.status_code == 503 and "no online feature table at s3://" in refused.json()["message"]
        delta.overwrite(lake, online.TABLE, online_case.table)
        _wait_as_of(server, online_case.row["predict_at"].isoformat())
        answered = httpx.post(f"{server.url}/invocations", headers={"content-type": "application/json"}, content=body)
        assert answered.status_code == 200, answered.text
    finally:
        stop_server(server)


def test_the_execution_role_may_list_and_read_the_online_table_and_nothing_else_of_it() -> None:
    policy = json.loads((ROOT / "deploy" / "serving" / "iam-sagemaker-execution.json").read_text())
    reads = [s for s in policy["Statement"] if s["Action"] == "s3:GetObject"]
    assert f"arn:aws:s3:::${{LAKE_BUCKET}}/{online.TABLE}/*" in [s["Resource"] for s in reads]
    listing, = [s for s in policy["Statement"] if s["Action"] == "s3:ListBucket"]
    assert listing["Resource"] == "arn:aws:s3:::${LAKE_BUCKET}"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [f"{online.TABLE}/*"]}}
