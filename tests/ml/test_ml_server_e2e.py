"""The server profile: an MLflow tracking server on loopback, PostgreSQL as its store, a moto S3 bucket for artifacts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from pipelines.ml import registry
from pipelines.ml.tracking import QUIET_ENV, MlflowSettings
from pipelines.ml.train import TuningConfig, train_and_register
from resources.ml import mlflow_resource
from tests.conftest import stop_process

pytestmark = pytest.mark.e2e

# MLflow 3 migrates its PostgreSQL store and starts its workers before /health answers: ~30-60 s on an idle
# machine, over 120 s beside two CPU busy-loops and the rest of the suite (it timed out once at 120).
STARTUP_SECONDS = 360


ROOT = Path(__file__).resolve().parents[2]


def readme_server_command(*, port: int, dsn: str, bucket: str) -> str:
    """The README's `mlflow server` lines for the localstack profile, with this test's port, store and bucket."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- mlflow-server -->", 1)[1].split("<!-- /mlflow-server -->", 1)[0]
    lines = block.strip().removeprefix("```bash").removesuffix("```").strip()
    command = lines.split("\nexport ", 1)[0]  # the server; the export is the client's side
    for literal, value in {"--port 5000": f"--port {port}", "postgresql://postgres@127.0.0.1:5432/test": dsn,
                           "s3://tributary-lake/mlflow": f"s3://{bucket}/mlflow"}.items():
        assert literal in command, f"the README's mlflow server command lost {literal!r}"
        command = command.replace(literal, value)
    return command.replace(".venv/bin/mlflow", str(Path(sys.executable).with_name("mlflow")))


def test_the_readme_sets_the_client_to_the_server_it_starts() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "export TRIBUTARY_MLFLOW_TRACKING_URI=http://127.0.0.1:5000\n<!-- /mlflow-server -->" in readme.replace(
        "```\n<!-- /mlflow-server -->", "<!-- /mlflow-server -->")
    assert "MLFLOW_S3_ENDPOINT_URL=$AWS_ENDPOINT_URL" in readme_server_command(port=1, dsn="d", bucket="b")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(pg_dsn: str, s3_endpoint: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`mlflow server` on a free loopback port; yields (its URL, the artifact bucket)."""
    import boto3

    bucket = f"mlflow-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                 region_name="us-east-1").create_bucket(Bucket=bucket)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "mlflow-server.log").open("w")
    server = subprocess.Popen(
        ["bash", "-c", f"{readme_server_command(port=port, dsn=pg_dsn, bucket=bucket)}\nwait"],
        env={**os.environ, **QUIET_ENV, "AWS_ENDPOINT_URL": s3_endpoint, "PATH": f"{ROOT}/.venv/bin:{os.environ['PATH']}"},
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start: {(tmp_path / 'mlflow-server.log').read_text()[-2000:]}")
            time.sleep(1)
        yield url, bucket
    finally:
        stop_process(server, signal.SIGTERM, group=True)
        log.close()


def test_training_and_promotion_through_a_tracking_server(
    mlflow_server: tuple[str, str], s3_endpoint: str, features: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    url, bucket = mlflow_server
    monkeypatch.setenv("TRIBUTARY_PROFILE", "localstack")
    monkeypatch.setenv("TRIBUTARY_MLFLOW_TRACKING_URI", url)
    settings: MlflowSettings = mlflow_resource("localstack").process_config_and_initialize().settings()
    assert settings.tracking_uri == url and settings.artifact_location is None  # the server's S3 destination

    result = train_and_register(features, settings, config=TuningConfig(
        n_trials=1, max_rounds=30, train_sample=20_000, nthread=1))
    assert result.model_version == "1"
    assert result.holdout["roc_auc"] > result.baseline_holdout["roc_auc"]
    assert registry.alias_version(settings, registry.CHALLENGER) == "1"
    registry.promote(settings, "1", reason="e2e")
    assert [v.aliases for v in registry.list_versions(settings)] == [("champion",)]

    s3 = boto3.client("s3", endpoint_url=s3_endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                      region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="mlflow/").get("Contents", [])]
    assert any(k.endswith("plots/calibration.png") for k in keys)
    assert any(k.endswith("MLmodel") for k in keys) and any(k.endswith("booster.ubj") for k in keys)

    import mlflow

    model = mlflow.pyfunc.load_model("models:/delay_model@champion")
    holdout = features.filter(pl.col("flight_date") >= pl.date(2013, 11, 1)).head(5)
    assert model.predict(holdout.select(model.metadata.get_input_schema().input_names()).to_pandas()).shape == (5,)
