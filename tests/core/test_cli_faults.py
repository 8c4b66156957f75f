"""What `tributary run` and `tributary seed` do with bad input and with each other: the real command in its own
process, against real files, a real Dagster instance and real Delta tables."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

TRIBUTARY = Path(sys.executable).with_name("tributary")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The test's own homes (as tests/conftest.py sets them) passed on to a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIBUTARY_", "DAGSTER_", "RUST_"))}
    env.update(TRIBUTARY_HOME=str(tmp_path / "home"), DAGSTER_HOME=os.environ["DAGSTER_HOME"])
    env.update(extra)
    return env


def _tributary(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TRIBUTARY), *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def garbage_file(tmp_path: Path) -> Path:
    path = tmp_path / "g.db"
    path.write_bytes(os.urandom(5000))
    return path


@pytest.mark.parametrize("command", ["run", "seed"])
def test_a_file_that_is_not_a_database_is_one_line(command: str, garbage_file: Path, tmp_path: Path) -> None:
    if command == "run":
        args = ["run", "--from", "2013-03-01", "--to", "2013-03-01"]
        env = _env(tmp_path, TRIBUTARY_SOURCE_DSN=str(garbage_file))
    else:
        args, env = ["seed", "--dsn", str(garbage_file)], _env(tmp_path)
    result = _tributary(*args, env=env)
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: source file {garbage_file} is not a SQLite database")
    assert "tributary seed" in line
    assert garbage_file.stat().st_size == 5000  # seed left the stray file as it was


def _run_args(day: str, select: str = "key:raw/flights") -> list[str]:
    return ["run", "--from", day, "--to", day, "--select", select]


def _last_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert lines, result.stdout[-2000:]
    return lines[-1]


def test_a_delta_error_under_rust_backtrace_is_summarised_by_its_cause(seeded_sqlite: str, tmp_path: Path) -> None:
    """With RUST_BACKTRACE=1 a delta-rs error ends in a backtrace; the summary names the error, not clone3.S."""
    log = tmp_path / "home" / "lake" / "standardized" / "airlines" / "_delta_log"
    log.mkdir(parents=True)
    (log / f"{0:020d}.json").write_text('{"garbage')
    env = _env(tmp_path, TRIBUTARY_SOURCE_DSN=seeded_sqlite, RUST_BACKTRACE="1")
    result = _tributary(*_run_args("2013-03-01", "key:raw/airlines or key:standardized/airlines"), env=env)
    assert result.returncode == 1
    assert re.search(r"^ +\d+: ", result.stderr, re.M)  # the backtrace was there, in the step's log
    assert re.fullmatch(r"error: run [0-9a-f-]{36} \(main_months\) failed: step standardized__airlines: DeltaError: Kernel error: "
                        r"Json error: [^:]+", _last_error(result))


def test_a_commit_conflict_is_summarised_by_its_cause_not_its_help(tmp_path: Path) -> None:
    """A real delta-rs commit conflict inside a real step: the summary is the conflict, not the "Help:" line."""
    from dagster import asset, materialize
    from deltalake import DeltaTable, write_deltalake

    from pipelines.core.errors import run_failure_reason

    uri = str(tmp_path / "table")

    @asset
    def conflicting() -> None:
        write_deltalake(uri, pa.table({"day": ["a", "b"], "v": [1, 2]}), partition_by=["day"])
        stale = DeltaTable(uri)
        write_deltalake(uri, pa.table({"day": ["a"], "v": [9]}), mode="overwrite", predicate="day = 'a'",
                        partition_by=["day"])
        stale.delete("day = 'a'")  # committed over a snapshot another writer has changed since

    result = materialize([conflicting], raise_on_error=False)
    assert not result.success
    assert run_failure_reason(result) == (
        "step conflicting: CommitFailedError: Failed to commit transaction: Commit failed: "
        "a concurrent transactions added new data."
    )


def _wait_for(condition, what: str, *, within: float = 90, while_running: subprocess.Popen | None = None):
    """Poll `condition` until it returns something true; fail after `within` seconds or if the process ends."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if while_running is not None and while_running.poll() is not None:
            pytest.fail(f"the run ended before {what}: {while_running.stderr.read()[-3000:]}")
        time.sleep(0.1)
    pytest.fail(f"no {what} within {within:.0f}s")


