"""`tributary serve` right after `make demo` (a champion in the registry, no endpoint config published yet)
builds the config from the registry's aliases itself, says so, and serves (issue 19.7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from pipelines.serving.config import load
from tests.conftest import RegisteredDelayModel
from tests.serving.conftest import ROOT, Server, free_port, stop_server, wait_ready


def test_serve_publishes_the_aliases_when_no_config_exists(registered_delay_model: RegisteredDelayModel,
                                                            tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    settings = registered_delay_model.settings
    env = {**os.environ, "TRIBUTARY_HOME": str(home), "TRIBUTARY_MLFLOW_TRACKING_URI": settings.tracking_uri,
           "TRIBUTARY_MLFLOW_REGISTRY_URI": settings.registry, "TRIBUTARY_MLFLOW_ARTIFACT_LOCATION": settings.artifact_location}
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "pipelines.serving.cli", "--port", str(port), "--workers",
                                    "1"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    config_path = home / "serving" / "endpoint.json"
    server = Server(f"http://127.0.0.1:{port}", config_path, home / "serving" / "spool", home / "serving" / "state",
                    process, log_path)
    try:
        wait_ready(server)
        said = server.log()
        assert "serving/delay_endpoint has not run): building it from the registry's aliases" in said
        champion, challenger = registered_delay_model.champion, registered_delay_model.challenger
        assert f"published: champion=v{champion}@0.9, challenger=v{challenger}@0.1" in said
        published = load(config_path)
        assert published is not None and [v.model_version for v in published.variants] == [champion, challenger]
        assert httpx.get(f"{server.url}/ping", timeout=10).status_code == 200
    finally:
        stop_server(server)
