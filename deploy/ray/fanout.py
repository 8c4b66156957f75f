"""Fan a range of days out as Dagster runs on a Ray cluster, at most `max_runs` at a time.

The equivalent of a backfill under `BackfillPolicy.multi_run(k)` without the daemon: the days are cut into runs
of `days_per_run` days of `main_days` (each run extracts only its days), then one run of `main_months` per month
(each writes only its month: `delta.overwrite_range`, safe beside the other runs' commits). Every run is
launched by the instance's run launcher (deploy/ray/dagster.yaml: RayRunLauncher), so each is one Ray job.
Every wait has a deadline: a run that does not finish in time is a failure, never a hang.

    DAGSTER_HOME=... python deploy/ray/fanout.py --from 2013-01-01 --to 2013-01-31 --max-runs 2
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.definitions.reconstruct import ReconstructableRepository

ROOT = Path(__file__).resolve().parents[2]
DONE = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


@dataclass
class Launched:
    """What the fan-out started: Dagster run id -> Ray job submission id, and the runs that did not succeed."""

    ray_jobs: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)


def day_chunks(start: dt.date, end: dt.date, days_per_run: int) -> list[tuple[str, str]]:
    """[start, end] cut into consecutive ranges of at most `days_per_run` days (one run each)."""
    chunks, day = [], start
    while day <= end:
        last = min(day + dt.timedelta(days=days_per_run - 1), end)
        chunks.append((day.isoformat(), last.isoformat()))
        day = last + dt.timedelta(days=1)
    return chunks


def month_chunks(start: dt.date, end: dt.date) -> list[tuple[str, str]]:
    """The monthly partition keys holding [start, end], one run each."""
    months = sorted({d.replace(day=1) for d in (start + dt.timedelta(days=i) for i in range((end - start).days + 1))})
    return [(m.isoformat(), m.isoformat()) for m in months]


TRANSIENT = ("No available agent", "try again later")
"""What Ray's job API says when a submission should simply be made again."""


def _transient(exc: Exception) -> bool:
    return any(phrase in str(exc) for phrase in TRANSIENT)


def launch(instance: DagsterInstance, repo: ReconstructableRepository, job_name: str, first: str, last: str,
           tags: dict[str, str], *, deadline: float) -> str:
    """One partition-range run of `job_name`, started by the instance's launcher; returns its run id.

    The launcher submits a Ray job over the head's HTTP API, which can drop a connection or miss its version
    check on a busy head, or find its job agent not registered yet: the run is then marked failed and a new one
    launched, with backoff 2-30 s, until the fan-out's deadline, instead of failing the fan-out. A fixed budget
    was not enough: a head beside the whole test suite and two CPU busy-loops stayed unreachable through 30 s
    of retries, then through 2 minutes. Any other error fails at once."""
    recon_job = repo.get_reconstructable_job(job_name)
    attempt = 0
    while True:
        run = instance.create_run_for_job(
            job_def=recon_job.get_definition(),
            job_code_origin=recon_job.get_python_origin(),
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last, **tags},
        )
        try:
            # What DefaultRunCoordinator does; submit_run would want a workspace's remote origin, which
            # RayRunLauncher never reads.
            instance.launch_run(run.run_id, workspace=None)  # type: ignore[arg-type]
            return run.run_id
        except (requests.exceptions.ConnectionError, ConnectionError, RuntimeError) as exc:
            # requests' own error, Ray's SDK giving up on the head's version check ("Failed to connect to Ray at
            # address"), or the head answering 500 "No available agent to submit job, please try again later"
            # (its node's job agent not registered yet): all seen on a head slowed by CPU busy-loops beside it.
            if isinstance(exc, RuntimeError) and not _transient(exc):
                raise
            current = instance.get_run_by_id(run.run_id)
            if current is not None and current.status not in DONE:
                instance.report_run_failed(current)
            attempt, pause = attempt + 1, min(2 ** (attempt + 1), 30)
            if time.monotonic() + pause > deadline:
                raise ConnectionError(f"launching {job_name} {first}..{last}: the Ray head was still unreachable "
                                      f"after {attempt} attempt(s), at the fan-out's deadline: {exc}") from exc
            print(f"launching {job_name} {first}..{last} failed ({exc}); retrying in {pause} s", file=sys.stderr,
                  flush=True)
            time.sleep(pause)


def run_wave(instance: DagsterInstance, repo: ReconstructableRepository, job_name: str,
             chunks: list[tuple[str, str]], *, max_runs: int, deadline: float, out: Launched) -> None:
    """Every chunk as a run of `job_name`, never more than `max_runs` in flight; returns when all are done."""
    pending, running = list(chunks), set()
    while pending or running:
        while pending and len(running) < max_runs:
            first, last = pending.pop(0)
            run_id = launch(instance, repo, job_name, first, last, {"tributary/trigger": "ray_fanout"},
                            deadline=deadline)
            out.ray_jobs[run_id] = f"dagster-run-{run_id}"
            running.add(run_id)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(running)} run(s) of {job_name} still not done at the deadline: "
                               + ", ".join(sorted(running)))
        for run_id in list(running):
            run = instance.get_run_by_id(run_id)
            if run is not None and run.status in DONE:
                running.discard(run_id)
                if run.status != DagsterRunStatus.SUCCESS:
                    out.failed.append(f"{run_id} ({job_name} {run.tags.get('dagster/asset_partition_range_start')})"
                                      f": {run.status.value}")
        time.sleep(0.5)


def fan_out(start: dt.date, end: dt.date, *, days_per_run: int, max_runs: int, timeout: float) -> Launched:
    """The days of [start, end] then their months, as runs on the instance's launcher (Ray)."""
    instance = DagsterInstance.get()
    repo = ReconstructableRepository.for_module("pipelines.definitions", "defs", working_directory=str(ROOT))
    out, deadline = Launched(), time.monotonic() + timeout
    run_wave(instance, repo, "main_days", day_chunks(start, end, days_per_run), max_runs=max_runs,
             deadline=deadline, out=out)
    months = month_chunks(start, end)
    # The months read the days: no month run over a failed day. The first month runs alone: on a new lake it
    # creates the Delta tables, and delta-rs replays a second writer's racing first commit as an append (both
    # would land); once the tables exist, concurrent commits conflict and are retried (pipelines/core/delta.py).
    for wave, cap in ((months[:1], 1), (months[1:], max_runs)):
        if wave and not out.failed:
            run_wave(instance, repo, "main_months", wave, max_runs=cap, deadline=deadline, out=out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--to", dest="end", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--days-per-run", type=int, default=7)
    parser.add_argument("--max-runs", type=int, default=2, help="runs in flight at once (the concurrency cap)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds for the whole fan-out")
    args = parser.parse_args(argv)
    began = time.monotonic()
    try:
        out = fan_out(args.start, args.end, days_per_run=args.days_per_run, max_runs=args.max_runs,
                      timeout=args.timeout)
    except TimeoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for run_id, job in out.ray_jobs.items():
        print(f"run {run_id} = ray job {job}")
    print(f"{len(out.ray_jobs)} run(s) in {time.monotonic() - began:.1f}s")
    if out.failed:
        print("error: run(s) failed: " + "; ".join(out.failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
