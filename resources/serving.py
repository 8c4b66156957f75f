"""The endpoint as a Dagster resource: our own service on `local` and `localstack`, SageMaker on `aws`.

- local / localstack: the endpoint config is a JSON file (`<TRIBUTARY_HOME>/serving/endpoint.json`) that a
  running `tributary serve` watches; models are unpacked beside it; the invocation spool is a folder.
- aws: SageMaker models, endpoint config and endpoint (role, image, instance type from the environment).

Building it touches nothing; SageMaker is called only when an asset or a command applies a config.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any, Callable

from dagster import ConfigurableResource
from pydantic import Field

from pipelines.serving.config import (
    DEFAULT_ENDPOINT, INFERENCE_ID_HEADER, ConfigError, EndpointConfig, load, publish, reweighted, same_models,
)
from pipelines.serving.online import ONLINE_FILE, TABLE as ONLINE_TABLE
from resources.aws import AwsConnection, aws_connection
from resources.profiles import env
from resources.serving_settings import serving_mode, serving_root



class ServingResource(ConfigurableResource):
    """Where the endpoint config goes and where the service spools its invocation log."""

    endpoint_name: str = DEFAULT_ENDPOINT
    config_path: str = Field(default=".tributary/serving/endpoint.json",
                             description="The endpoint config the local service watches (published atomically).")
    models_dir: str = Field(default=".tributary/serving/models", description="Each served version, unpacked once.")
    spool_dir: str = Field(default=".tributary/serving/spool", description="The service's invocation log segments.")
    state_dir: str = Field(default=".tributary/serving/state",
                           description="Sticky assignments and metrics files shared by the service's workers.")
    sticky_header: str = Field(default=INFERENCE_ID_HEADER,
                               description="Header whose value pins a caller to a variant (besides the inference id).")
    stale_segment_seconds: float = Field(default=600.0, description="An open segment untouched this long is landed.")

    @property
    def mode(self) -> str:
        """local (our service watches config_path) | sagemaker: a label for metadata and logs."""
        raise NotImplementedError

    @property
    def online_features_path(self) -> str:
        """Where the local service reads the online features (beside its config; it reloads them on change)."""
        return os.path.join(os.path.dirname(self.config_path), ONLINE_FILE)

    def current(self) -> EndpointConfig | None:
        """The config the local service serves (None before the first publish)."""
        return load(self.config_path)

    def apply(self, config: EndpointConfig, *, lake=None, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
        """Make the endpoint serve `config`."""
        raise NotImplementedError(f"{type(self).__name__} is an interface: use LocalServingResource or "
                                  "SageMakerServingResource")

    def reweight(self, weights: dict[str, float], *, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
        """New weights for the variants the endpoint already has; nothing is reloaded or redeployed."""
        raise NotImplementedError(f"{type(self).__name__} is an interface")


class LocalServingResource(ServingResource):
    """Our own service (`tributary serve`) watching a config file (`local`, `localstack`)."""

    @property
    def mode(self) -> str:
        return "local"

    def apply(self, config: EndpointConfig, *, lake=None, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
        """Make the endpoint serve `config`: publish it for the local service."""
        previous = self.current()
        published = publish(self.config_path, config)
        action = "created" if previous is None else ("reweighted" if same_models(previous, config) else "updated")
        log(f"published endpoint config {published.generation} to {self.config_path} ({action})")
        return {"action": action, "mode": "local", "config_path": self.config_path,
                "generation": published.generation, "config": published.to_json()}

    def reweight(self, weights: dict[str, float], *, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
        """New weights for the variants the endpoint already has; nothing is reloaded or redeployed."""
        current = self.current()
        if current is None:
            raise ConfigError(f"no endpoint config at {self.config_path}: materialize serving/delay_endpoint first")
        published = publish(self.config_path, reweighted(current, weights))
        log(f"re-weighted {published.name}: " + ", ".join(f"{v.name}={v.weight:g}" for v in published.variants))
        return {"action": "reweighted", "mode": "local", "generation": published.generation,
                "weights": {v.name: v.weight for v in published.variants}}


class SageMakerServingResource(ServingResource, AwsConnection):
    """A SageMaker endpoint with production variants (`aws`)."""

    role_arn: str | None = Field(default=None, description="Execution role of the SageMaker models.")
    image_uri: str | None = Field(default=None, description="The serving image (deploy/serving/Dockerfile) in ECR.")
    instance_type: str = "ml.m5.large"
    instance_count: int = 1
    capture_percentage: int = Field(default=100, description="Share of requests SageMaker Data Capture keeps (0-100).")

    @property
    def mode(self) -> str:
        return "sagemaker"

    def sagemaker_client(self):
        return self.client("sagemaker")

    def target(self):
        from pipelines.serving.sagemaker import Target  # noqa: PLC0415 - start-up: boto3 ~1 s, SageMaker only

        if not self.role_arn or not self.image_uri:
            raise ConfigError("the sagemaker mode needs TRIBUTARY_SAGEMAKER_ROLE_ARN and TRIBUTARY_SAGEMAKER_IMAGE_URI")
        return Target(role_arn=self.role_arn, image_uri=self.image_uri, instance_type=self.instance_type,
                      instance_count=self.instance_count)

    def apply(self, config: EndpointConfig, *, lake=None, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
        """Deploy `config` on SageMaker (model artifacts go to the lake)."""
        from pipelines.serving.sagemaker import deploy  # noqa: PLC0415 - start-up: boto3 ~1 s, SageMaker only

        if lake is None:
            raise ConfigError("the sagemaker mode needs the lake to hold the model artifacts")

        def upload(rel: str, data: bytes) -> str:
            lake.publish_bytes(rel, data)
            return lake.uri(rel)

        from pipelines.serving.capture import CAPTURE_PREFIX, DEPLOYED  # noqa: PLC0415 - start-up: SageMaker only

        on_s3 = lake.scheme == "s3"
        target = replace(self.target(), capture_uri=lake.uri(CAPTURE_PREFIX) if on_s3 else None,
                         capture_percentage=self.capture_percentage,
                         online_features_uri=lake.uri(ONLINE_TABLE) if on_s3 else None)
        result = deploy(self.sagemaker_client(), config, target, upload, log)
        lake.publish_json(DEPLOYED, config.to_json())  # what landing the captured invocations reads
        return {"action": result.action, "mode": "sagemaker", "endpoint_config_name": result.endpoint_config_name,
                "endpoint_config": result.endpoint_config, "weights": result.weights}

    def reweight(self, weights: dict[str, float], *, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
        from pipelines.serving.sagemaker import reweight  # noqa: PLC0415 - start-up: boto3 ~1 s, SageMaker only

        live = reweight(self.sagemaker_client(), self.endpoint_name, weights)
        log(f"re-weighted SageMaker endpoint {self.endpoint_name}: {live}")
        return {"action": "reweighted", "mode": "sagemaker", "weights": live}


def serving_resource(profile: str) -> ServingResource:
    """The serving resource of a profile (TRIBUTARY_SERVING_MODE picks the backend); every field can be
    overridden by its environment variable."""
    mode = serving_mode(profile)
    root = serving_root()
    common = dict(
        endpoint_name=env("TRIBUTARY_SERVING_ENDPOINT", DEFAULT_ENDPOINT),
        config_path=env("TRIBUTARY_SERVING_CONFIG", os.path.join(root, "endpoint.json")),
        models_dir=env("TRIBUTARY_SERVING_MODELS", os.path.join(root, "models")),
        spool_dir=env("TRIBUTARY_SERVING_SPOOL", os.path.join(root, "spool")),
        state_dir=env("TRIBUTARY_SERVING_STATE", os.path.join(root, "state")),
        sticky_header=env("TRIBUTARY_SERVING_STICKY_HEADER", INFERENCE_ID_HEADER),
    )
    if mode == "local":
        return LocalServingResource(**common)
    return SageMakerServingResource(
        **common, **aws_connection(profile),
        role_arn=env("TRIBUTARY_SAGEMAKER_ROLE_ARN", None),
        image_uri=env("TRIBUTARY_SAGEMAKER_IMAGE_URI", None),
        instance_type=env("TRIBUTARY_SAGEMAKER_INSTANCE_TYPE", "ml.m5.large"),
        instance_count=env("TRIBUTARY_SAGEMAKER_INSTANCE_COUNT", 1, kind=int),
        capture_percentage=env("TRIBUTARY_SAGEMAKER_CAPTURE_PERCENT", 100, kind=int),
    )
