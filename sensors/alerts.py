"""Tell people when a run fails: a run-failure sensor posts to the webhook in TRIBUTARY_ALERT_WEBHOOK_URL, and
says in its log that no one was told when none is set."""

from __future__ import annotations

from types import SimpleNamespace

from dagster import DagsterEventType, DefaultSensorStatus, Definitions, RunFailureSensorContext, run_failure_sensor

from pipelines.core.alerts import FailedRun, post
from pipelines.core.errors import run_failure_reason
from resources.profiles import setting

WEBHOOK = "TRIBUTARY_ALERT_WEBHOOK_URL"


def failed_run(context: RunFailureSensorContext) -> FailedRun:
    """The failed run, with the first failed step and what it raised (read from the run's events)."""
    run = context.dagster_run
    records = context.instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
    events = SimpleNamespace(all_events=[r.get_dagster_event() for r in records])
    reason = run_failure_reason(events) if records else (context.failure_event.message or "see the run's log")
    return FailedRun(run_id=run.run_id, job=run.job_name, reason=reason, partition=run.tags.get("dagster/partition"))


@run_failure_sensor(
    name="run_failure_alert",
    default_status=DefaultSensorStatus.RUNNING,
    description=f"Posts every failed run to the webhook in {WEBHOOK}; logs that no one was told when it is unset.",
)
def run_failure_alert(context: RunFailureSensorContext) -> None:
    run = failed_run(context)
    webhook = setting(WEBHOOK)
    if webhook is None:
        context.log.warning(f"run {run.run_id} of {run.job} failed ({run.reason}); {WEBHOOK} is not set, so no "
                            "one was told")
        return
    status = post(webhook, run)
    context.log.info(f"run {run.run_id} of {run.job} failed; posted to the webhook (HTTP {status})")


defs = Definitions(sensors=[run_failure_alert])
