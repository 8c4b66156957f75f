"""Device status in the lake (`edge/device_status`, Delta, MERGE on device_id + job_id) and its summary.

No Dagster. The jobs service writes a row per device and job as updates arrive; `tributary edge status`
reads the table: counts per state and per model version, and a progress bar while a rollout runs.
"""

from __future__ import annotations

import datetime as dt
import polars as pl

from pipelines.core import delta
from pipelines.core.lake import Lake

TABLE = "edge/device_status"
SCHEMA = {
    "device_id": pl.String, "job_id": pl.String, "status": pl.String, "version": pl.String, "step": pl.String,
    "reason": pl.String, "rollout_status": pl.String, "updated_at": pl.Datetime("us", "UTC"),
}
TERMINAL = ("SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED", "REMOVED")
FAILURES = ("FAILED", "REJECTED", "TIMED_OUT")


def rows_from_campaign(campaign, *, at: dt.datetime | None = None) -> pl.DataFrame:
    """One row per device and job of a campaign (the release job and its rollback job)."""
    at = at or dt.datetime.now(dt.UTC)
    rows = []
    for job in campaign.jobs():
        for e in job.executions.values():
            rows.append({"device_id": e.thing, "job_id": job.job_id, "status": e.status,
                         "version": str(e.details.get("version", "")), "step": str(e.details.get("step", "")),
                         "reason": str(e.details.get("reason", ""))[:500], "rollout_status": job.status,
                         "updated_at": at})
    return pl.DataFrame(rows, schema=SCHEMA)


def write(lake: Lake, rows: pl.DataFrame, *, batch_rows: int = 250_000) -> int | None:
    """MERGE the rows (a rerun updates, never duplicates); the Delta version, or None when there was nothing.

    A million rows go in batches of `batch_rows` (one commit each): one MERGE of them all holds the source, the
    target and the join in memory at once."""
    if rows.height == 0:
        return None
    version = None
    for start in range(0, rows.height, batch_rows):
        version = delta.merge(lake, TABLE, rows.slice(start, batch_rows), keys=["device_id", "job_id"])
    return version


def read(lake: Lake) -> pl.DataFrame:
    if delta.version(lake, TABLE) is None:
        return pl.DataFrame(schema=SCHEMA)
    return delta.scan(lake, TABLE).collect()


def summary(frame: pl.DataFrame, job_id: str | None = None) -> dict:
    """Counts per state and version of the newest job (or `job_id`), and the share finished."""
    if frame.height == 0:
        return {"job_id": None, "total": 0, "done": 0, "states": {}, "versions": {}, "rollout_status": None}
    if job_id is None:
        newest = frame.sort("updated_at").row(-1, named=True)
        job_id = newest["job_id"].removesuffix("-rollback")
    jobs = frame.filter(pl.col("job_id").is_in([job_id, f"{job_id}-rollback"]))
    release = jobs.filter(pl.col("job_id") == job_id)
    states = dict(release.group_by("status").len().sort("status").iter_rows())
    # A device's version is the one its newest update names.
    latest = jobs.sort("updated_at").group_by("device_id").agg(pl.col("version").filter(pl.col("version") != "")
                                                               .last())
    versions = dict(latest.group_by("version").len().sort("version").iter_rows())
    rollback = jobs.filter(pl.col("job_id") == f"{job_id}-rollback")
    return {
        "job_id": job_id,
        "total": release.height,
        "done": int(release["status"].is_in(TERMINAL).sum()),
        "states": states,
        "versions": {str(k): v for k, v in versions.items()},
        "rollout_status": release["rollout_status"][0] if release.height else None,
        "rollback": dict(rollback.group_by("status").len().sort("status").iter_rows()) if rollback.height else {},
    }


def bar(done: int, total: int, width: int = 30, *, label: str = "") -> str:
    share = done / total if total else 0.0
    filled = int(round(share * width))
    return f"[{'#' * filled}{'.' * (width - filled)}] {label + ' ' if label else ''}{done}/{total} ({share:.0%})"


def render(s: dict) -> list[str]:
    if not s["job_id"]:
        return ["no rollout recorded: edge/device_status is empty (`tributary edge rollout` records one; "
                "`tributary edge simulate` runs a fleet in memory and writes no rows: the UI shows its figures as an "
                "observation of edge/rollout)"]
    states = s["states"]
    failed = sum(states.get(k, 0) for k in FAILURES)
    succeeded = states.get("SUCCEEDED", 0)
    # A job is COMPLETED once every execution is terminal, whatever their outcome (AWS IoT Jobs says so too):
    # the header says how it went, so "COMPLETED" over a fleet that failed reads as what it is.
    outcome = f"{succeeded} succeeded, {failed} failed"
    if s["rollout_status"] == "COMPLETED" and failed and not succeeded:
        outcome = f"failed on every device ({failed})"
    lines = [f"job {s['job_id']}: {s['rollout_status']}, {outcome}",
             bar(s["done"], s["total"], label="finished")]
    lines.append("states:   " + ", ".join(f"{k} {v}" for k, v in s["states"].items()))
    lines.append("versions: " + ", ".join(f"v{k} {v}" for k, v in s["versions"].items()))
    if s.get("rollback"):
        lines.append("rollback: " + ", ".join(f"{k} {v}" for k, v in s["rollback"].items()))
    return lines
