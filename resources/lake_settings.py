"""The lake of a profile without Dagster: what `LakeResource` resolves to, for the commands that only read the
lake (`tributary query`, `search`, `dashboard`) and must start in well under a second.

A leaf like `profiles`: the choice of root and connection is made here once; `resources.lake.lake_resource`
builds the Dagster resource from the same choice.
"""

from __future__ import annotations

import os
from typing import Any

from pipelines.core.lake import Lake
from resources.profiles import ProfileError, aws_region, current_profile, home, setting

LOCALSTACK_ENDPOINT = "http://127.0.0.1:4566"
"""Where LocalStack (or moto in server mode) listens by default."""


def default_lake_root(profile: str) -> str | None:
    """The profile's lake root when TRIBUTARY_LAKE_ROOT is not set: a folder under the home on `local`."""
    if profile == "local":
        return os.path.join(home(), "lake")
    if profile == "localstack":
        return "s3://tributary-lake"
    bucket = setting("TRIBUTARY_LAKE_BUCKET")
    return f"s3://{bucket}" if bucket else None


def lake_root(profile: str) -> str:
    root = setting("TRIBUTARY_LAKE_ROOT") or default_lake_root(profile)
    if root is None:
        raise ProfileError(f"profile {profile!r} needs TRIBUTARY_LAKE_ROOT (s3://bucket/prefix) or TRIBUTARY_LAKE_BUCKET")
    return root


def aws_values(profile: str) -> dict[str, Any]:
    """The AWS connection of a profile as plain values (what `resources.aws.aws_connection` reads at use time)."""
    keys = ("test", "test") if profile == "localstack" else (None, None)
    return {
        "region": aws_region(),
        "endpoint_url": os.environ.get("AWS_ENDPOINT_URL") or (LOCALSTACK_ENDPOINT if profile == "localstack" else None),
        "access_key_id": os.environ.get("AWS_ACCESS_KEY_ID") or keys[0],
        "secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY") or keys[1],
        "session_token": os.environ.get("AWS_SESSION_TOKEN") or None,
    }


def plain_lake(profile: str | None = None) -> Lake:
    """The profile's lake, checked (one clear LakeError when it cannot be reached); on `localstack` a missing
    bucket is created, as `S3LakeResource` does there."""
    profile = profile or current_profile()
    root = lake_root(profile)
    if not root.startswith("s3://"):
        lake = Lake(root=root)
    else:
        lake = Lake(root=root, **aws_values("aws" if profile == "local" else profile))
    lake.check(create=profile == "localstack")
    return lake
