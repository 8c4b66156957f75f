"""The sensor that evaluates the standardize and warehouse assets' automation conditions."""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus, Definitions

follow_upstream_sensor = AutomationConditionSensorDefinition(
    "follow_upstream",
    target=AssetSelection.groups("standardize", "warehouse"),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="A new or re-extracted raw partition flows to standardized and warehouse tables by itself.",
)

defs = Definitions(sensors=[follow_upstream_sensor])
