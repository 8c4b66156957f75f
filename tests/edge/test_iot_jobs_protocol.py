"""The IoT Jobs device protocol (issue 20.4): the agent against a recorded AWS exchange over the real Mosquitto
broker (throttled start-next, a VersionMismatch, a job canceled on the service), and the local service's
answers checked against the same documented shapes."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from pipelines.edge.agent import DeviceAgent, FileStorage
from pipelines.edge.jobs import Campaign, Rollout, RolloutConfig, answer_device, run_device
from pipelines.edge.server import BundleServer

EXCHANGE = json.loads((Path(__file__).parent / "data" / "iot_jobs_exchange.json").read_text())
PREFIX = f"$aws-test-{uuid.uuid4().hex[:8]}"
"""AWS's topics under a prefix of this module's own: the local jobs service of another test on the same broker
subscribes to `$aws/things/+/jobs/...` and would answer this device too (the full suite failed that way)."""


class RecordedService:
    """Plays the recorded AWS side on the broker for one thing and keeps every request the device sent."""

    def __init__(self, broker: tuple[str, int], thing: str, target: str, *, start_at: int = 0,
                 cancel_first_update: bool = False) -> None:
        self.thing, self.target = thing, target
        self.requests: list[tuple[str, dict]] = []
        self.answers: list[tuple[str, dict]] = []
        self._start, self._updates = start_at, 0
        self._cancel = cancel_first_update
        self.base = f"{PREFIX}/things/{thing}/jobs"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"aws-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_subscribe = lambda *a, **k: ready.set()
        self.client.connect(*broker)
        self.client.loop_start()
        self.client.subscribe([(f"{self.base}/start-next", 1), (f"{self.base}/+/update", 1)])
        assert ready.wait(10), "the broker did not confirm the recorded service's subscriptions"

    def _fill(self, doc):
        text = json.dumps(doc).replace("<thing>", self.thing).replace("<target>", self.target)
        return json.loads(text)

    def _on_message(self, client, userdata, msg) -> None:
        request = json.loads(msg.payload)
        kind = "start-next" if msg.topic.endswith("/start-next") else "update"
        self.requests.append((msg.topic.removeprefix(self.base + "/"), request))
        if kind == "start-next":
            step = EXCHANGE["start-next"][min(self._start, len(EXCHANGE["start-next"]) - 1)]
            self._start += 1
            answer, body = step["answer"], self._fill(step["body"])
        else:
            job_id = msg.topic.split("/")[-2]
            answer, body = self._update_answer(request)
            answer = f"{job_id}/{answer}"
        body["clientToken"] = request.get("clientToken")  # AWS echoes the request's token
        self.answers.append((answer, body))
        client.publish(f"{self.base}/{answer}", json.dumps(body).encode(), qos=1)

    def _update_answer(self, request: dict) -> tuple[str, dict]:
        if self._cancel:
            return EXCHANGE["canceled"]["answer"], self._fill(EXCHANGE["canceled"]["body"])
        step = EXCHANGE["update"][min(self._updates, len(EXCHANGE["update"]) - 1)]
        self._updates += 1
        if step.get("next_version"):
            version = int(request["expectedVersion"]) + 1
            return step["answer"], {"timestamp": int(time.time()), "executionState": {
                "status": request["status"], "statusDetails": request["statusDetails"], "versionNumber": version}}
        return step["answer"], self._fill(step["body"])

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _wait(condition, what: str, seconds: float = 300.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def device(repo, tmp_path):
    with BundleServer(repo.root) as server:
        agent = DeviceAgent(f"thing-{uuid.uuid4().hex[:8]}", FileStorage(tmp_path / "device"), server.url,
                            backoff=0.0)
        agent.provision(repo.repo.root_bytes())
        yield agent
        agent.close()


def _run(agent: DeviceAgent, broker, lines: list[str]) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=run_device, args=(agent,), daemon=True, kwargs=dict(
        host=broker[0], port=broker[1], prefix=PREFIX, stop=stop, retry_after=0.2, log=lines.append))
    thread.start()
    return thread, stop


def test_the_agent_follows_a_recorded_aws_exchange(repo, device: DeviceAgent, mosquitto) -> None:
    release = repo.releases["champion"]
    service = RecordedService(mosquitto, device.device_id, release.path)
    lines: list[str] = []
    thread, stop = _run(device, mosquitto, lines)
    try:
        _wait(lambda: any(r.get("status") == "SUCCEEDED" for _, r in service.requests) and
              service.answers[-1][0].endswith("update/accepted"), "the SUCCEEDED update to be accepted")
    finally:
        stop.set()
        thread.join(30)
        service.close()
    starts = [r for t, r in service.requests if t == "start-next"]
    assert len(starts) == 2 and all(r["clientToken"] for r in starts)  # asked again after RequestThrottled
    updates = [(r["status"], r.get("expectedVersion")) for t, r in service.requests if t.endswith("/update")]
    # The first update names the version start-next gave (2); rejected as stale, it is sent again at 3.
    assert updates[:2] == [("IN_PROGRESS", "2"), ("IN_PROGRESS", "3")]
    assert updates[-1][0] == "SUCCEEDED" and [v for _, v in updates[1:]] == ["3", "4", "5"]
    assert all(t == "release-7/update" for t, r in service.requests if t != "start-next")
    assert device.current["sha256"] == release.sha256


def test_a_job_canceled_on_the_service_is_dropped(repo, device: DeviceAgent, mosquitto) -> None:
    service = RecordedService(mosquitto, device.device_id, repo.releases["champion"].path, start_at=1,
                              cancel_first_update=True)
    lines: list[str] = []
    thread, stop = _run(device, mosquitto, lines)
    try:
        _wait(lambda: any("dropping it" in line for line in lines), "the agent to drop the canceled job")
        _wait(lambda: device.journal is None, "the local install to settle")  # reported to no one
    finally:
        stop.set()
        thread.join(30)
        service.close()
    updates = [r for t, r in service.requests if t.endswith("/update")]
    assert len(updates) == 1, updates  # after InvalidStateTransition (CANCELED) nothing more is sent
    assert any("InvalidStateTransition" in line and "CANCELED" in line for line in lines), lines


# -- the local service answers in the same shapes --------------------------------------------------------------


def _campaign() -> Campaign:
    rollout = Rollout("release-7", ["t1", "t2"], {"operation": "install", "target": "x.tar"},
                      RolloutConfig(base_rate_per_minute=None, cohorts=(1.0,), abort=()))
    rollout.due(0.0)
    return Campaign(rollout, None)


def _shape(doc) -> object:
    """A message's keys (nested), for comparing shapes rather than values."""
    if isinstance(doc, dict):
        return {k: _shape(v) for k, v in doc.items() if k not in ("statusDetails", "jobDocument")}
    return type(doc).__name__


