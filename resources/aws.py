"""The one AWS connection: region, endpoint and credentials, shared by every resource that talks to AWS.

Resources that call AWS (the S3 lake, the source database's Secrets Manager, Kinesis, DynamoDB, SageMaker, IoT
Jobs) subclass `AwsConnection`, so the fields, the boto3 client and the deltalake/polars storage options are
written once, and `aws_connection(profile)` fills them once per profile. Credentials are `EnvVar`s read when the
resource is used; unset, boto3's own chain (instance role, `~/.aws`) applies.

dagster-aws's `ResourceWithBoto3Configuration` was considered: its field names (`region_name`,
`aws_access_key_id`, ...) would rename every resource's config keys, and it brings retry and profile fields
no resource here uses; this base keeps the config as it was.
"""

from __future__ import annotations

from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from resources.lake_settings import LOCALSTACK_ENDPOINT
from resources.profiles import aws_region, env


class AwsConnection(ConfigurableResource):
    """Region, endpoint and credentials of an AWS (or AWS-compatible) account."""

    region: str = "us-east-1"
    endpoint_url: str | None = Field(default=None, description="AWS-compatible endpoint (LocalStack, moto, MinIO).")
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None

    def connection(self) -> dict[str, Any]:
        """The connection as keyword arguments for the pure code (`Lake`, `KinesisStream`, ...)."""
        return {"region": self.region, "endpoint_url": self.endpoint_url, "access_key_id": self.access_key_id,
                "secret_access_key": self.secret_access_key, "session_token": self.session_token}

    def session(self):
        import boto3  # noqa: PLC0415 - start-up: ~1 s, paid only when a client is made

        return boto3.session.Session(region_name=self.region, aws_access_key_id=self.access_key_id or None,
                                     aws_secret_access_key=self.secret_access_key or None,
                                     aws_session_token=self.session_token or None)

    def client(self, service: str):
        """A boto3 client of `service` at this connection's endpoint."""
        return self.session().client(service, endpoint_url=self.endpoint_url or None)


def aws_connection(profile: str) -> dict[str, Any]:
    """The connection fields of a profile: none on `local`; LocalStack's endpoint and test keys on `localstack`;
    the environment (or boto3's chain) on `aws`. `AWS_*` variables override each field."""
    if profile == "local":
        return {"region": env("AWS_REGION", aws_region()), "endpoint_url": None}
    keys = ("test", "test") if profile == "localstack" else (None, None)
    return {
        "region": env("AWS_REGION", aws_region()),
        "endpoint_url": env("AWS_ENDPOINT_URL", LOCALSTACK_ENDPOINT if profile == "localstack" else None),
        "access_key_id": env("AWS_ACCESS_KEY_ID", keys[0]),
        "secret_access_key": env("AWS_SECRET_ACCESS_KEY", keys[1]),
        "session_token": env("AWS_SESSION_TOKEN", None),
    }
