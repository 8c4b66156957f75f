"""Resources for the three profiles, built once: `TRIBUTARY_PROFILE=local|localstack|aws`.

Every field that differs between profiles comes from an environment variable when it is set (as a Dagster
`EnvVar`, read when the resource is used, never at import) and otherwise from the profile's default; the
variables are registered in `resources.profiles`, the AWS connection is `resources.aws`. Backends are
subclasses picked here, once per profile. Nothing here touches the network, and importing this package
imports no resource module (the CLI and the serving workers import `resources.profiles` alone).
"""

from __future__ import annotations

from typing import Any

from resources.profiles import (
    PROFILES, Profile, ProfileError, check_profile, current_profile, home, max_concurrent,
)

__all__ = ["PROFILES", "Profile", "ProfileError", "build_resources", "current_profile", "home", "max_concurrent",
           "resolved"]


def build_resources(profile: str | None = None) -> dict[str, Any]:
    """The resources of a profile, keyed by the names the assets use."""
    # Imported here: `import resources` (the CLI's start-up, the serving image without Dagster) stays light.
    from resources.documents import documents_resource  # noqa: PLC0415
    from resources.edge import edge_resource  # noqa: PLC0415
    from resources.extract import source_db_resource  # noqa: PLC0415
    from resources.lake import lake_resource  # noqa: PLC0415
    from resources.ml import mlflow_resource  # noqa: PLC0415
    from resources.serving import serving_resource  # noqa: PLC0415
    from resources.stream import stream_resource  # noqa: PLC0415

    profile = check_profile(profile or current_profile())
    return {"lake": lake_resource(profile), "source_db": source_db_resource(profile),
            "stream": stream_resource(profile), "mlflow": mlflow_resource(profile),
            "documents": documents_resource(profile), "serving": serving_resource(profile),
            "edge": edge_resource(profile)}


def resolved(name: str, profile: str | None = None) -> Any:
    """One resource of the profile with its EnvVars read, for use outside a run (the CLI, benchmarks)."""
    return build_resources(profile)[name].process_config_and_initialize()
