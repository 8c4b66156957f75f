"""The `aws` path: the same endpoint config as SageMaker models, an endpoint config and an endpoint.

No Dagster. A pure re-weight (same variant -> model mapping) calls `UpdateEndpointWeightsAndCapacities`
and redeploys nothing; a new model (a new champion) creates a new endpoint config and `UpdateEndpoint`s to
it (SageMaker shifts traffic without downtime); a first deploy creates both. Model artifacts are the
container's `/opt/ml/model` contents (spec.json + booster.ubj) as `model.tar.gz` in the lake.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from botocore.exceptions import ClientError

from pipelines.serving.capture import data_capture_config
from pipelines.serving.config import EndpointConfig, Shadow, Variant
from pipelines.serving.model import find_model_files

Action = Literal["created", "updated", "reweighted", "unchanged"]
MODEL_TARBALL = "serving/models/v{version}/model.tar.gz"


class SageMakerError(RuntimeError):
    """SageMaker refused a request; one line saying which and why."""


@dataclass(frozen=True)
class Target:
    """Where and how the variants run on SageMaker."""

    role_arn: str
    image_uri: str
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    capture_uri: str | None = None
    """Where SageMaker Data Capture writes requests and answers (the lake's serving/capture/); None: no capture."""
    capture_percentage: int = 100
    online_features_uri: str | None = None
    """The lake's serving/online_features Delta table (s3://...), named in each container's environment
    (TRIBUTARY_SERVE_ONLINE_FEATURES) so flight-key requests work there; None: raw features only."""


@dataclass(frozen=True)
class DeployResult:
    action: Action
    endpoint: str
    endpoint_config_name: str
    endpoint_config: dict[str, Any] = field(default_factory=dict)
    """The CreateEndpointConfig request (the example in deploy/serving/ is one of these)."""
    weights: dict[str, float] = field(default_factory=dict)


def model_name(endpoint: str, version: str) -> str:
    """SageMaker model names: letters, digits and '-', at most 63 characters."""
    return f"{endpoint}-v{version}"[:63]


def package(folder: str | Path) -> bytes:
    """model.tar.gz with spec.json and the booster at its root (SageMaker unpacks it into /opt/ml/model)."""
    spec, booster = find_model_files(folder)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(spec, arcname="spec.json")
        tar.add(booster, arcname=booster.name)
    return buffer.getvalue()


def endpoint_config_request(config: EndpointConfig, target: Target) -> dict[str, Any]:
    """The CreateEndpointConfig request for a config (its name derives from the content: same config, same name)."""

    def production(v: Variant) -> dict[str, Any]:
        return {"VariantName": v.name, "ModelName": model_name(config.name, v.model_version),
                "InitialInstanceCount": target.instance_count, "InstanceType": target.instance_type,
                "InitialVariantWeight": float(v.weight)}

    def shadow(s: Shadow) -> dict[str, Any]:
        return {"VariantName": s.name, "ModelName": model_name(config.name, s.model_version),
                "InitialInstanceCount": target.instance_count, "InstanceType": target.instance_type,
                "InitialVariantWeight": float(s.sample_share)}

    request: dict[str, Any] = {"ProductionVariants": [production(v) for v in config.variants]}
    if target.capture_uri:  # the invocation log on AWS: serving/invocations lands it (capture.py)
        request["DataCaptureConfig"] = data_capture_config(target.capture_uri, target.capture_percentage)
    if config.shadow:
        # SageMaker copies to a shadow the share InitialVariantWeight / sum of production weights.
        total = sum(v.weight for v in config.variants)
        request["ShadowProductionVariants"] = [{**shadow(config.shadow),
                                                "InitialVariantWeight": float(config.shadow.sample_share * total)}]
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:10]
    return {"EndpointConfigName": f"{config.name}-{digest}"[:63], **request,
            "Tags": [{"Key": "tributary:endpoint", "Value": config.name}]}


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def _message(exc: Exception) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return error.get("Message") or str(exc).splitlines()[0]


def _exists(call: Callable[[], Any]) -> Any | None:
    """A Describe* answer, or None when SageMaker says the thing does not exist (a ValidationException)."""

    try:
        return call()
    except ClientError as exc:
        if _code(exc) in ("ValidationException", "ValidationError", "ResourceNotFound"):
            return None
        raise


def container_environment(version: str, target: Target) -> dict[str, str]:
    """A model container's environment: its version, and where it reads the online features."""
    online = {"TRIBUTARY_SERVE_ONLINE_FEATURES": target.online_features_uri} if target.online_features_uri else {}
    return {"TRIBUTARY_MODEL_VERSION": version, **online}


