"""The edge repository kept fresh: a schedule re-signs the TUF timestamp (and the snapshot and targets when
they near their end) so a fleet never freezes a day after the last publish (issue 20.5).

An op, not an asset: re-signing changes no data, only the dates a device checks. It runs hourly and does
nothing until a role has less than `RESIGN_WHEN_LEFT` of its life left (half a day for the timestamp), so
eleven missed runs in a row still leave devices updating. RUNNING by default, unlike the project's other
schedules: without it every device refuses the repository a day after the last publish. It skips while no
repository exists; a repository without its keys fails the run, which is what an operator must hear about.
"""

from dagster import DefaultScheduleStatus, Definitions, OpExecutionContext, ScheduleDefinition, job, op

from pipelines.edge import keys as keyring
from pipelines.edge.repository import Repository
from resources.edge import EdgeResource
from resources.lake import LakeResource


@op(description="Re-sign the edge TUF repository's timestamp (and snapshot, targets) before they expire.")
def keep_edge_repository_fresh(context: OpExecutionContext, lake: LakeResource, edge: EdgeResource) -> None:
    repository = Repository(lake.get_lake(), edge.repository_prefix)
    if not repository.initialized():
        context.log.info("no edge repository yet: nothing to keep fresh")
        return
    done = repository.keep_fresh(keyring.load(edge.key_dir))
    context.log.info("re-signed " + ", ".join(f"{role} v{v}" for role, v in done.items()) if done
                     else "every role has more than its margin left: nothing re-signed")


@job(description="Keep the edge repository's signatures from expiring (tributary edge keep-fresh does the same).")
def edge_keep_fresh_job() -> None:
    keep_edge_repository_fresh()


edge_keep_fresh = ScheduleDefinition(
    name="edge_keep_fresh", job=edge_keep_fresh_job, cron_schedule="17 * * * *", execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Hourly: re-sign the TUF timestamp (snapshot, targets) before devices would see it expire.")

defs = Definitions(jobs=[edge_keep_fresh_job], schedules=[edge_keep_fresh])
