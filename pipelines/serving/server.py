"""Run the endpoint: uvicorn with N worker processes, uvloop and httptools (with the head deadline, head size cap
and connection cap of protocol.py).

Workers share the listening socket (the kernel spreads connections), the Prometheus folder (metrics summed
across workers), the sticky-assignment table and the spool folder. Each worker builds its settings in the app
factory it is given; the caller passes the environment that factory reads (set here before the workers spawn).
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from pipelines.serving.protocol import GuardedHttpToolsProtocol

WORKER_HEALTHCHECK_SECONDS = 30


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    config_path: str | None = None
    model_dir: str | None = None
    endpoint: str = "tributary-delay"
    spool_dir: str | None = None
    state_dir: str | None = None
    access_log: bool = False
    log_level: str = "info"


def prepare_metrics_dir(state_dir: str | None) -> str:
    """A fresh folder for prometheus_client's multiprocess files (stale files would be summed in)."""
    base = Path(state_dir) if state_dir else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    folder = base / f"prometheus-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return str(folder)


def serve(options: ServeOptions, *, factory: str, environment: dict[str, str], keepalive_seconds: float) -> None:
    """Block serving until interrupted (SIGINT/SIGTERM stop the workers gracefully).

    `factory` is the "module:function" uvicorn calls in each worker, `environment` what it reads there."""

    if not options.config_path and not options.model_dir:
        raise ValueError("give an endpoint config (--config) or a model folder (--model-dir)")
    os.environ.update(environment)
    metrics_dir = prepare_metrics_dir(options.state_dir)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    extra = {}
    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:  # uvicorn >= 0.35
        # The supervisor pings each worker over a pipe (answered by a thread of the worker, which needs the GIL
        # and a core) and kills one that is silent for this long, resetting every connection it holds. The
        # default 5 s is short on a busy machine; not seen to fire in our runs (the load test checks the log for
        # it), raised as insurance. A hung worker is still replaced, only later.
        extra["timeout_worker_healthcheck"] = WORKER_HEALTHCHECK_SECONDS

    try:
        uvicorn.run(
            factory, factory=True, host=options.host, port=options.port,
            workers=options.workers, loop="uvloop", http=GuardedHttpToolsProtocol, lifespan="on",
            timeout_keep_alive=keepalive_seconds,
            access_log=options.access_log, log_level=options.log_level, server_header=False, date_header=False,
            timeout_graceful_shutdown=10, backlog=4096, **extra,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
