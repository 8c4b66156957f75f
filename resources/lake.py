"""The lake as a Dagster resource: one interface, a folder on `local` and an S3 bucket on `localstack` and `aws`.

Assets annotate `LakeResource`; `build_resources` picks the implementation once per profile.
"""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from pipelines.core.lake import Lake
from resources.aws import AwsConnection, aws_connection
from resources.lake_settings import default_lake_root, lake_root
from resources.profiles import env


class LakeResource(ConfigurableResource):
    """Where the raw, standardized, warehouse and model zones live."""

    root: str = Field(description="Lake root: a folder path, file:// URI or s3://bucket[/prefix].")

    def get_lake(self) -> Lake:
        """The lake, checked: raises LakeError with one clear line when it cannot be reached."""
        raise NotImplementedError(f"{type(self).__name__} is an interface: use LocalLakeResource or S3LakeResource")


class LocalLakeResource(LakeResource):
    """A lake in a folder (`local`)."""

    def get_lake(self) -> Lake:
        lake = Lake(root=self.root)
        lake.check()
        return lake


class S3LakeResource(LakeResource, AwsConnection):
    """A lake in an S3 bucket (`localstack`, `aws`)."""

    create_bucket: bool = Field(default=False, description="Create a missing bucket (test endpoints only).")

    def get_lake(self) -> Lake:
        lake = Lake(root=self.root, **self.connection())
        lake.check(create=self.create_bucket)
        return lake


def lake_resource(profile: str) -> LakeResource:
    """The lake of a profile: a folder on `local` (unless TRIBUTARY_LAKE_ROOT names a bucket), else S3."""
    default = default_lake_root(profile)
    root = lake_root(profile)  # the one choice, shared with the Dagster-free `plain_lake`
    if not root.startswith("s3://"):
        return LocalLakeResource(root=env("TRIBUTARY_LAKE_ROOT", default))
    return S3LakeResource(root=env("TRIBUTARY_LAKE_ROOT", default),
                          **aws_connection("aws" if profile == "local" else profile),
                          create_bucket=profile == "localstack")