def _runs(status: str) -> list:
    from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

    with DagsterInstance.get() as instance:
        return list(instance.get_runs(RunsFilter(job_name="main_days", statuses=[DagsterRunStatus[status]])))


@pytest.fixture
def blocked_run(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str, dict[str, str], Callable]]:
    """`tributary run` of one day, started for real and held inside its extract step by a lock on the source
    table (PostgreSQL makes its query wait). Yields the process, its run id, its environment and `release`."""
    from pipelines.synthetic.seed import seed
    from pipelines.extract.sourcedb import create_engine

    engine = create_engine(pg_dsn)
    seed(engine, tables=["flights"], progress=lambda _: None)
    holder = engine.connect()
    lock = holder.begin()
    holder.execute(sa.text("LOCK TABLE flights IN ACCESS EXCLUSIVE MODE"))
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            lock.rollback()
            holder.close()
            released = True

    env = _env(tmp_path, TRIBUTARY_SOURCE_DSN=pg_dsn)
    process = subprocess.Popen([str(TRIBUTARY), *_run_args("2013-03-01")], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with engine.connect() as conn:
            waiting = sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'flights'::regclass")
            _wait_for(lambda: conn.execute(waiting).scalar_one(), "query waiting on the locked source table",
                      while_running=process)
        (run,) = _runs("STARTED")
        yield process, run.run_id, env, release
    finally:
        release()
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=60)
        engine.dispose()


def test_a_second_run_over_the_same_days_fails_at_once(blocked_run, tmp_path: Path) -> None:
    first, run_id, env, release = blocked_run
    second = _tributary(*_run_args("2013-03-01"), env=env, timeout=60)  # returns while the first still waits
    assert first.poll() is None
    assert second.returncode == 1
    line = _last_error(second)
    assert line.startswith(f"error: run {run_id} (pid {first.pid}) is already running the main job over 2013-03-01 "
                           "to 2013-03-01, which overlaps 2013-03-01 to 2013-03-01, on the lake ")
    assert "would conflict" in line and "Traceback" not in second.stderr
    release()
    out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err[-3000:]
    assert f"run {run_id} (main_days, " in out and "main job done in" in out


def test_a_run_killed_outright_is_marked_failed_by_the_next_run(blocked_run, tmp_path: Path) -> None:
    """kill -9 leaves the run STARTED (nothing ran its end); the next run sees its process gone and fails it."""
    first, run_id, env, release = blocked_run
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert [r.run_id for r in _runs("STARTED")] == [run_id]
    release()
    after = _tributary(*_run_args("2013-03-01"), env=env)
    assert after.returncode == 0, after.stderr[-3000:]
    assert f"run {run_id} was left in progress by process {first.pid} on " in after.stdout
    assert _runs("STARTED") == []
    (failed,) = _runs("FAILURE")
    assert failed.run_id == run_id
    assert not list((tmp_path / "home" / "locks").rglob("*.json"))  # the killed run's note went with it


def test_an_overlapping_run_in_progress_elsewhere_is_refused_by_its_id(seeded_sqlite: str, tmp_path: Path) -> None:
    """A run that shares the instance but not this machine's lock files (another host, or the UI) still counts."""
    from dagster import DagsterInstance
    from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus
    from dagster._core.utils import make_new_run_id

    other = make_new_run_id()
    tags = {"dagster/asset_partition_range_start": "2013-02-20", "dagster/asset_partition_range_end": "2013-03-05",
            "tributary/process": "another-host 4242 1.000"}
    with DagsterInstance.get() as instance:
        instance.add_run(DagsterRun(job_name="main_days", run_id=other, status=DagsterRunStatus.STARTED, tags=tags))
    env = _env(tmp_path, TRIBUTARY_SOURCE_DSN=seeded_sqlite)
    refused = _tributary(*_run_args("2013-03-05"), env=env)
    assert refused.returncode == 1
    assert _last_error(refused).startswith(
        f"error: run {other} of the main job is in progress over 2013-02-20 to 2013-03-05, which overlaps 2013-03-05 "
        "to 2013-03-05, on the lake "
    )
    allowed = _tributary(*_run_args("2013-03-06"), env=env)
    assert allowed.returncode == 0, allowed.stderr[-3000:]


_CLAIMS = """
import sys
from dagster import DagsterInstance
from pipelines import cli

with DagsterInstance.get() as instance:
    for lake, start, end in zip(*[iter(sys.argv[1:])] * 3):
        try:
            with cli._claim_days(instance, lake, start, end, "child"):
                print("claimed")
        except cli.Failure as exc:
            print(exc.message)
"""


