"""Real agent processes over the real broker, killed with SIGKILL at each install step, then restarted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from pipelines.edge.agent import DeviceAgent, FileStorage, handle_safely
from pipelines.edge.jobs import Campaign, JobsService, Rollout, RolloutConfig
from pipelines.edge.server import BundleServer
from tests.edge.conftest import new_devices

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("mosquitto")]
ROOT = Path(__file__).resolve().parents[2]


def start_agent(device: str, state: Path, repo_url: str, root_json: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = open(state.parent / f"{device}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "pipelines.edge.cli", "agent", "--device-id", device,
                             "--state-dir", str(state), "--repo-url", repo_url, "--root-json", str(root_json), *extra],
                            cwd=ROOT, env=env, stdout=log, stderr=log)


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def one_device_campaign(thing: str, target: str, rollback: str | None = None, **config) -> Campaign:
    cfg = RolloutConfig(base_rate_per_minute=None, cohorts=(1.0,), **config)
    return Campaign(Rollout(f"job-{uuid.uuid4().hex[:8]}", [thing], {"operation": "install", "target": target}, cfg),
                    rollback_document={"operation": "rollback", "target": rollback} if rollback else None)


def serve(campaign: Campaign, timeout: float = 60) -> threading.Thread:
    service = JobsService(campaign, client_id=f"jobs-{uuid.uuid4().hex[:8]}")
    thread = threading.Thread(target=service.run, kwargs={"timeout": timeout}, daemon=True)
    thread.start()
    return thread


def new_device(repo, tmp_path: Path, prefix: str) -> tuple[str, Path, Path]:
    """A fresh device name, its state folder, and the root metadata it trusts."""
    (device,), root_json = new_devices(repo, tmp_path, prefix, 1)
    return device, tmp_path / device, root_json


def current_sha(state: Path) -> str:
    """The sha256 of the bundle a device runs."""
    return json.loads((state / "current.json").read_text())["sha256"]


def stop(proc: subprocess.Popen) -> None:
    proc.kill()
    proc.wait(10)


def factory_device(repo, server_url: str, state: Path, device: str) -> None:
    """The device as it leaves the factory: the champion installed."""
    agent = DeviceAgent(device, FileStorage(state), server_url)
    agent.provision(repo.repo.root_bytes())
    assert handle_safely(agent, "factory", {"target": repo.releases["champion"].path}).status == "SUCCEEDED"
    agent.close()


@pytest.mark.parametrize("step", ["download_half", "verified", "staged", "switched", "self_testing", "committed"])
def test_sigkill_at_each_install_step_then_restart_finishes_the_install(repo, tmp_path, step):
    device, state, root_json = new_device(repo, tmp_path, f"kill-{step}")
    challenger = repo.releases["challenger"]
    with BundleServer(repo.root) as server:
        factory_device(repo, server.url, state, device)
        campaign = one_device_campaign(device, challenger.path)
        service = serve(campaign)
        proc = start_agent(device, state, server.url, root_json, "--hold-at", step)
        try:
            wait_for(lambda: (state / f"held-{step}").exists(), 60, f"{device} to reach {step}")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            journal = json.loads((state / "journal.json").read_text())
            assert journal["step"] == ("downloading" if step == "download_half" else step)
            assert current_sha(state) in (repo.releases["champion"].sha256, challenger.sha256)  # old or new, whole
            proc = start_agent(device, state, server.url, root_json)
            execution = campaign.rollout.executions[device]
            wait_for(lambda: execution.status == "SUCCEEDED", 60, f"{device} to succeed after the restart")
        finally:
            stop(proc)
        service.join(10)
    assert current_sha(state) == challenger.sha256
    assert not (state / "journal.json").exists() and not (state / "download.part").exists()
    if step == "download_half":
        size = challenger.length
        assert 0 < size  # the resumed download is checked byte for byte in test_edge_agent


def test_sigkill_after_switching_to_a_bad_release_boots_and_rolls_back(repo, tmp_path):
    device, state, root_json = new_device(repo, tmp_path, "kill-bad")
    with BundleServer(repo.root) as server:
        factory_device(repo, server.url, state, device)
        campaign = one_device_campaign(device, repo.releases["bad"].path)
        service = serve(campaign)
        proc = start_agent(device, state, server.url, root_json, "--hold-at", "switched")
        try:
            wait_for(lambda: (state / "held-switched").exists(), 60, "the switch")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            assert current_sha(state) == repo.releases["bad"].sha256
            proc = start_agent(device, state, server.url, root_json)
            execution = campaign.rollout.executions[device]
            wait_for(lambda: execution.status == "FAILED", 60, "the rollback")
        finally:
            stop(proc)
        service.join(10)
    assert current_sha(state) == repo.releases["champion"].sha256


def test_a_device_offline_when_notified_gets_its_job_when_it_comes_back(repo, tmp_path):
    device, state, root_json = new_device(repo, tmp_path, "offline")
    challenger = repo.releases["challenger"]
    with BundleServer(repo.root) as server:
        factory_device(repo, server.url, state, device)
        campaign = one_device_campaign(device, challenger.path)
        service = serve(campaign)
        execution = campaign.rollout.executions[device]
        wait_for(lambda: execution.status == "QUEUED", 10, "the notification nobody hears")
        time.sleep(0.5)  # the notification has come and gone (clean session: the broker keeps nothing)
        proc = start_agent(device, state, server.url, root_json)
        try:
            wait_for(lambda: execution.status == "SUCCEEDED", 60, f"{device} to take the job on reconnect")
        finally:
            stop(proc)
        service.join(10)
    assert current_sha(state) == challenger.sha256
