"""The lake as a Dagster resource: a folder on `local`, an S3 bucket on `localstack` and `aws`."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from pipelines.core.lake import Lake


class LakeResource(ConfigurableResource):
    """Where the raw, standardized, warehouse and model zones live (`file://`, a path, or `s3://bucket/prefix`)."""

    root: str = Field(description="Lake root: a folder path, file:// URI or s3://bucket[/prefix].")
    region: str = "us-east-1"
    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint (LocalStack, moto, MinIO).")
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    create_bucket: bool = Field(default=False, description="Create a missing bucket (test endpoints only).")

    def get_lake(self) -> Lake:
        """The lake, checked: raises LakeError with one clear line when it cannot be reached."""
        lake = Lake(
            root=self.root,
            region=self.region,
            endpoint_url=self.endpoint_url,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            session_token=self.session_token,
        )
        lake.check(create=self.create_bucket)
        return lake
