"""When downstream assets follow their upstreams (declarative automation), and the project's schedules."""

from dagster import AutomationCondition, DefaultScheduleStatus, ScheduleDefinition


def follows_upstream() -> AutomationCondition:
    """Eager, for every partition (not only the latest day) and gated on blocking checks.

    Dagster's `eager()` looks at the newest time partition only; change capture re-extracts old days, and
    those must flow to the warehouse too. A failed blocking check upstream (too much quarantine) stops the
    flow until someone looks.
    """
    return (
        (AutomationCondition.newly_missing() | AutomationCondition.any_deps_updated()).since_last_handled()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
        & ~AutomationCondition.any_deps_match(
            AutomationCondition.any_checks_match(AutomationCondition.check_failed(), blocking_only=True)
        )
    ).with_label("follows upstream")


def utc_schedule(name: str, job, cron: str, *, description: str) -> ScheduleDefinition:
    """A schedule on UTC's clock, stopped until someone turns it on: a deployment opts in to each clock."""
    return ScheduleDefinition(name=name, job=job, cron_schedule=cron, execution_timezone="UTC",
                              default_status=DefaultScheduleStatus.STOPPED, description=description)
