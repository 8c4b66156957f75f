"""End to end through the CLI: PostgreSQL source, moto S3 lake (`localstack` profile), bad input."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import boto3
import polars as pl
import pytest
import sqlalchemy as sa

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def tributary(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "tributary"), *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _objects(env: dict, prefix: str) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    bucket = env["TRIBUTARY_LAKE_ROOT"].removeprefix("s3://")
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_postgres_to_s3_through_the_cli(pg_dsn: str, s3_env: dict, tmp_path: Path) -> None:
    env = {**s3_env, "TRIBUTARY_SOURCE_DSN": pg_dsn}
    seeded = tributary("seed", env=env, cwd=tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "flights: seeded 336,776 rows" in seeded.stdout

    ran = tributary("run", "--from", "2013-03-01", "--to", "2013-03-03", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "succeeded" in ran.stdout
    assert "3/3 days" in ran.stderr  # progress in the log

    keys = _objects(env, "raw/flightsdb/flights/")
    manifests = [k for k in keys if k.endswith("_manifest.json")]
    assert [k.split("/")[3] for k in manifests] == ["date=2013-03-01", "date=2013-03-02", "date=2013-03-03"]
    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    bucket = env["TRIBUTARY_LAKE_ROOT"].removeprefix("s3://")
    parquet = next(k for k in keys if "date=2013-03-02" in k and k.endswith(".parquet"))
    frame = pl.read_parquet(io.BytesIO(s3.get_object(Bucket=bucket, Key=parquet)["Body"].read()))
    with sa.create_engine(pg_dsn).connect() as conn:
        expected = conn.execute(sa.text("SELECT count(*) FROM flights WHERE month = 3 AND day = 2")).scalar_one()
    assert frame.height == expected
    assert len(_objects(env, "raw/flightsdb/airports/")) == 3  # parquet, its manifest, the table pointer

    dagster = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "pipelines.definitions",
         "--select", "raw/weather", "--partition", "2013-03-04"],
        env={**os.environ, **env}, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert dagster.returncode == 0, dagster.stderr[-2000:]
    assert any("date=2013-03-04" in k for k in _objects(env, "raw/flightsdb/weather/"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def seeded_home(tmp_path_factory: pytest.TempPathFactory, seeded_sqlite: str) -> Path:
    return Path(seeded_sqlite.removeprefix("sqlite:///"))


@pytest.mark.parametrize(
    ("case", "args", "env", "message"),
    [
        ("unreachable database", ["run"], {"TRIBUTARY_SOURCE_DSN": f"postgresql://postgres@127.0.0.1:{_closed_port()}/test"},
         "cannot connect to source database"),
        ("wrong DSN", ["seed", "--dsn", "oracle://x@y/z"], {}, "unsupported source database 'oracle'"),
        ("missing source table", ["run", "--select", "key:raw/planes"], {"TRIBUTARY_SOURCE_DSN": "EMPTY_DB"},
         "has no table planes"),
        ("unreachable S3", ["run"], {"TRIBUTARY_PROFILE": "localstack", "TRIBUTARY_SOURCE_DSN": "SEEDED",
                                      "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}"}, "cannot reach the lake"),
        ("partition outside the data", ["run", "--from", "2012-12-31"], {"TRIBUTARY_SOURCE_DSN": "SEEDED"},
         "partition 2012-12-31 is outside the data (2013-01-01 to 2013-12-31)"),
        ("unknown profile", ["run"], {"TRIBUTARY_PROFILE": "staging"}, "unknown TRIBUTARY_PROFILE 'staging'"),
    ],
)
def test_bad_input_is_one_clear_line_and_leaves_nothing(
    case: str, args: list, env: dict, message: str, tmp_path: Path, seeded_home: Path
) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    env = {k: str(empty) if v == "EMPTY_DB" else str(seeded_home) if v == "SEEDED" else v for k, v in env.items()}
    env.setdefault("AWS_ACCESS_KEY_ID", "test")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    result = tributary(*args, env={"TRIBUTARY_HOME": str(tmp_path / "home"), **env}, cwd=tmp_path)
    assert result.returncode != 0, case
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and message in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "home" / "lake" / "raw").exists()
