"""deploy/ray/fanout.py: a launch the Ray head's HTTP API drops is marked failed and launched again.

The real path (a Ray head, its job API, Dagster runs on it) is tests/deploy/test_ray.py; this one makes the
head's two ways of failing a submission happen on demand, which a live head does only under load."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import requests
from dagster import DagsterRunStatus

from tests.deploy.ray_scripts import load


def _fanout():
    return load("fanout")


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


class _Clock:
    """time.monotonic and time.sleep of the fan-out, with no real wait."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _clocked(monkeypatch: pytest.MonkeyPatch):
    fanout, clock = _fanout(), _Clock()
    monkeypatch.setattr(fanout.time, "sleep", clock.sleep)
    monkeypatch.setattr(fanout.time, "monotonic", lambda: clock.now)
    return fanout, clock


def test_a_dropped_connection_and_a_failed_version_check_are_launched_again(monkeypatch: pytest.MonkeyPatch) -> None:
    fanout, _ = _clocked(monkeypatch)
    instance = _Instance([requests.exceptions.ConnectionError("RemoteDisconnected"),
                          ConnectionError("Failed to connect to Ray at address: http://127.0.0.1:1."),
                          RuntimeError("Request failed with status code 500: No available agent to submit job, "
                                       "please try again later..")])
    assert fanout.launch(instance, _REPO, "main_days", "2013-01-01", "2013-01-07", {}, deadline=600) == "run-3"
    assert instance.failed == ["run-0", "run-1", "run-2"]  # the runs whose submission failed do not stay in flight


def test_any_other_error_of_the_launcher_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fanout, clock = _clocked(monkeypatch)
    instance = _Instance([RuntimeError("Request failed with status code 400: bad entrypoint")])
    with pytest.raises(RuntimeError, match="bad entrypoint"):
        fanout.launch(instance, _REPO, "main_days", "2013-01-01", "2013-01-07", {}, deadline=600)
    assert clock.now == 0


def test_a_head_that_never_answers_is_retried_until_the_deadline_then_named(monkeypatch: pytest.MonkeyPatch) -> None:
    fanout, clock = _clocked(monkeypatch)
    instance = _Instance([ConnectionError("Failed to connect")] * 100)
    with pytest.raises(ConnectionError, match=r"main_days 2013-01-01\.\.2013-01-07: the Ray head was still "
                                              r"unreachable after 24 attempt"):
        fanout.launch(instance, _REPO, "main_days", "2013-01-01", "2013-01-07", {}, deadline=600)
    assert len(instance.failed) == 24  # pauses of 2, 4, 8, 16 s, then of 30 s: the 24th attempt is at 600 s
    assert clock.now <= 600
