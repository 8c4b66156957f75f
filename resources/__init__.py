"""Resources for the three profiles, built once: `TRIBUTARY_PROFILE=local|localstack|aws`.

Every field that differs between profiles comes from an environment variable when it is set (as a Dagster
`EnvVar`, read when the resource is used, never at import) and otherwise from the profile's default.
Nothing here touches the network.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from dagster import EnvVar

from resources.documents import documents_resource
from resources.edge import edge_resource
from resources.lake import LakeResource
from resources.mlflow import mlflow_resource
from resources.serving import serving_resource
from resources.source_db import SourceDatabaseResource
from resources.stream import stream_resource

Profile = Literal["local", "localstack", "aws"]
PROFILES: tuple[Profile, ...] = ("local", "localstack", "aws")


class ProfileError(ValueError):
    """An unknown or incomplete profile; the message says what to set."""


def current_profile() -> Profile:
    profile = os.environ.get("TRIBUTARY_PROFILE", "local").strip() or "local"
    if profile not in PROFILES:
        raise ProfileError(f"unknown TRIBUTARY_PROFILE {profile!r}: use one of {', '.join(PROFILES)}")
    return profile  # type: ignore[return-value]


def home() -> str:
    """The folder for local state (source database, lake, Dagster instance, MLflow): `.tributary` by default."""
    return os.environ.get("TRIBUTARY_HOME", ".tributary")


def _env(name: str, default: Any) -> Any:
    """The variable as an EnvVar when it is set, so Dagster reads it at use time; else the profile default."""
    return EnvVar(name) if os.environ.get(name) else default


# Defaults per profile; only these differ. `None` means "must come from the environment" (aws).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "local": {
        "lake_root": None,  # filled from home()
        "endpoint": None,
        "source_dsn": None,  # filled from home()
        "keys": (None, None),
        "create_bucket": False,
    },
    "localstack": {
        "lake_root": "s3://tributary-lake",
        "endpoint": "http://127.0.0.1:4566",
        "source_dsn": "postgresql://postgres@127.0.0.1:5432/test",
        "keys": ("test", "test"),
        "create_bucket": True,
    },
    "aws": {
        "lake_root": None,
        "endpoint": None,
        "source_dsn": None,
        "keys": (None, None),
        "create_bucket": False,
    },
}


def build_resources(profile: str | None = None) -> dict[str, Any]:
    """The resources of a profile, keyed by the names the assets use."""
    profile = profile or current_profile()
    if profile not in PROFILES:
        raise ProfileError(f"unknown TRIBUTARY_PROFILE {profile!r}: use one of {', '.join(PROFILES)}")
    d = dict(_DEFAULTS[profile])
    if profile == "local":
        d["lake_root"] = os.path.join(home(), "lake")
        d["source_dsn"] = f"sqlite:///{os.path.join(home(), 'source.db')}"
    if profile == "aws":
        bucket = os.environ.get("TRIBUTARY_LAKE_BUCKET")
        d["lake_root"] = f"s3://{bucket}" if bucket else None
    region = _env("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    endpoint = _env("AWS_ENDPOINT_URL", d["endpoint"])
    access_key, secret_key = d["keys"]
    lake_root = _env("TRIBUTARY_LAKE_ROOT", d["lake_root"])
    if lake_root is None:
        raise ProfileError(f"profile {profile!r} needs TRIBUTARY_LAKE_ROOT (s3://bucket/prefix) or TRIBUTARY_LAKE_BUCKET")
    lake = LakeResource(
        root=lake_root,
        region=region,
        endpoint_url=endpoint if profile != "local" else None,
        access_key_id=_env("AWS_ACCESS_KEY_ID", access_key),
        secret_access_key=_env("AWS_SECRET_ACCESS_KEY", secret_key),
        session_token=_env("AWS_SESSION_TOKEN", None),
        create_bucket=d["create_bucket"],
    )
    source_db = SourceDatabaseResource(
        dsn=_env("TRIBUTARY_SOURCE_DSN", d["source_dsn"]),
        secret_id=_env("TRIBUTARY_SOURCE_SECRET_ID", None),
        region=region,
        endpoint_url=endpoint if profile != "local" else None,
    )
    return {"lake": lake, "source_db": source_db, "stream": stream_resource(profile), "mlflow": mlflow_resource(profile),
            "documents": documents_resource(profile), "serving": serving_resource(profile), "edge": edge_resource(profile)}


def resolved(name: str, profile: str | None = None) -> Any:
    """One resource of the profile with its EnvVars read, for use outside a run (the CLI, benchmarks)."""
    return build_resources(profile)[name].process_config_and_initialize()
