"""Stream automation: the landing sensor plans micro-batches and moves its cursor only over committed batches."""

import hashlib
import json

from dagster import (AssetSelection, DagsterRunStatus, DefaultSensorStatus, Definitions, RunRequest, RunsFilter,
                     SensorEvaluationContext, SensorResult, SkipReason, define_asset_job, sensor)

from assets.stream import ANOMALIES_KEY, LANDING_OP, RAW_KEY, STANDARDIZED_KEY, WINDOWS_KEY
from pipelines.stream.landing import BatchPlan, LandingState, committed_batch, committed_state, plan_next
from resources.lake import LakeResource
from resources.stream import StreamResource

DEFAULT_INTERVAL_SECONDS = 30
"""The sensor's tick: a record waits at most this long before a batch is requested for it."""

telemetry_landing_job = define_asset_job(
    "telemetry_landing",
    selection=AssetSelection.assets(RAW_KEY, STANDARDIZED_KEY, WINDOWS_KEY, ANOMALIES_KEY),
    description="Land one micro-batch of telemetry, then bring the windows and anomalies up to date.",
)

_FAILED = (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
MAX_ATTEMPTS = 3
"""Retries of a batch whose run ended without committing it, before the sensor waits for a person."""


def run_key(plan: BatchPlan, attempt: int = 0) -> str:
    """Deterministic: the same plan gives the same key; a retry of a failed run adds its attempt number."""
    digest = hashlib.sha1(plan.key.encode()).hexdigest()[:12]
    return f"telemetry-{plan.batch:08d}-{digest}" + (f"-retry{attempt}" if attempt else "")


def run_config(plan: BatchPlan) -> dict:
    ranges = [{"shard": r.shard, "after": r.after, "upto": r.upto} for r in plan.ranges]
    return {"ops": {LANDING_OP: {"config": {"batch": plan.batch, "ranges": ranges}}}}


def settle(cursor: dict, committed: int, state: LandingState | None) -> dict:
    """The cursor once the lake's commits are known: positions move to a committed batch's end, never further.

    `state` is the lake's committed state when `committed` differs from the cursor's batch (None otherwise):
    the lake is the truth, so a cursor ahead of it (a lake rebuilt from scratch) is brought back too.
    """
    cursor = {"batch": cursor.get("batch", 0), "shards": dict(cursor.get("shards", {})),
              "pending": cursor.get("pending")}
    if committed != cursor["batch"] and state is not None:
        cursor["batch"], cursor["shards"] = committed, dict(state.positions)
    pending = cursor["pending"]
    if pending is not None:
        plan = BatchPlan.from_json(pending["plan"])
        starts = all(cursor["shards"].get(r.shard) == r.after for r in plan.ranges)
        if plan.batch != cursor["batch"] + 1 or not starts:
            cursor["pending"] = None  # landed (by this plan or a run that got there first), or obsolete
    return cursor


def _dump(cursor: dict) -> str:
    return json.dumps(cursor, sort_keys=True)


def _request(plan: BatchPlan, attempt: int) -> RunRequest:
    return RunRequest(run_key=run_key(plan, attempt), run_config=run_config(plan),
                      tags={"tributary/trigger": "telemetry_landing", "tributary/batch": str(plan.batch)})


@sensor(
    name="telemetry_landing_sensor",
    job=telemetry_landing_job,
    minimum_interval_seconds=DEFAULT_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.STOPPED,
    description="Request a micro-batch run for the records new on each shard; the cursor (per shard) moves only "
                "after the lake holds the batch.",
)
def telemetry_landing_sensor(
    context: SensorEvaluationContext, lake: LakeResource, stream: StreamResource
) -> SensorResult | SkipReason:
    the_lake = lake.get_lake()
    committed = committed_batch(the_lake)
    before = json.loads(context.cursor) if context.cursor else {}
    cursor = settle(before, committed, committed_state(the_lake) if committed != before.get("batch", 0) else None)

    pending = cursor["pending"]
    if pending is not None:
        plan = BatchPlan.from_json(pending["plan"])
        runs = context.instance.get_runs(filters=RunsFilter(tags={"dagster/run_key": pending["run_key"]}), limit=1)
        status = runs[0].status if runs else None
        if (status in _FAILED or status == DagsterRunStatus.SUCCESS) and pending.get("attempt", 0) >= MAX_ATTEMPTS:
            return SensorResult(
                skip_reason=SkipReason(f"batch {plan.batch} failed {MAX_ATTEMPTS + 1} times (last run "
                                       f"{runs[0].run_id}): fix the cause, then re-execute that run"),
                cursor=_dump(cursor),
            )
        if status in _FAILED or status == DagsterRunStatus.SUCCESS:
            # The run ended without the lake holding its batch: run the same plan again (same files).
            attempt = pending.get("attempt", 0) + 1
            cursor["pending"] = {**pending, "attempt": attempt, "run_key": run_key(plan, attempt)}
            context.log.warning(f"batch {plan.batch} not committed after run {runs[0].run_id} ({status.value}): "
                                f"requesting it again")
            return SensorResult(run_requests=[_request(plan, attempt)], cursor=_dump(cursor))
        return SensorResult(
            skip_reason=SkipReason(f"batch {plan.batch} is in flight (run key {pending['run_key']}, "
                                   f"{status.value.lower() if status else 'not started'}); the cursor moves when "
                                   "the lake holds it"),
            cursor=_dump(cursor),
        )

    source = stream.get_source()
    plan = plan_next(source, LandingState(cursor["batch"], cursor["shards"]), max_records=stream.max_records)
    if plan is None:
        shards = len(source.shards())
        return SensorResult(
            skip_reason=SkipReason(f"no new records on {shards} shard(s) of the {stream.kind} stream after batch "
                                   f"{cursor['batch']}" if shards else f"the {stream.kind} stream has no shards yet"),
            cursor=_dump(cursor),
        )
    cursor["pending"] = {"batch": plan.batch, "plan": plan.to_json(), "run_key": run_key(plan), "attempt": 0}
    spans = ", ".join(f"{r.shard} ({r.after or 'start'}, {r.upto}]" for r in plan.ranges)
    context.log.info(f"requesting batch {plan.batch}: {spans}")
    return SensorResult(run_requests=[_request(plan, 0)], cursor=_dump(cursor))


defs = Definitions(jobs=[telemetry_landing_job], sensors=[telemetry_landing_sensor])
