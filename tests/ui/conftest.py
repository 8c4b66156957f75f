"""A real `dagster-webserver` on loopback over the project's code location, and its GraphQL API."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import stop_process

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 240
"""Loading the definitions takes seconds; beside CPU hogs, much longer."""


@dataclass(frozen=True)
class Webserver:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                              timeout=120)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_loaded(server: Webserver) -> None:
    """Until the code location has loaded (the webserver answers before it has)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    query = "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }"
    while True:
        try:
            entries = server.graphql(query)["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
        except (httpx.TransportError, httpx.HTTPStatusError):
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"dagster-webserver did not load the code location: {server.log()}")
        time.sleep(0.5)


@contextlib.contextmanager
def webserver(log_dir: Path, env: dict[str, str] | None = None) -> Iterator[Webserver]:
    """`dagster-webserver -w workspace.yaml` on a free loopback port, in the environment of the test (its
    DAGSTER_HOME and TRIBUTARY_HOME) plus `env`; stopped afterwards."""
    port = _free_port()
    log_path = log_dir / "webserver.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port),
             "-w", str(REPO / "workspace.yaml")],
            cwd=REPO, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Webserver(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_loaded(server)
        yield server
    finally:
        stop_process(process, group=True)
