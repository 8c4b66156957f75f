"""The serving choices of a profile without Dagster: the backend and where the local endpoint's config lives.
`resources.serving.serving_resource` and `tributary serve status` both read them here, so they cannot differ."""

from __future__ import annotations

import os

from pipelines.serving.config import ConfigError
from resources.profiles import check_profile, home, setting

MODES = ("local", "sagemaker")


def serving_mode(profile: str) -> str:
    """local or sagemaker: TRIBUTARY_SERVING_MODE, else sagemaker on `aws` and local elsewhere."""
    mode = setting("TRIBUTARY_SERVING_MODE") or ("sagemaker" if check_profile(profile) == "aws" else "local")
    if mode not in MODES:
        raise ConfigError(f"unknown serving mode {mode!r} (TRIBUTARY_SERVING_MODE): use one of {', '.join(MODES)}")
    return mode


def serving_root() -> str:
    """The local endpoint's folder (config, models, spool, state) under the home."""
    return os.path.join(home(), "serving")


def config_path() -> str:
    """The endpoint config the local service watches."""
    return setting("TRIBUTARY_SERVING_CONFIG") or os.path.join(serving_root(), "endpoint.json")
