"""The `aws` path against a moto server on loopback: models, endpoint config, endpoint, and a pure re-weight."""

from __future__ import annotations

import io
import json
import tarfile
import uuid

import boto3
import pytest

from pipelines.core.lake import Lake
from pipelines.serving.config import EndpointConfig, Shadow, Variant, reweighted
from pipelines.serving.sagemaker import MODEL_TARBALL, SageMakerError, Target, endpoint_config_request
from resources.serving import SageMakerServingResource, serving_resource
from tests.conftest import service_missing
from tests.serving.conftest import ROOT, Models

ROLE = "arn:aws:iam::123456789012:role/tributary-sagemaker-execution"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/tributary-serving:latest"


@pytest.fixture
def aws(s3_endpoint: str) -> tuple[SageMakerServingResource, Lake, str]:
    keys = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
    bucket = f"lake-{uuid.uuid4().hex[:10]}"
    try:
        boto3.client("s3", endpoint_url=s3_endpoint, **keys).create_bucket(Bucket=bucket)
    except Exception as exc:  # noqa: BLE001 (any failure here means the server is not there)
        service_missing(f"moto at {s3_endpoint}", exc)
    endpoint = f"tributary-delay-{uuid.uuid4().hex[:6]}"
    resource = SageMakerServingResource(endpoint_name=endpoint, endpoint_url=s3_endpoint,
                                        access_key_id="test", secret_access_key="test", role_arn=ROLE, image_uri=IMAGE)
    lake = Lake(f"s3://{bucket}", endpoint_url=s3_endpoint, access_key_id="test", secret_access_key="test")
    return resource, lake, endpoint


def _config(models: Models, endpoint: str, champion: float, challenger: float) -> EndpointConfig:
    return EndpointConfig(name=endpoint, variants=(
        Variant("champion", models.champion, champion, str(models.dirs[models.champion])),
        Variant("challenger", models.challenger, challenger, str(models.dirs[models.challenger]))))


def test_create_then_reweight_without_redeploying(aws, serving_models: Models) -> None:
    resource, lake, endpoint = aws
    sm = resource.sagemaker_client()
    created = resource.apply(_config(serving_models, endpoint, 0.9, 0.1), lake=lake)
    assert created["action"] == "created"
    described = sm.describe_endpoint(EndpointName=endpoint)
    config_name = described["EndpointConfigName"]
    assert config_name == created["endpoint_config_name"]
    variants = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    assert {v["VariantName"]: (v["ModelName"], v["InitialVariantWeight"]) for v in variants} == {
        "champion": (f"{endpoint}-v{serving_models.champion}", 0.9),
        "challenger": (f"{endpoint}-v{serving_models.challenger}", 0.1)}
    model = sm.describe_model(ModelName=f"{endpoint}-v{serving_models.champion}")
    url = model["PrimaryContainer"]["ModelDataUrl"]
    # Each container is told where the lake's online features are (flight keys, issue 20.1).
    assert model["PrimaryContainer"]["Environment"] == {
        "TRIBUTARY_MODEL_VERSION": serving_models.champion,
        "TRIBUTARY_SERVE_ONLINE_FEATURES": lake.uri("serving/online_features")}
    assert url == lake.uri(MODEL_TARBALL.format(version=serving_models.champion))
    with tarfile.open(fileobj=io.BytesIO(lake.read_bytes(MODEL_TARBALL.format(version=serving_models.champion)))) as tar:
        assert sorted(tar.getnames()) == ["booster.ubj", "spec.json"]

    again = resource.apply(_config(serving_models, endpoint, 0.9, 0.1), lake=lake)
    assert again["action"] == "unchanged"
    moved = resource.apply(_config(serving_models, endpoint, 0.5, 0.5), lake=lake)
    assert moved["action"] == "reweighted"
    after = sm.describe_endpoint(EndpointName=endpoint)
    assert after["EndpointConfigName"] == config_name  # same config: nothing was redeployed
    assert {v["VariantName"]: v["CurrentWeight"] for v in after["ProductionVariants"]} == {
        "champion": 0.5, "challenger": 0.5}

    by_hand = resource.reweight({"champion": 0.8, "challenger": 0.2})
    assert by_hand["weights"] == {"champion": 0.8, "challenger": 0.2}
    with pytest.raises(SageMakerError, match="has no variant nope"):
        resource.reweight({"nope": 1.0})


def test_endpoint_config_request_has_shadow_variants_and_matches_the_example() -> None:
    config = EndpointConfig(name="tributary-delay", variants=(Variant("champion", "3", 0.9),
                                                              Variant("challenger", "4", 0.1)),
                            shadow=Shadow("challenger-shadow", "5", 0.2))
    target = Target(role_arn="arn:aws:iam::${AWS_ACCOUNT_ID}:role/tributary-sagemaker-execution",
                    image_uri="${IMAGE_URI}", capture_uri="s3://${LAKE_BUCKET}/serving/capture")
    request = endpoint_config_request(config, target)
    assert [v["VariantName"] for v in request["ShadowProductionVariants"]] == ["challenger-shadow"]
    assert request["ShadowProductionVariants"][0]["InitialVariantWeight"] == pytest.approx(0.2)
    example = json.loads((ROOT / "deploy" / "serving" / "endpoint-config.json").read_text())
    assert example == request, "deploy/serving/endpoint-config.json is stale: regenerate it"
    assert endpoint_config_request(reweighted(config, {"champion": 0.5}), target)["EndpointConfigName"] != \
        request["EndpointConfigName"]


