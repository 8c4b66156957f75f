"""boto3's real `sagemaker-runtime` client against `tributary serve` on loopback (issue 20.3): answers, pinned
variants and errors arrive as an application using the AWS SDK sees them from a SageMaker endpoint."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import boto3
import httpx
import orjson
import pytest
from botocore.config import Config

from pipelines.serving.config import Variant
from tests.serving.conftest import Models, OnlineCase, Server, publish_online, records, spec_features

ENDPOINT = "tributary-delay"


@pytest.fixture(scope="module")
def runtime(server: Server):
    """The SDK's client with `endpoint_url` on the local server; no retries, so an error is seen once."""
    return boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def _invoke(runtime, body: bytes, content_type: str = "application/json", **kwargs) -> tuple[dict, dict]:
    answer = runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType=content_type, **kwargs)
    return answer, orjson.loads(answer["Body"].read())


def _direct(server: Server, body: bytes, content_type: str, variant: str) -> list[float]:
    response = httpx.post(f"{server.url}/invocations", content=body,
                          headers={"content-type": content_type, "X-Amzn-SageMaker-Target-Variant": variant})
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_json_and_csv_through_the_sdk_match_the_server(server: Server, serving_models: Models, runtime) -> None:
    features = spec_features(serving_models, serving_models.champion)
    rows = serving_models.rows.head(3)
    body = orjson.dumps({"dataframe_records": records(rows, features)})
    answer, doc = _invoke(runtime, body, InferenceId="user-42")
    variant = answer["InvokedProductionVariant"]
    assert variant in ("champion", "challenger")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert doc["predictions"] == _direct(server, body, "application/json", variant)
    assert "ignored_columns" not in doc

    buffer = io.StringIO()
    rows.select(features).write_csv(buffer, include_header=False)
    csv_body = buffer.getvalue().encode()
    answer, csv_doc = _invoke(runtime, csv_body, "text/csv", TargetVariant="champion")
    assert answer["InvokedProductionVariant"] == "champion"
    assert csv_doc["predictions"] == _direct(server, csv_body, "text/csv", "champion")


def test_a_pinned_variant_answers_and_a_row_of_the_feature_table_is_taken_as_it_is(
        serving_models: Models, runtime) -> None:
    row = serving_models.rows.head(1).to_dicts()[0]  # every column of the holdout: ids and label too
    features = set(spec_features(serving_models, serving_models.challenger))
    extra = sorted(set(row) - features)
    assert extra, "the holdout rows should hold columns the model does not read"
    answer, doc = _invoke(runtime, orjson.dumps({"dataframe_records": [row]}, default=str),
                          TargetVariant="challenger")
    assert answer["InvokedProductionVariant"] == "challenger"
    assert len(doc["predictions"]) == 1
    assert doc["ignored_column_count"] == len(extra)
    assert doc["ignored_columns"] == extra[:20]


def test_a_flight_key_through_the_sdk(server: Server, serving_models: Models, online_case: OnlineCase,
                                     runtime) -> None:
    """Issue 20.1 as an application calls it: flight keys in, predictions, variant, fallbacks and features out."""
    publish_online(server, online_case.table)
    body = orjson.dumps({"flights": [online_case.key], "return_features": True})
    answer, doc = _invoke(runtime, body, TargetVariant="challenger")
    assert answer["InvokedProductionVariant"] == "challenger" == doc["variant"]
    assert doc["fallbacks"] == [[]]
    features = spec_features(serving_models, serving_models.challenger)
    assert doc["features"] == [{f: online_case.row[f] for f in features}]
    raw = orjson.dumps({"dataframe_records": [{f: online_case.row[f] for f in features}]})
    assert doc["predictions"] == _direct(server, raw, "application/json", "challenger")
    bad = orjson.dumps({"flights": [{**online_case.key, "sched_dep": "31/12/2013 05:15"}]})
    with pytest.raises(runtime.exceptions.ValidationError, match="sched_dep must be an ISO 8601"):
        runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=bad, ContentType="application/json")


@pytest.mark.parametrize("body, content_type, kwargs, status, words", [
    (b'{"dataframe_records": [{"distance": "far"}]}', "application/json", {}, 400, "missing"),
    (b"1,2,3\n", "text/csv", {}, 400, "CSV line 1 has 3 values"),
    (b"{not json", "application/json", {}, 400, "malformed JSON"),
    (b"x", "text/plain", {}, 415, "unsupported content type 'text/plain'"),
    (b'{"instances": [[1]]}', "application/json", {"TargetVariant": "nope"}, 400, "unknown target variant 'nope'"),
])
def test_a_bad_request_raises_the_sdks_validation_error_with_the_message(
        runtime, body: bytes, content_type: str, kwargs: dict, status: int, words: str) -> None:
    with pytest.raises(runtime.exceptions.ValidationError) as caught:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType=content_type, **kwargs)
    error = caught.value.response
    assert error["Error"]["Code"] == "ValidationError"
    assert words in error["Error"]["Message"], error
    assert words in str(caught.value)  # what the application logs
    assert error["ResponseMetadata"]["HTTPStatusCode"] == status


def test_another_endpoints_name_is_refused_by_name(runtime) -> None:
    with pytest.raises(runtime.exceptions.ValidationError, match="no endpoint named 'other'"):
        runtime.invoke_endpoint(EndpointName="other", Body=b"{}", ContentType="application/json")


def test_a_failing_model_raises_the_sdks_model_error(serving_models: Models, runtime, server: Server,
                                                    tmp_path: Path) -> None:
    """A variant whose booster refuses the rows: the SDK's ModelError, with the original status and message."""
    broken = tmp_path / "broken"
    shutil.copytree(serving_models.dirs[serving_models.champion], broken)
    spec = json.loads((broken / "spec.json").read_text())
    spec["features"] = spec["features"][:-1]  # one feature short of what the booster was trained on
    (broken / "spec.json").write_text(json.dumps(spec))
    server.publish(serving_models.config(extra=(Variant("broken", "0", 0.0, str(broken)),)))
    try:
        body = orjson.dumps({"dataframe_records": records(serving_models.rows.head(1), spec["features"])})
        with pytest.raises(runtime.exceptions.ModelError) as caught:
            runtime.invoke_endpoint(EndpointName=ENDPOINT, Body=body, ContentType="application/json",
                                    TargetVariant="broken")
        error = caught.value.response
        assert error["Error"]["Code"] == "ModelError" and "failed" in error["Error"]["Message"]
        assert error["OriginalStatusCode"] == 424 and "failed" in error["OriginalMessage"]
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    finally:
        server.publish(serving_models.config())
