"""`tributary stream land` records what it landed in the Dagster instance, so the UI does not say "Never
materialized" for tables the command just wrote."""

from __future__ import annotations

import os
import subprocess
import sys

from dagster import AssetKey, DagsterInstance

from pipelines.core import delta
from pipelines.core.lake import Lake

TRIBUTARY = [sys.executable, "-m", "pipelines.cli"]
KEYS = [AssetKey(["raw", "telemetry"]), AssetKey(["standardized", "telemetry"]),
        AssetKey(["analytics", "telemetry_windows"]), AssetKey(["analytics", "telemetry_anomalies"])]


def _latest(key: AssetKey):
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(key)
        return event.asset_materialization if event is not None else None


def test_land_reports_a_runless_materialization_per_table_it_wrote() -> None:
    assert all(_latest(key) is None for key in KEYS)
    produced = subprocess.run([*TRIBUTARY, "stream", "produce", "--speedup", "0", "--limit", "400"],
                              capture_output=True, text=True, timeout=300)
    assert produced.returncode == 0, produced.stderr
    landed = subprocess.run([*TRIBUTARY, "stream", "land"], capture_output=True, text=True, timeout=600)
    assert landed.returncode == 0, landed.stderr
    assert f"recorded in the Dagster instance {os.environ['DAGSTER_HOME']}" in landed.stdout, landed.stdout

    raw, standardized, windows, anomalies = (_latest(key) for key in KEYS)
    lake = Lake(os.path.join(os.environ["TRIBUTARY_HOME"], "lake"))
    assert raw.metadata["tributary/command"].value == "tributary stream land"
    assert raw.metadata["dagster/row_count"].value >= 400  # every record read, duplicates and bad ones included
    assert standardized.metadata["batch"].value == 1
    assert standardized.metadata["dagster/row_count"].value == delta.scan(lake, "standardized/telemetry").collect().height
    assert standardized.metadata["delta_version"].value == delta.open_table(lake, "standardized/telemetry").version()
    assert windows.metadata["dagster/uri"].value == lake.uri("analytics/telemetry_windows")
    assert anomalies.metadata["batch"].value == 1
    with DagsterInstance.get() as instance:
        [record] = instance.fetch_materializations(KEYS[1], limit=10).records
        assert record.run_id == ""  # runless: reported by the command, not run by Dagster

    again = subprocess.run([*TRIBUTARY, "stream", "land"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "recorded" not in again.stdout, again.stdout
    with DagsterInstance.get() as instance:
        assert len(instance.fetch_materializations(KEYS[1], limit=10).records) == 1  # nothing landed: no event
