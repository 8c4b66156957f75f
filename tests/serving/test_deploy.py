"""deploy/serving: the container files parse and hold the contract; `serve` runs from an /opt/ml/model layout."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest

from pipelines.serving.sagemaker import package
from tests.serving.conftest import ROOT, Models, Server, free_port, records, spec_features, wait_ready

DEPLOY = ROOT / "deploy" / "serving"


def test_dockerfile_honours_the_sagemaker_contract() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert "EXPOSE 8080" in lines
    assert any(line.startswith("ENTRYPOINT") and "serve" in line for line in lines)
    assert any(line.startswith("USER ") and "root" not in line for line in lines)
    assert "/opt/ml/model" in text
    serve = (DEPLOY / "serve").read_text()
    assert os.access(DEPLOY / "serve", os.X_OK)
    assert "8080" in serve and "/opt/ml/model" in serve


@pytest.mark.parametrize("name", sorted(p.name for p in DEPLOY.glob("*.json")))
def test_json_files_parse_and_policies_are_least_privilege(name: str) -> None:
    doc = json.loads((DEPLOY / name).read_text())
    if not name.startswith("iam-"):
        assert doc["ProductionVariants"]
        return
    assert doc["Version"] == "2012-10-17"
    for statement in doc["Statement"]:
        assert statement["Effect"] == "Allow" and "NotAction" not in statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a.split(":", 1)[1] for a in actions)
        if "Principal" in statement:
            assert statement["Principal"] == {"Service": "sagemaker.amazonaws.com"} and actions == ["sts:AssumeRole"]
            continue
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "*" in resources:  # only actions without resource-level permissions, and then under a condition
            assert set(actions) <= {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
            assert actions == ["ecr:GetAuthorizationToken"] or "Condition" in statement


def test_serve_script_answers_from_an_opt_ml_model_folder(serving_models: Models, tmp_path: Path) -> None:
    model = tmp_path / "opt" / "ml" / "model"
    model.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(package(serving_models.dirs[serving_models.champion])), mode="r:gz") as tar:
        tar.extractall(model, filter="data")  # as SageMaker unpacks model.tar.gz
    port = free_port()
    env = {**os.environ, "SM_MODEL_DIR": str(model), "SAGEMAKER_BIND_TO_PORT": str(port), "SERVE_HOST": "127.0.0.1",
           "SAGEMAKER_MODEL_SERVER_WORKERS": "1", "TRIBUTARY_HOME": str(tmp_path / "home"),
           "TRIBUTARY_PYTHON": str(ROOT / ".venv" / "bin" / "python")}
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen([str(DEPLOY / "serve"), "serve"], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    try:
        wait_ready(Server(f"http://127.0.0.1:{port}", model, model, model, process, tmp_path / "serve.log"), 240)
        features = spec_features(serving_models, serving_models.champion)
        response = httpx.post(f"http://127.0.0.1:{port}/invocations",
                              json={"instances": records(serving_models.rows.head(2), features)})
        assert response.status_code == 200, response.text
        assert response.headers["x-amzn-invoked-production-variant"] == "AllTraffic"
        assert len(response.json()["predictions"]) == 2
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def test_the_serving_path_imports_no_pandas_mlflow_or_dagster() -> None:
    import sys

    code = ("import sys, pipelines.serving.cli, pipelines.serving.server, pipelines.serving.app; "
            "print(sorted(m for m in ('pandas', 'mlflow', 'dagster') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
