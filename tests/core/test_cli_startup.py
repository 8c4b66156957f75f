"""The commands that only read the lake start without Dagster: `tributary query` loads polars and the lake,
never the definitions or the resources (issue 19.7: a query took 3.2 s for 0.6 s of polars)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipelines.core import delta
from pipelines.core.lake import Lake

PROBE = """
import sys
from pipelines.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    heavy = sorted(m for m in ("dagster", "mlflow", "torch", "sqlalchemy", "plotly") if m in sys.modules)
    print("loaded:", ",".join(heavy) or "-")
"""


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TRIBUTARY_HOME": str(tmp_path / "home")}
    return subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=120)


def test_query_loads_neither_dagster_nor_the_source_database_driver(tmp_path: Path) -> None:
    delta.overwrite(Lake(str(tmp_path / "home" / "lake")), "warehouse/fact_flights",
                    pl.DataFrame({"carrier": ["AA", "UA", "AA"]}))
    done = _run(tmp_path, "query", "SELECT carrier, count(*) AS n FROM fact_flights GROUP BY carrier ORDER BY carrier",
                "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["carrier,n", "AA,2", "UA,1", "loaded: -"]


def test_a_bad_query_is_still_one_error_line(tmp_path: Path) -> None:
    env = {**os.environ, "TRIBUTARY_HOME": str(tmp_path / "home")}
    done = subprocess.run([str(Path(sys.executable).parent / "tributary"), "query", "SELECT * FROM nowhere"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ")


def test_serve_status_reads_the_local_config_without_dagster(tmp_path: Path) -> None:
    from pipelines.serving.config import EndpointConfig, Variant, publish

    config = EndpointConfig(name="tributary-delay", variants=(Variant("champion", "3", 1.0, "/models/3"),))
    publish(tmp_path / "home" / "serving" / "endpoint.json", config)
    done = _run(tmp_path, "serve", "status")
    assert done.returncode == 0, done.stderr
    *shown, loaded = done.stdout.splitlines()
    assert not {"dagster", "mlflow", "torch"} & set(loaded.removeprefix("loaded: ").split(","))  # the error types
    assert json.loads("\n".join(shown))["variants"][0]["model_version"] == "3"


def test_serve_status_without_a_config_says_how_to_get_one(tmp_path: Path) -> None:
    env = {**os.environ, "TRIBUTARY_HOME": str(tmp_path / "home")}
    done = subprocess.run([str(Path(sys.executable).parent / "tributary"), "serve", "status"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"error: no endpoint config at {tmp_path / 'home' / 'serving' / 'endpoint.json'}: "
                                   "`tributary serve` builds it from the registry's aliases, or materialize "
                                   "serving/delay_endpoint")


def test_model_list_reads_the_sqlite_registry_without_dagster_or_mlflow(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 19.7: `tributary model list` took 6 s (Dagster's resources, MLflow's import and store); a SQLite
    registry is now read with SQL (its equality with MLflow's client: tests/ml/test_ml_registry.py)."""
    from pipelines.ml.tracking import MlflowSettings, QUIET_ENV, client

    home = tmp_path / "home"
    empty = _run(tmp_path, "model", "list")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.splitlines() == [f"no version of delay_model is registered at sqlite:///{home / 'mlflow.db'}",
                                         "loaded: -"]
    assert not (home / "mlflow.db").exists()  # listing creates no store

    for name, value in QUIET_ENV.items():
        monkeypatch.setenv(name, value)
    mlflow_client = client(MlflowSettings(tracking_uri=f"sqlite:///{home / 'mlflow.db'}"))
    mlflow_client.create_registered_model("delay_model")
    for _ in range(2):
        mlflow_client.create_model_version("delay_model", (tmp_path / "model").as_uri())
    mlflow_client.set_registered_model_alias("delay_model", "champion", "1")
    mlflow_client.set_model_version_tag("delay_model", "2", "holdout_roc_auc", "0.7146")
    done = _run(tmp_path, "model", "list")
    assert done.returncode == 0, done.stderr
    header, second, first, loaded = done.stdout.splitlines()
    assert header.split()[:2] == ["version", "aliases"]
    assert second.split()[:3] == ["2", "-", "0.7146"] and first.split()[:3] == ["1", "champion", "-"]
    assert loaded == "loaded: -"
