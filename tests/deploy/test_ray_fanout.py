"""deploy/ray/fanout.py: a launch the Ray head's HTTP API drops is marked failed and launched again.

The real path (a Ray head, its job API, Dagster runs on it) is tests/deploy/test_ray.py; this one makes the
head's two ways of failing a submission happen on demand, which a live head does only under load."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from dagster import DagsterRunStatus

ROOT = Path(__file__).resolve().parents[2]


def _fanout():
    spec = importlib.util.spec_from_file_location("ray_fanout", ROOT / "deploy" / "ray" / "fanout.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ray_fanout"] = module
    spec.loader.exec_module(module)
    return module


class _Instance:
    def __init__(self, failures: list[BaseException]) -> None:
        self.failures, self.runs, self.failed = failures, {}, []

    def create_run_for_job(self, **_: object) -> SimpleNamespace:
        run = SimpleNamespace(run_id=f"run-{len(self.runs)}", status=DagsterRunStatus.STARTING)
        self.runs[run.run_id] = run
        return run

    def launch_run(self, run_id: str, workspace: object) -> None:
        if self.failures:
            raise self.failures.pop(0)

    def get_run_by_id(self, run_id: str) -> SimpleNamespace:
        return self.runs[run_id]

    def report_run_failed(self, run: SimpleNamespace) -> None:
        run.status = DagsterRunStatus.FAILURE
        self.failed.append(run.run_id)


_REPO = SimpleNamespace(get_reconstructable_job=lambda name: SimpleNamespace(
    get_definition=lambda: None, get_python_origin=lambda: None))


def test_a_dropped_connection_and_a_failed_version_check_are_launched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    fanout = _fanout()
    monkeypatch.setattr(fanout.time, "sleep", lambda _: None)
    instance = _Instance([requests.exceptions.ConnectionError("RemoteDisconnected"),
                          ConnectionError("Failed to connect to Ray at address: http://127.0.0.1:1.")])
    assert fanout.launch(instance, _REPO, "main_days", "2013-01-01", "2013-01-07", {}) == "run-2"
    assert instance.failed == ["run-0", "run-1"]  # the runs whose submission failed do not stay in flight


def test_a_head_that_never_answers_fails_after_the_last_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    fanout = _fanout()
    monkeypatch.setattr(fanout.time, "sleep", lambda _: None)
    instance = _Instance([ConnectionError("Failed to connect")] * fanout.LAUNCH_ATTEMPTS)
    with pytest.raises(ConnectionError):
        fanout.launch(instance, _REPO, "main_days", "2013-01-01", "2013-01-07", {})
    assert len(instance.failed) == fanout.LAUNCH_ATTEMPTS