def _claims_in_another_process(tmp_path: Path, *claims: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", _CLAIMS, *claims], env=_env(tmp_path), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_days_are_claimed_per_lake_over_a_range_of_any_length(tmp_path: Path) -> None:
    """A century of days is one lock on one descriptor; another process can take the day after, or another lake."""
    from dagster import DagsterInstance

    from pipelines import cli

    lake = "s3://lake-claims"
    with DagsterInstance.get() as instance, cli._claim_days(instance, lake, "2013-01-01", "2112-12-31", "holder"):
        inside, after, elsewhere = _claims_in_another_process(
            tmp_path, lake, "2050-06-01", "2050-06-01", lake, "2113-01-01", "2113-01-31",
            "s3://another-lake", "2050-06-01", "2050-06-01",
        )
    assert inside == (f"run holder (pid {os.getpid()}) is already running the main job over 2013-01-01 to "
                      f"2112-12-31, which overlaps 2050-06-01 to 2050-06-01, on the lake {lake}: wait for it to "
                      "finish, or run other days (two runs writing the same days would conflict)")
    assert (after, elsewhere) == ("claimed", "claimed")
    assert _claims_in_another_process(tmp_path, lake, "2050-06-01", "2050-06-01") == ["claimed"]
    assert not list((tmp_path / "home" / "locks").rglob("*.json"))  # no note left behind


@pytest.mark.parametrize("args", [["run", "--bogus"], ["seed", "--scale", "0"], ["edge", "simulate", "--devices", "0"],
                                  ["query"]])
def test_a_usage_error_is_one_error_line_with_exit_2(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--help`)" in lines[0], done.stderr


@pytest.mark.e2e
def test_a_lake_on_the_old_day_layout_is_refused_then_migrated(seeded_sqlite: str, tmp_path: Path) -> None:
    """A lake from before month writes: the run names the command that fixes it; after it the run succeeds."""
    from deltalake import write_deltalake

    from pipelines.core import delta
    from pipelines.core.lake import Lake

    env = _env(tmp_path, TRIBUTARY_SOURCE_DSN=seeded_sqlite)
    args = _run_args("2013-03-01", "group:extract or group:standardize or group:warehouse")
    assert _tributary(*args, env=env, timeout=600).returncode == 0
    lake = Lake(str(tmp_path / "home" / "lake"))
    rows = delta.scan(lake, "warehouse/fact_flights").collect()
    # The old layout: the same rows, one folder per day.
    write_deltalake(lake.uri("warehouse/fact_flights"), rows.to_arrow(), mode="overwrite", schema_mode="overwrite",
                    partition_by=["flight_date"])
    refused = _tributary(*args, env=env, timeout=600)
    assert refused.returncode == 1
    assert _last_error(refused).endswith("warehouse/fact_flights is on the old day-partitioned layout (flight_date): "
                                         "run `tributary lake migrate` once, then run again")
    migrated = _tributary("lake", "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    assert "warehouse/fact_flights: rewritten unpartitioned as version " in migrated.stdout
    assert _tributary(*args, env=env, timeout=600).returncode == 0
    again = delta.scan(lake, "warehouse/fact_flights").collect()
    assert again.height == rows.height and again["flight_id"].is_unique().all()


@pytest.mark.e2e
def test_days_past_today_run_when_the_data_reaches_them(seeded_sqlite: str, tmp_path: Path) -> None:
    """A seed of many years (--scale 14 and up) reaches past today; Dagster stops time partitions at the current
    time, so `run` takes the partitions as of the data's end. The run checks its suites in polars only."""
    env = _env(tmp_path, TRIBUTARY_SOURCE_DSN=seeded_sqlite, TRIBUTARY_PARTITIONS_END="2040-01-01")
    ran = _tributary(*_run_args("2039-12-31", "group:extract or group:standardize or group:warehouse"), env=env,
                     timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "(main_days, 5 asset(s), 2039-12-31 to 2039-12-31) succeeded" in ran.stdout
    assert "(main_months, " in ran.stdout and "2039-12-01 to 2039-12-01) succeeded" in ran.stdout
    assert "gx_suite" not in ran.stderr  # the nightly job's checks stay out of the run
