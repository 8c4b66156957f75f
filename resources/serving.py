"""The endpoint as a Dagster resource: our own service on `local` and `localstack`, SageMaker on `aws`.

- local / localstack: the endpoint config is a JSON file (`<TRIBUTARY_HOME>/serving/endpoint.json`) that a
  running `tributary serve` watches; models are unpacked beside it; the invocation spool is a folder.
- aws: SageMaker models, endpoint config and endpoint (role, image, instance type from the environment).

Building it touches nothing; SageMaker is called only when an asset or a command applies a config.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from dagster import ConfigurableResource
from pydantic import Field

from pipelines.serving.config import (
    DEFAULT_ENDPOINT, INFERENCE_ID_HEADER, ConfigError, EndpointConfig, load, publish, reweighted,
)

MODES = ("local", "sagemaker")


class ServingResource(ConfigurableResource):
    """Where the endpoint config goes and where the service spools its invocation log."""

    mode: str = Field(default="local", description="local (our service watches config_path) | sagemaker")
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
    region: str = "us-east-1"
    endpoint_url: str | None = Field(default=None, description="SageMaker-compatible endpoint (moto in tests).")
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    role_arn: str | None = Field(default=None, description="Execution role of the SageMaker models.")
    image_uri: str | None = Field(default=None, description="The serving image (deploy/serving/Dockerfile) in ECR.")
    instance_type: str = "ml.m5.large"
    instance_count: int = 1

    def check_mode(self) -> str:
        if self.mode not in MODES:
            raise ConfigError(f"unknown serving mode {self.mode!r}: use one of {', '.join(MODES)}")
        return self.mode

    def sagemaker_client(self):
        import boto3

        return boto3.client("sagemaker", region_name=self.region, endpoint_url=self.endpoint_url or None,
                            aws_access_key_id=self.access_key_id or None,
                            aws_secret_access_key=self.secret_access_key or None,
                            aws_session_token=self.session_token or None)

    def target(self):
        from pipelines.serving.sagemaker import Target

        if not self.role_arn or not self.image_uri:
            raise ConfigError("the sagemaker mode needs TRIBUTARY_SAGEMAKER_ROLE_ARN and TRIBUTARY_SAGEMAKER_IMAGE_URI")
        return Target(role_arn=self.role_arn, image_uri=self.image_uri, instance_type=self.instance_type,
                      instance_count=self.instance_count)

    def current(self) -> EndpointConfig | None:
        """The config the local service serves (None before the first publish)."""
        return load(self.config_path)

    def apply(self, config: EndpointConfig, *, lake=None, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
        """Make the endpoint serve `config`: publish it for the local service, or deploy it on SageMaker."""
        if self.check_mode() == "local":
            previous = self.current()
            from pipelines.serving.config import same_models

            published = publish(self.config_path, config)
            action = "created" if previous is None else ("reweighted" if same_models(previous, config) else "updated")
            log(f"published endpoint config {published.generation} to {self.config_path} ({action})")
            return {"action": action, "mode": "local", "config_path": self.config_path,
                    "generation": published.generation, "config": published.to_json()}
        from pipelines.serving.sagemaker import deploy

        if lake is None:
            raise ConfigError("the sagemaker mode needs the lake to hold the model artifacts")

        def upload(rel: str, data: bytes) -> str:
            lake.publish_bytes(rel, data)
            return lake.uri(rel)

        result = deploy(self.sagemaker_client(), config, self.target(), upload, log)
        return {"action": result.action, "mode": "sagemaker", "endpoint_config_name": result.endpoint_config_name,
                "endpoint_config": result.endpoint_config, "weights": result.weights}

    def reweight(self, weights: dict[str, float], *, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
        """New weights for the variants the endpoint already has; nothing is reloaded or redeployed."""
        if self.check_mode() == "local":
            current = self.current()
            if current is None:
                raise ConfigError(f"no endpoint config at {self.config_path}: materialize serving/delay_endpoint first")
            published = publish(self.config_path, reweighted(current, weights))
            log(f"re-weighted {published.name}: " + ", ".join(f"{v.name}={v.weight:g}" for v in published.variants))
            return {"action": "reweighted", "mode": "local", "generation": published.generation,
                    "weights": {v.name: v.weight for v in published.variants}}
        from pipelines.serving.sagemaker import reweight

        live = reweight(self.sagemaker_client(), self.endpoint_name, weights)
        log(f"re-weighted SageMaker endpoint {self.endpoint_name}: {live}")
        return {"action": "reweighted", "mode": "sagemaker", "weights": live}


def _env(name: str, default: Any) -> Any:
    from resources import _env as profile_env

    return profile_env(name, default)


def serving_resource(profile: str) -> ServingResource:
    """The serving resource of a profile; every field can be overridden by its environment variable."""
    from dagster import EnvVar

    from resources import PROFILES, ProfileError, home

    if profile not in PROFILES:
        raise ProfileError(f"unknown TRIBUTARY_PROFILE {profile!r}: use one of {', '.join(PROFILES)}")
    root = os.path.join(home(), "serving")
    keys = ("test", "test") if profile == "localstack" else (None, None)
    count = EnvVar.int("TRIBUTARY_SAGEMAKER_INSTANCE_COUNT") if os.environ.get("TRIBUTARY_SAGEMAKER_INSTANCE_COUNT") else 1
    return ServingResource(
        mode=_env("TRIBUTARY_SERVING_MODE", "sagemaker" if profile == "aws" else "local"),
        endpoint_name=_env("TRIBUTARY_SERVING_ENDPOINT", DEFAULT_ENDPOINT),
        config_path=_env("TRIBUTARY_SERVING_CONFIG", os.path.join(root, "endpoint.json")),
        models_dir=_env("TRIBUTARY_SERVING_MODELS", os.path.join(root, "models")),
        spool_dir=_env("TRIBUTARY_SERVING_SPOOL", os.path.join(root, "spool")),
        state_dir=_env("TRIBUTARY_SERVING_STATE", os.path.join(root, "state")),
        sticky_header=_env("TRIBUTARY_SERVING_STICKY_HEADER", INFERENCE_ID_HEADER),
        region=_env("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")),
        endpoint_url=_env("AWS_ENDPOINT_URL", None) if profile != "local" else None,
        access_key_id=_env("AWS_ACCESS_KEY_ID", keys[0]),
        secret_access_key=_env("AWS_SECRET_ACCESS_KEY", keys[1]),
        session_token=_env("AWS_SESSION_TOKEN", None),
        role_arn=_env("TRIBUTARY_SAGEMAKER_ROLE_ARN", None),
        image_uri=_env("TRIBUTARY_SAGEMAKER_IMAGE_URI", None),
        instance_type=_env("TRIBUTARY_SAGEMAKER_INSTANCE_TYPE", "ml.m5.large"),
        instance_count=count,
    )