def test_sagemaker_mode_needs_its_settings(serving_models: Models, monkeypatch: pytest.MonkeyPatch) -> None:
    resource = SageMakerServingResource()
    with pytest.raises(ValueError, match="TRIBUTARY_SAGEMAKER_ROLE_ARN"):
        resource.target()
    monkeypatch.setenv("TRIBUTARY_SERVING_MODE", "k8s")
    with pytest.raises(ValueError, match="unknown serving mode"):
        serving_resource("local")


# -- A/B data on AWS: Data Capture (issue 20.2) -------------------------------------------------------------------


def _captured(event: str, records: list[dict], predictions: list[float], *, inference_id: str | None = None,
              attributes: str | None = None, when: str = "2026-12-04T10:15:00Z") -> bytes:
    """One line as SageMaker Data Capture writes it (its documented shape; JSON kept as text by the config's
    CaptureContentTypeHeader)."""
    meta = {"eventId": event, "inferenceTime": when}
    if inference_id:
        meta["inferenceId"] = inference_id
    if attributes:
        meta["customAttributes"] = attributes
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "encoding": "JSON",
                          "data": json.dumps({"dataframe_records": records})},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "encoding": "JSON",
                           "data": json.dumps({"predictions": predictions})}},
        "eventMetadata": meta, "eventVersion": "0"}).encode()


def test_the_aws_path_captures_and_the_landing_fills_the_invocation_log(aws, serving_models: Models) -> None:
    """What moto shows: DataCaptureConfig on the endpoint config and the deployed config recorded in the lake.
    What it cannot: SageMaker writing capture files (moto's InvokeEndpoint captures nothing), so the files are
    written here in the documented shape and layout, and landed as the asset lands them."""
    from pipelines.core import delta
    from pipelines.serving.capture import CAPTURE_PREFIX, land_capture
    from pipelines.serving.invocations import TABLE

    resource, lake, endpoint = aws
    sm = resource.sagemaker_client()
    resource.apply(_config(serving_models, endpoint, 0.9, 0.1), lake=lake)
    described = sm.describe_endpoint_config(EndpointConfigName=sm.describe_endpoint(EndpointName=endpoint)
                                            ["EndpointConfigName"])
    capture = described["DataCaptureConfig"]
    assert capture["DestinationS3Uri"] == lake.uri(CAPTURE_PREFIX) and capture["InitialSamplingPercentage"] == 100
    assert {o["CaptureMode"] for o in capture["CaptureOptions"]} == {"Input", "Output"}

    features = json.loads((serving_models.dirs[serving_models.champion] / "spec.json").read_text())["features"]
    rows = serving_models.rows.head(3).select(features).to_dicts()
    hour = f"{CAPTURE_PREFIX}/{endpoint}/champion/2026/12/04/10"
    lake.publish_bytes(f"{hour}/15-00-000-a.jsonl", b"\n".join([
        _captured("e1", rows[:1], [0.25], inference_id="2013-11-01/9E/3302/EWR/1130"),
        _captured("e2", rows[1:2], [0.5], attributes="flight_id=2013-11-02/UA/1545/EWR/515,flight_date=2013-11-02"),
        _captured("e3", rows[1:3], [0.1, 0.2], inference_id="user-42")]) + b"\n")
    lake.publish_bytes(f"{CAPTURE_PREFIX}/{endpoint}/challenger/2026/12/04/10/16-00-000-b.jsonl",
                       _captured("e4", rows[:1], [0.75], inference_id="flight_id=2013-11-03/AA/1/JFK/600") + b"\n")
    first = land_capture(lake, endpoint)
    assert (first.segments, first.rows) == (2, 5)
    table = delta.scan(lake, TABLE).collect().sort("request_id", "row")
    assert table["variant"].to_list() == ["champion"] * 4 + ["challenger"]
    assert table["model_version"].to_list() == [serving_models.champion] * 4 + [serving_models.challenger]
    assert table["flight_id"].to_list() == ["2013-11-01/9E/3302/EWR/1130", "2013-11-02/UA/1545/EWR/515", None, None,
                                           "2013-11-03/AA/1/JFK/600"]
    assert table["prediction"].to_list() == [0.25, 0.5, 0.1, 0.2, 0.75]
    assert json.loads(table["features"][0]) == pytest.approx(rows[0])
    assert not table["shadow"].any() and table["invoked_at"].null_count() == 0

    # Landed again with a late file of the same hour: the old lines once, the new one added.
    lake.publish_bytes(f"{hour}/59-00-000-c.jsonl", _captured("e5", rows[:1], [0.9]) + b"\n")
    again = land_capture(lake, endpoint)
    assert (again.segments, again.rows) == (3, 6)  # the last hour is read again (the overlap)...
    assert delta.scan(lake, TABLE).collect().height == 6  # ...and the MERGE keeps one row per invocation row
