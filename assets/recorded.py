"""What a `tributary` command changed outside a Dagster run, recorded in the profile's Dagster instance.

`tributary stream land`, `edge publish`, `edge rollout` and `edge simulate` do their work without Dagster (the
README's first tries use them). Without this, their assets stayed "Never materialized" in the UI while the lake
changed. Each command reports runless events (`DagsterInstance.report_runless_asset_event`) carrying the
metadata its asset's run reports (the same functions build it), rather than running as a Dagster run: the
commands take options the assets do not (`--follow`, `--things`, `--config`), a run would add Dagster's run
start-up to every landing batch, and a runless materialization marks downstream assets stale just the same.
A simulation writes nothing, so it is an observation of `edge/rollout`, not a materialization.

No `defs`: the definitions loader skips this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from dagster import (AssetCheckEvaluation, AssetCheckResult, AssetKey, AssetMaterialization, AssetObservation,
                     DagsterInstance, MaterializeResult)

from pipelines.core.instance import local_instance_home
from resources import current_profile, home

Event = AssetMaterialization | AssetObservation | AssetCheckEvaluation


def materialization(key: AssetKey, metadata: Mapping, command: str) -> AssetMaterialization:
    return AssetMaterialization(asset_key=key, metadata={**metadata, "tributary/command": command},
                                description=f"reported by `{command}` (no run)")


def observation(key: AssetKey, metadata: Mapping, command: str) -> AssetObservation:
    return AssetObservation(asset_key=key, metadata={**metadata, "tributary/command": command},
                            description=f"reported by `{command}` (no run)")


def from_results(results: Iterable[MaterializeResult], command: str) -> list[Event]:
    """An asset's MaterializeResults (with their check results) as runless events."""
    events: list[Event] = []
    for result in results:
        key = result.asset_key
        events.append(materialization(key, result.metadata or {}, command))
        events += [_check(key, check) for check in result.check_results or ()]
    return events


def _check(key: AssetKey, check: AssetCheckResult) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(asset_key=check.asset_key or key, check_name=check.check_name or "",
                                passed=check.passed, metadata=check.metadata or {}, severity=check.severity)


def record(command: str, events: list[Event], *, echo: Callable[[str], None], warn: Callable[[str], None]) -> bool:
    """Report the events to the profile's instance and say where. When it cannot be written: one warning line and
    False, not an error: the command's work is done and must not look failed (and be re-run) for its record."""
    if not events:
        return False
    try:
        folder = local_instance_home(home(), current_profile())
        with DagsterInstance.get() as instance:
            for event in events:
                instance.report_runless_asset_event(event)
    except Exception as exc:  # any storage error (a locked SQLite file, PostgreSQL down) is one warning line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        warn(f"warning: `{command}` did its work, but it is not recorded in the Dagster instance: "
             f"{type(exc).__name__}: {first}")
        return False
    keys = sorted({e.asset_key.to_user_string() for e in events if not isinstance(e, AssetCheckEvaluation)})
    echo(f"recorded in the Dagster instance {folder}: {', '.join(keys)}")
    return True
