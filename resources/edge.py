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

from dagster import ConfigurableResource
from pydantic import Field

from pipelines.edge.jobs import DEFAULT_PREFIX, RolloutConfig
from pipelines.edge.repository import PREFIX
from resources.aws import AwsConnection, aws_connection
from resources.profiles import check_profile, env, home, setting

JOBS = ("mqtt", "iot")


class EdgeResource(ConfigurableResource):
    """Where edge bundles are signed, published and rolled out: rollouts by the local controller over MQTT
    (`local`, `localstack`); `IotEdgeResource` hands them to AWS IoT Jobs instead."""

    key_dir: str = Field(default=".tributary/edge/keys", description="The signing keys (never committed).")
    repository_prefix: str = Field(default=PREFIX, description="The TUF repository's place in the lake.")
    repository_url: str = Field(default="http://127.0.0.1:8750",
                                description="Where devices fetch the repository (`tributary edge serve-repo`).")
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    topic_prefix: str = Field(default=DEFAULT_PREFIX, description="IoT Jobs topic prefix ($aws on AWS and Mosquitto).")
    fleet: str = Field(default="", description="Comma-separated thing names of the local fleet.")
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


class IotEdgeResource(EdgeResource, AwsConnection):
    """Rollouts as AWS IoT Jobs (`CreateJob`) to things and thing groups (`aws`, or TRIBUTARY_EDGE_JOBS=iot)."""

    iot_targets: str = Field(default="", description="Comma-separated thing / thing-group ARNs for CreateJob.")

    def targets(self) -> list[str]:
        return [t.strip() for t in self.iot_targets.split(",") if t.strip()]

    def iot(self):
        from pipelines.edge.iot import iot_client  # noqa: PLC0415 - start-up: boto3 ~1 s, IoT Jobs only

        return iot_client(**self.connection())


def edge_resource(profile: str) -> EdgeResource:
    """The edge resource of a profile (TRIBUTARY_EDGE_JOBS picks mqtt or iot); every field can be overridden by
    its TRIBUTARY_EDGE_* variable."""
    jobs = setting("TRIBUTARY_EDGE_JOBS") or ("iot" if check_profile(profile) == "aws" else "mqtt")
    if jobs not in JOBS:
        raise ValueError(f"unknown edge jobs {jobs!r} (TRIBUTARY_EDGE_JOBS): use one of {', '.join(JOBS)}")
    common = dict(
        key_dir=env("TRIBUTARY_EDGE_KEY_DIR", os.path.join(home(), "edge", "keys")),
        repository_url=env("TRIBUTARY_EDGE_REPOSITORY_URL", "http://127.0.0.1:8750"),
        mqtt_host=env("TRIBUTARY_MQTT_HOST", "127.0.0.1"),
        mqtt_port=env("TRIBUTARY_MQTT_PORT", 1883, kind=int),
        topic_prefix=env("TRIBUTARY_EDGE_TOPIC_PREFIX", DEFAULT_PREFIX),
        fleet=env("TRIBUTARY_EDGE_FLEET", ""),
        rollout_config=env("TRIBUTARY_EDGE_ROLLOUT_CONFIG", ""),
    )
    if jobs == "mqtt":
        return EdgeResource(**common)
    return IotEdgeResource(**common, **aws_connection(profile), iot_targets=env("TRIBUTARY_EDGE_IOT_TARGETS", ""))
