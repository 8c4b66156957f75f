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
                    image_uri="${IMAGE_URI}")
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