def ensure_models(sm, config: EndpointConfig, target: Target, upload: Callable[[str, bytes], str],
                  log: Callable[[str], None] = lambda _: None) -> None:
    """A SageMaker model per registry version the config names (artifact uploaded once; existing ones kept)."""
    wanted = {v.model_version: v.model_dir for v in config.variants}
    if config.shadow:
        wanted[config.shadow.model_version] = config.shadow.model_dir
    for version, folder in wanted.items():
        name = model_name(config.name, version)
        if _exists(lambda name=name: sm.describe_model(ModelName=name)) is not None:
            continue
        url = upload(MODEL_TARBALL.format(version=version), package(folder))
        log(f"creating SageMaker model {name} from {url}")
        sm.create_model(ModelName=name, ExecutionRoleArn=target.role_arn,
                        PrimaryContainer={"Image": target.image_uri, "ModelDataUrl": url,
                                          "Environment": container_environment(version, target)},
                        Tags=[{"Key": "tributary:model_version", "Value": version}])


def deploy(sm, config: EndpointConfig, target: Target, upload: Callable[[str, bytes], str],
           log: Callable[[str], None] = lambda _: None) -> DeployResult:
    """Create or update the endpoint so it serves `config`; a pure re-weight only re-weights."""

    request = endpoint_config_request(config, target)
    weights = {v.name: float(v.weight) for v in config.variants}
    try:
        ensure_models(sm, config, target, upload, log)
        current = _exists(lambda: sm.describe_endpoint(EndpointName=config.name))
        if current is None:
            sm.create_endpoint_config(**request)
            sm.create_endpoint(EndpointName=config.name, EndpointConfigName=request["EndpointConfigName"],
                               Tags=[{"Key": "tributary:endpoint", "Value": config.name}])
            log(f"created endpoint {config.name} with config {request['EndpointConfigName']}")
            return DeployResult("created", config.name, request["EndpointConfigName"], request, weights)
        deployed = sm.describe_endpoint_config(EndpointConfigName=current["EndpointConfigName"])
        if _models(deployed) == _models(request):
            live = {v["VariantName"]: float(v.get("CurrentWeight", v.get("DesiredWeight", 0.0)))
                    for v in current.get("ProductionVariants", [])}
            if live == weights:
                return DeployResult("unchanged", config.name, current["EndpointConfigName"], request, weights)
            sm.update_endpoint_weights_and_capacities(
                EndpointName=config.name,
                DesiredWeightsAndCapacities=[{"VariantName": n, "DesiredWeight": w} for n, w in weights.items()])
            log(f"re-weighted endpoint {config.name}: {weights}")
            return DeployResult("reweighted", config.name, current["EndpointConfigName"], request, weights)
        if _exists(lambda: sm.describe_endpoint_config(EndpointConfigName=request["EndpointConfigName"])) is None:
            sm.create_endpoint_config(**request)
        sm.update_endpoint(EndpointName=config.name, EndpointConfigName=request["EndpointConfigName"])
        log(f"updated endpoint {config.name} to config {request['EndpointConfigName']}")
        return DeployResult("updated", config.name, request["EndpointConfigName"], request, weights)
    except ClientError as exc:
        raise SageMakerError(f"SageMaker refused {exc.operation_name} for {config.name}: {_message(exc)}") from None


def reweight(sm, endpoint: str, weights: dict[str, float]) -> dict[str, float]:
    """Set variant weights on a live endpoint (UpdateEndpointWeightsAndCapacities); returns the weights now live."""

    try:
        current = sm.describe_endpoint(EndpointName=endpoint)
        names = [v["VariantName"] for v in current.get("ProductionVariants", [])]
        unknown = [n for n in weights if n not in names]
        if unknown:
            raise SageMakerError(f"endpoint {endpoint} has no variant {', '.join(unknown)} (it has {', '.join(names)})")
        sm.update_endpoint_weights_and_capacities(
            EndpointName=endpoint,
            DesiredWeightsAndCapacities=[{"VariantName": n, "DesiredWeight": float(w)} for n, w in weights.items()])
        after = sm.describe_endpoint(EndpointName=endpoint)
    except ClientError as exc:
        raise SageMakerError(f"SageMaker refused {exc.operation_name} for {endpoint}: {_message(exc)}") from None
    return {v["VariantName"]: float(v.get("CurrentWeight", v.get("DesiredWeight", 0.0)))
            for v in after.get("ProductionVariants", [])}


def _models(request: dict[str, Any]) -> tuple:
    pick = lambda key: sorted((v["VariantName"], v["ModelName"]) for v in request.get(key) or [])  # noqa: E731
    return tuple(pick("ProductionVariants")), tuple(pick("ShadowProductionVariants"))
