"""Publish a registered version as a signed bundle, and roll a release out: the glue the asset and CLI share.

No Dagster.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import polars as pl

from pipelines.edge import bundle as bundles
from pipelines.edge import keys as keyring
from pipelines.edge import status as device_status
from pipelines.edge.jobs import Campaign, JobsService, Rollout, RolloutConfig
from pipelines.edge.repository import PREFIX, Release, Repository
from pipelines.core.lake import Lake
from pipelines.ml.data import read_features
from pipelines.ml.features import LABEL


def selftest_rows_from_lake(lake: Lake, n: int = bundles.SELFTEST_ROWS) -> list[dict]:
    """Self-test rows from the newest labelled flights of `ml/delay_features` (the holdout end of the data)."""


    features, _ = read_features(lake)
    labelled = features.filter(pl.col(LABEL).is_not_null()).sort("flight_date", "flight_id").tail(n * 50)
    return bundles.holdout_rows(labelled, n=n)


def publish_model(
    lake: Lake,
    settings,
    key_dir: str | Path,
    *,
    version_or_alias: str = "champion",
    rows: Sequence[Mapping[str, object]] | None = None,
    bad: bool = False,
    prefix: str = PREFIX,
    log: Callable[[str], None] = lambda line: None,
) -> tuple[Release, bool]:
    """Build and publish the bundle of a registered version; (release, False) when it is already published."""
    from pipelines.ml.artifacts import download, resolve_version  # noqa: PLC0415 - start-up: pulls in mlflow ~3.6 s

    repo = Repository(lake, prefix)
    version = resolve_version(settings, version_or_alias)
    existing = repo.find(version, bad=bad)
    if existing is not None:
        log(f"bundle of {settings.model_name} v{version} already published as {existing.path}")
        return existing, False
    keys = keyring.load(key_dir)
    model = download(settings, version)
    rows = list(rows) if rows is not None else selftest_rows_from_lake(lake)
    built = bundles.build(model, rows, bad=bad)
    release = repo.publish(built.name, built.data, keys, custom={
        "model": model.name, "model_version": version, "run_id": model.run_id, "bad_release_drill": bad})
    log(f"published {release.path} ({release.length:,} bytes, sha256 {release.sha256[:12]}...) as release "
        f"{release.release}")
    return release, True


def plan_campaign(repo: Repository, things: Sequence[str], config: RolloutConfig, *,
                  target: Release | None = None, job_id: str | None = None) -> Campaign:
    """A rollout of `target` (the newest release) and its rollback job: devices on `target` return to the bundle
    they ran before (the newest good release before it when that bundle is gone)."""
    releases = repo.releases()
    if not releases:
        raise ValueError("nothing to roll out: the edge repository has no release (materialize edge/delay_model_bundle)")
    target = target or releases[-1]
    previous = [r for r in releases if r.release < target.release and not r.bad]
    rollback = {"operation": "rollback", "from": target.path, "target": previous[-1].path} if previous else None
    job_id = job_id or f"release-{target.release}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
    return Campaign(Rollout(job_id, things, {"operation": "install", "target": target.path}, config),
                    rollback_document=rollback)


def run_local_rollout(
    lake: Lake,
    campaign: Campaign,
    *,
    host: str,
    port: int,
    prefix: str,
    timeout: float,
    flush_every: float = 2.0,
    progress: Callable[[Campaign], None] | None = None,
) -> Campaign:
    """Drive the campaign over MQTT, MERGE device status into `edge/device_status` as it goes and at the end."""
    last = [0.0]

    def on_progress(c: Campaign) -> None:
        if time.monotonic() - last[0] >= flush_every:
            last[0] = time.monotonic()
            device_status.write(lake, device_status.rows_from_campaign(c))
        if progress:
            progress(c)

    service = JobsService(campaign, host=host, port=port, prefix=prefix)
    service.run(timeout=timeout, progress=on_progress)
    device_status.write(lake, device_status.rows_from_campaign(campaign))
    return campaign
