"""Edge automation: a new champion becomes a new bundle (one run per champion version)."""

from dagster import Definitions

from assets.edge import BUNDLE_KEY
from pipelines.ml.registry import CHAMPION
from sensors.ml import alias_sensor


def run_key(version: str) -> str:
    """Deterministic: one bundle run per champion version, however many ticks see it."""
    return f"edge-bundle:champion:{version}"


edge_bundle_on_new_champion = alias_sensor(
    "edge_bundle_on_new_champion",
    asset_selection=[BUNDLE_KEY],
    minimum_interval_seconds=300,
    description="Request edge/delay_model_bundle when the `champion` alias of delay_model moves.",
    aliases=(CHAMPION,),
    run_key=lambda seen: run_key(seen[CHAMPION]),
    tags=lambda seen: {"tributary/trigger": "new_champion", "tributary/model_version": seen[CHAMPION]},
    done="its bundle already requested",
    action="requesting the champion's edge bundle",
)

defs = Definitions(sensors=[edge_bundle_on_new_champion])
