"""Serving fixtures: the registered versions unpacked once, and a real `tributary serve` on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest

from pipelines.serving.config import EndpointConfig, Shadow, Variant, prepare_models, publish, registry_fetch
from pipelines.ml.tracking import QUIET_ENV
from tests.conftest import RegisteredDelayModel, stop_process

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 240
"""Generous: a server importing torch and MLflow on a busy 2-core machine took over 60 s to listen."""


@pytest.fixture(autouse=True)
def _mlflow_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in QUIET_ENV.items():
        monkeypatch.setenv(name, value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Models:
    """The fixture's two versions as serving folders, with direct predictions to compare with."""

    registered: RegisteredDelayModel
    dirs: dict[str, Path]
    rows: pl.DataFrame
    """Holdout rows (with flight_id, flight_date and every feature), some with missing values."""

    @property
    def champion(self) -> str:
        return self.registered.champion

    @property
    def challenger(self) -> str:
        return self.registered.challenger

    def config(self, champion: float = 0.9, challenger: float = 0.1, *, shadow: float = 0.0,
               champion_version: str | None = None, extra: tuple[Variant, ...] = ()) -> EndpointConfig:
        cv = champion_version or self.champion
        variants = [Variant("champion", cv, champion, str(self.dirs[cv]))]
        other = self.challenger if cv == self.champion else self.champion
        shadow_cfg = None
        if shadow:
            shadow_cfg = Shadow("challenger-shadow", other, shadow, str(self.dirs[other]))
        else:
            variants.append(Variant("challenger", other, challenger, str(self.dirs[other])))
        return EndpointConfig(name="tributary-delay", variants=tuple(variants) + extra, shadow=shadow_cfg)


@pytest.fixture(scope="session")
def serving_models(registered_delay_model: RegisteredDelayModel, tmp_path_factory: pytest.TempPathFactory) -> Models:
    m = registered_delay_model
    root = tmp_path_factory.mktemp("serving_models")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in QUIET_ENV.items():
            patch.setenv(name, value)
        dirs = prepare_models([m.champion, m.challenger], root, registry_fetch(m.settings))
    rows = m.holdout.head(400)
    return Models(registered=m, dirs={k: Path(v) for k, v in dirs.items()}, rows=rows)


@pytest.fixture(scope="session")
def direct_predict(serving_models: Models):
    """The registered pyfunc of a version, loaded by MLflow: predictions to match exactly."""
    import mlflow

    cache = {}

    def predict(version: str, frame: pl.DataFrame) -> np.ndarray:
        if version not in cache:
            mlflow.set_tracking_uri(serving_models.registered.settings.tracking_uri)
            mlflow.set_registry_uri(serving_models.registered.settings.registry)
            cache[version] = mlflow.pyfunc.load_model(f"models:/delay_model/{version}")
        return np.asarray(cache[version].predict(frame.select(serving_models.registered.inputs).to_pandas()))

    return predict


@dataclass
class Server:
    url: str
    config_path: Path
    spool: Path
    state: Path
    process: subprocess.Popen
    log_path: Path

    def publish(self, config: EndpointConfig, *, wait: bool = True) -> EndpointConfig:
        published = publish(self.config_path, config)
        if wait:
            wait_generation(self.url, published.generation)
        return published

    def log(self) -> str:
        return self.log_path.read_text()[-3000:]


def wait_generation(url: str, generation: str, *, deadline_seconds: float = 20.0) -> None:
    """Until 12 answers in a row, each on a new connection (so from any worker), serve `generation`."""
    deadline = time.monotonic() + deadline_seconds
    streak = 0
    while streak < 12:
        if time.monotonic() > deadline:
            raise AssertionError(f"the service did not apply config {generation} within {deadline_seconds}s")
        status = httpx.get(f"{url}/status", headers={"Connection": "close"}, timeout=5).json()
        streak = streak + 1 if (status.get("config") or {}).get("generation") == generation else 0
        if streak == 0:
            time.sleep(0.05)


def start_server(tmp: Path, config: EndpointConfig | None, *, workers: int = 2, extra: list[str] = (),
                 env: dict[str, str] | None = None, ready: bool = True) -> Server:
    """`tributary serve` on a free port; returns once /ping answers 200, or with `ready=False` as soon as the port
    takes connections (the supervisor listens before its workers have started, let alone loaded a model)."""
    tmp.mkdir(parents=True, exist_ok=True)
    config_path, spool, state = tmp / "endpoint.json", tmp / "spool", tmp / "state"
    if config is not None:
        publish(config_path, config)
    port = free_port()
    log_path = tmp / "serve.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.serving.cli", "--port", str(port), "--workers", str(workers),
         "--config", str(config_path), "--spool", str(spool), "--state", str(state), *extra],
        cwd=ROOT, env={**os.environ, "TRIBUTARY_HOME": str(tmp / "home"), "TRIBUTARY_SERVE_SEGMENT_SECONDS": "1",
                       **(env or {})},
        stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    server = Server(url, config_path, spool, state, process, log_path)
    if ready:
        wait_ready(server)
    else:
        wait_listening(server)
    return server