def test_the_local_service_answers_in_the_recorded_shapes() -> None:
    campaign = _campaign()
    topic, body, recorded = answer_device(campaign, "t1", ["start-next"], b'{"clientToken": "a"}', 1.0)
    aws = EXCHANGE["start-next"][1]["body"]["execution"]
    assert topic == "start-next/accepted" and recorded == ("release-7", "IN_PROGRESS", {})
    assert set(body["execution"]) <= set(aws) and body["clientToken"] == "a"
    assert body["execution"]["status"] == "IN_PROGRESS" and body["execution"]["versionNumber"] == 2

    topic, body, _ = answer_device(campaign, "t1", ["release-7", "update"],
                                   b'{"status": "SUCCEEDED", "expectedVersion": "1", "clientToken": "b"}', 2.0)
    aws = EXCHANGE["update"][0]["body"]
    assert topic == "release-7/update/rejected" and body["code"] == "VersionMismatch"
    assert _shape({k: v for k, v in body.items() if k != "clientToken"}) == _shape(aws)

    topic, body, recorded = answer_device(campaign, "t1", ["release-7", "update"],
                                          b'{"status": "SUCCEEDED", "expectedVersion": "2"}', 3.0)
    assert topic == "release-7/update/accepted" and recorded[1] == "SUCCEEDED"
    assert _shape(body) == _shape(EXCHANGE["update"][1]["body"]) and body["executionState"]["versionNumber"] == 3

    topic, body, _ = answer_device(campaign, "t1", ["release-7", "update"], b'{"status": "FAILED"}', 4.0)
    assert topic == "release-7/update/rejected" and body["code"] == "InvalidStateTransition"
    assert body["executionState"]["status"] == "SUCCEEDED"

    campaign.rollout.abort(5.0, "drill")
    topic, body, _ = answer_device(campaign, "t2", ["release-7", "update"], b'{"status": "IN_PROGRESS"}', 6.0)
    assert _shape(body) == _shape(EXCHANGE["canceled"]["body"]) and body["executionState"]["status"] == "CANCELED"


@pytest.mark.parametrize("request_topic, payload, answer, code", [
    (["start-next"], b"{nope", "start-next/rejected", "InvalidJson"),
    (["other-job", "update"], b'{"status": "SUCCEEDED"}', "other-job/update/rejected", "ResourceNotFound"),
    (["release-7", "update"], b'{"status": "DONE"}', "release-7/update/rejected", "InvalidRequest"),
])
def test_the_local_service_refuses_like_aws(request_topic, payload, answer, code) -> None:
    topic, body, recorded = answer_device(_campaign(), "t1", request_topic, payload, 1.0)
    assert (topic, body["code"], recorded) == (answer, code, None)
    assert body["message"]


def test_nothing_pending_is_an_accepted_answer_without_execution() -> None:
    campaign = _campaign()
    campaign.rollout.abort(1.0, "drill")
    topic, body, _ = answer_device(campaign, "t1", ["start-next"], b"{}", 2.0)
    assert topic == "start-next/accepted" and "execution" not in body
