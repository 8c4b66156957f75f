"""The edge fleet as a Dagster resource: keys, the TUF repository in the lake, the bundle server, MQTT, IoT Jobs.

- local: keys in `<TRIBUTARY_HOME>/edge/keys`, the repository in the lake folder, jobs over the local
  Mosquitto (`$aws/things/<thing>/jobs/...`), a simulated fleet.
- localstack: the same, with IoT Jobs at `AWS_ENDPOINT_URL` (moto or LocalStack).
- aws: the repository on S3 (served by CloudFront or S3 itself), AWS IoT Jobs (`CreateJob`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from pipelines.edge.jobs import DEFAULT_PREFIX, RolloutConfig
from pipelines.edge.repository import PREFIX


class EdgeResource(ConfigurableResource):
    """Where edge bundles are signed, published and rolled out."""

    key_dir: str = Field(default=".tributary/edge/keys", description="The signing keys (never committed).")
    repository_prefix: str = Field(default=PREFIX, description="The TUF repository's place in the lake.")
    repository_url: str = Field(default="http://127.0.0.1:8750",
                                description="Where devices fetch the repository (`tributary edge serve-repo`).")
    jobs: str = Field(default="mqtt", description="mqtt (local controller over the broker) | iot (AWS IoT Jobs)")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    topic_prefix: str = Field(default=DEFAULT_PREFIX, description="IoT Jobs topic prefix ($aws on AWS and Mosquitto).")
    fleet: str = Field(default="", description="Comma-separated thing names of the local fleet.")
    iot_targets: str = Field(default="", description="Comma-separated thing / thing-group ARNs for CreateJob.")
    region: str = "us-east-1"
    endpoint_url: str | None = Field(default=None, description="IoT endpoint (moto, LocalStack).")
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    rollout_config: str = Field(default="", description="Rollout JSON (CreateJob shape + cohorts), a path or inline.")
    rollout_timeout_seconds: float = Field(default=600.0, description="How long the local controller waits.")

    def rollout(self) -> RolloutConfig:
        raw = self.rollout_config.strip()
        if not raw:
            return RolloutConfig()
        text = raw if raw.startswith("{") else Path(raw).expanduser().read_text()
        return RolloutConfig.from_json(json.loads(text))

    def things(self) -> list[str]:
        return [t.strip() for t in self.fleet.split(",") if t.strip()]

    def targets(self) -> list[str]:
        return [t.strip() for t in self.iot_targets.split(",") if t.strip()]

    def iot(self):
        from pipelines.edge.iot import iot_client

        return iot_client(region=self.region, endpoint_url=self.endpoint_url, access_key_id=self.access_key_id,
                          secret_access_key=self.secret_access_key, session_token=self.session_token)


def _env(name: str, default: Any) -> Any:
    return EnvVar(name) if os.environ.get(name) else default


def _env_int(name: str, default: int) -> Any:
    return EnvVar.int(name) if os.environ.get(name) else default


def edge_resource(profile: str) -> EdgeResource:
    """The edge resource of a profile; every field can be overridden by its TRIBUTARY_EDGE_* variable."""
    from resources import PROFILES, ProfileError, home

    if profile not in PROFILES:
        raise ProfileError(f"unknown TRIBUTARY_PROFILE {profile!r}: use one of {', '.join(PROFILES)}")
    keys = ("test", "test") if profile == "localstack" else (None, None)
    return EdgeResource(
        key_dir=_env("TRIBUTARY_EDGE_KEY_DIR", os.path.join(home(), "edge", "keys")),
        repository_url=_env("TRIBUTARY_EDGE_REPOSITORY_URL", "http://127.0.0.1:8750"),
        jobs=_env("TRIBUTARY_EDGE_JOBS", "iot" if profile == "aws" else "mqtt"),
        mqtt_host=_env("TRIBUTARY_MQTT_HOST", "127.0.0.1"),
        mqtt_port=_env_int("TRIBUTARY_MQTT_PORT", 1883),
        topic_prefix=_env("TRIBUTARY_EDGE_TOPIC_PREFIX", DEFAULT_PREFIX),
        fleet=_env("TRIBUTARY_EDGE_FLEET", ""),
        iot_targets=_env("TRIBUTARY_EDGE_IOT_TARGETS", ""),
        region=_env("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")),
        endpoint_url=_env("AWS_ENDPOINT_URL", "http://127.0.0.1:4566" if profile == "localstack" else None)
        if profile != "local" else None,
        access_key_id=_env("AWS_ACCESS_KEY_ID", keys[0]),
        secret_access_key=_env("AWS_SECRET_ACCESS_KEY", keys[1]),
        session_token=_env("AWS_SESSION_TOKEN", None),
        rollout_config=_env("TRIBUTARY_EDGE_ROLLOUT_CONFIG", ""),
    )