def wait_listening(server: Server, deadline_seconds: float = STARTUP_SECONDS) -> None:
    host, port = server.url.removeprefix("http://").split(":")
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            return
        except OSError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise AssertionError(f"tributary serve did not listen: {server.log()}")
        time.sleep(0.05)


def wait_ready(server: Server, deadline_seconds: float = STARTUP_SECONDS) -> None:
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            if httpx.get(f"{server.url}/ping", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            raise AssertionError(f"tributary serve did not become ready: {server.log()}")
        time.sleep(0.1)


def stop_server(server: Server) -> None:
    stop_process(server.process, signal.SIGINT)


@pytest.fixture(scope="module")
def server(serving_models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One real `tributary serve` (two workers) for a test module, champion 0.9 / challenger 0.1."""
    running = start_server(tmp_path_factory.mktemp("serve"), serving_models.config())
    yield running
    stop_server(running)


@contextmanager
def cpu_hog(processes: int = 2) -> Iterator[list[int]]:
    """Busy loops in child processes (one per core of this machine) for the block; killed by PID at the end."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield [h.pid for h in hogs]
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


def records(frame: pl.DataFrame, features: list[str]) -> list[dict]:
    return frame.select(features).to_dicts()


def metric_values(text: str, name: str) -> dict[str, float]:
    """{VariantName: value} of one metric sample name in a Prometheus exposition."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1:].rsplit("} ", 1)
            variant = dict(part.split("=", 1) for part in labels.split(","))["VariantName"].strip('"')
            out[variant] = out.get(variant, 0.0) + float(value)
    return out


def spec_features(models: Models, version: str) -> list[str]:
    return json.loads((models.dirs[version] / "spec.json").read_text())["features"]


@dataclass(frozen=True)
class OnlineCase:
    """An online feature table built as of one holdout flight's prediction instant, and that flight."""

    table: pl.DataFrame
    row: dict
    """The flight's row of the offline feature table (ml/delay_features)."""
    key: dict
    """The flight as a caller sends it in `flights`."""


@pytest.fixture(scope="session")
def online_case(serving_models: Models, warehouse_tables: dict[str, pl.DataFrame]) -> OnlineCase:
    from pipelines.ml.data import FACT
    from pipelines.serving.online import build_online_features
    from pipelines.standardize import WEATHER
    from pipelines.warehouse import DIM_AIRPORT, DIM_DATE, DIM_PLANE

    row = serving_models.rows.filter(pl.col("origin_temp").is_not_null() & pl.col("plane_type").is_not_null()
                                     ).row(0, named=True)
    fact = warehouse_tables[FACT]
    flight = fact.filter(pl.col("flight_id") == row["flight_id"]).row(0, named=True)
    table = build_online_features(fact, weather=warehouse_tables[WEATHER], planes=warehouse_tables[DIM_PLANE],
                                  airports=warehouse_tables[DIM_AIRPORT], dates=warehouse_tables[DIM_DATE],
                                  as_of=row["predict_at"])
    key = {"carrier": flight["carrier"], "flight": flight["flight"], "origin": flight["origin"],
           "dest": flight["dest"], "sched_dep": flight["sched_dep_local"].isoformat(timespec="minutes"),
           "tailnum": flight["tailnum"]}
    return OnlineCase(table=table, row=row, key=key)


def publish_online(server: Server, table: pl.DataFrame, *, deadline_seconds: float = 30.0) -> str:
    """Put the online table beside the server's config and wait until 12 answers in a row (any worker) serve it;
    returns its as_of as /status shows it."""
    from pipelines.serving.online import ONLINE_FILE, publish as publish_table

    publish_table(table, server.config_path.with_name(ONLINE_FILE))
    as_of = table.filter(pl.col("part") == "meta")["as_of"].item().isoformat()
    deadline = time.monotonic() + deadline_seconds
    streak = 0
    while streak < 12:
        if time.monotonic() > deadline:
            raise AssertionError(f"the service did not load the online features as of {as_of}: {server.log()}")
        status = httpx.get(f"{server.url}/status", headers={"Connection": "close"}, timeout=5).json()
        streak = streak + 1 if (status.get("online_features") or {}).get("as_of") == as_of else 0
        if streak == 0:
            time.sleep(0.05)
    return as_of
