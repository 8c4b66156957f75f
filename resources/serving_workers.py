"""The serving workers' settings: `tributary serve` hands its options to its uvicorn workers as TRIBUTARY_SERVE_*
variables, and each worker builds its `Settings` here (uvicorn's factory is `create_app`).

No Dagster and no resource here: the serving image (deploy/serving/Dockerfile) has neither.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.core.lake import Lake
from pipelines.serving import app, protocol
from pipelines.serving.app import App, Settings
from pipelines.serving.config import DEFAULT_ENDPOINT
from pipelines.serving.server import ServeOptions
from resources.profiles import aws_region, setting

FACTORY = "resources.serving_workers:create_app"


def endpoint_name() -> str:
    """The endpoint's name when the profile's resource is not built (TRIBUTARY_SERVING_ENDPOINT)."""
    return setting("TRIBUTARY_SERVING_ENDPOINT") or DEFAULT_ENDPOINT


def worker_environment(options: ServeOptions) -> dict[str, str]:
    """What the workers read: the folders and name of `options`, absolute."""
    def absolute(path: str | None) -> str:
        return str(Path(path).resolve()) if path else ""

    return {"TRIBUTARY_SERVE_CONFIG": absolute(options.config_path),
            "TRIBUTARY_SERVE_MODEL_DIR": absolute(options.model_dir),
            "TRIBUTARY_SERVE_ENDPOINT": options.endpoint,
            "TRIBUTARY_SERVE_SPOOL": absolute(options.spool_dir),
            "TRIBUTARY_SERVE_STATE": absolute(options.state_dir)}


def online_storage() -> dict[str, str]:
    """The object_store options of the container's AWS connection, from the AWS_* variables as the lake's
    resource takes them (endpoint, region, keys); without keys, object_store's own chain (the SageMaker execution
    role's credentials) applies."""
    def aws(name: str) -> str | None:
        return os.environ.get(name, "").strip() or None

    return Lake(root="s3://online", region=aws_region(), endpoint_url=aws("AWS_ENDPOINT_URL"),
                access_key_id=aws("AWS_ACCESS_KEY_ID"), secret_access_key=aws("AWS_SECRET_ACCESS_KEY"),
                session_token=aws("AWS_SESSION_TOKEN")).storage_options


def settings() -> Settings:
    """One worker's settings, from the TRIBUTARY_SERVE_* variables (each limit has its default when unset)."""
    defaults = Settings()

    def number(name: str, default: float) -> float:
        return float(setting(name) or default)

    return Settings(config_path=setting("TRIBUTARY_SERVE_CONFIG"), model_dir=setting("TRIBUTARY_SERVE_MODEL_DIR"),
                    endpoint=setting("TRIBUTARY_SERVE_ENDPOINT") or defaults.endpoint,
                    spool_dir=setting("TRIBUTARY_SERVE_SPOOL"), state_dir=setting("TRIBUTARY_SERVE_STATE"),
                    segment_seconds=number("TRIBUTARY_SERVE_SEGMENT_SECONDS", defaults.segment_seconds),
                    spool_max_mb=number("TRIBUTARY_SERVE_SPOOL_MAX_MB", defaults.spool_max_mb),
                    header_seconds=number("TRIBUTARY_SERVE_HEADER_SECONDS", defaults.header_seconds),
                    body_seconds=number("TRIBUTARY_SERVE_BODY_SECONDS", defaults.body_seconds),
                    keepalive_seconds=number("TRIBUTARY_SERVE_KEEPALIVE_SECONDS", defaults.keepalive_seconds),
                    max_connections=int(number("TRIBUTARY_SERVE_MAX_CONNECTIONS", defaults.max_connections)),
                    online_path=setting("TRIBUTARY_SERVE_ONLINE_FEATURES"), online_storage=online_storage(),
                    online_check_seconds=number("TRIBUTARY_SERVE_ONLINE_CHECK_SECONDS",
                                                defaults.online_check_seconds))


def create_app() -> App:
    """The factory uvicorn calls in each worker (`--factory`): the settings, the connection limits, the app."""
    worker = settings()
    protocol.configure(header_seconds=worker.header_seconds, max_connections=worker.max_connections)
    return app.create_app(worker)
