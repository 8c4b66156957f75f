"""IoT Jobs, here: the rollout configuration of AWS IoT Jobs, a controller that applies it, and the MQTT protocol.

No Dagster. `RolloutConfig` (defined in `plane`, re-exported here) holds exactly the fields of `CreateJob`
(`jobExecutionsRolloutConfig`, `abortConfig`, `timeoutConfig`), so the same JSON drives the local controller and
AWS; `cohorts` (1% canary, 10%, all) is ours: AWS expresses it with the exponential rate or one job per thing group.

`Rollout` and `Campaign` name the things of `plane.FleetRollout` / `plane.FleetCampaign`, the one implementation of
the rollout rules (columns and running counts, so a fleet of 10,000 costs no scan per notification): a pure state
machine over a clock you pass in (seconds), so the MQTT service runs it in real time and the simulator in
accelerated time. The MQTT topics and message shapes are those of AWS IoT Jobs'
device API (docs: "Jobs device MQTT API operations"); Mosquitto accepts `$aws/...` topic names, so the prefix
is `$aws` (configurable):

    $aws/things/<thing>/jobs/notify-next              service -> device: {"timestamp", "execution": {...}} (or
                                                      no execution once nothing is pending)
    $aws/things/<thing>/jobs/start-next               device -> service: {"clientToken", "statusDetails"?}
    $aws/things/<thing>/jobs/start-next/accepted      {"execution": {"jobId", "status": "IN_PROGRESS",
                                                      "jobDocument", "versionNumber", "executionNumber", ...}}
    $aws/things/<thing>/jobs/start-next/rejected      ErrorResponse {"code", "message", "clientToken"}
    $aws/things/<thing>/jobs/<jobId>/update           {"status", "statusDetails", "expectedVersion", "clientToken"}
    $aws/things/<thing>/jobs/<jobId>/update/accepted  {"executionState": {"status", "versionNumber", ...}}
    $aws/things/<thing>/jobs/<jobId>/update/rejected  ErrorResponse, with "executionState" on VersionMismatch
                                                      and InvalidStateTransition

`answer_device` is the service side (the local controller answers exactly as AWS does), `DeviceJobs` the
device side: a notify-next makes it call start-next, the accepted execution is the job it carries out, every
update names the version it last saw, a VersionMismatch re-reads the version and sends the update again, and
a job the service has ended (InvalidStateTransition, TerminalStateReached, ResourceNotFound) is dropped.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt

from pipelines.edge import plane
from pipelines.edge.plane import AbortCriterion as AbortCriterion
from pipelines.edge.plane import RolloutConfig as RolloutConfig
from pipelines.edge.plane import RolloutConfigError as RolloutConfigError
from pipelines.stream.transports import TransportError

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED", "REMOVED"})
DEFAULT_PREFIX = "$aws"


class Execution:
    """One thing's execution of a job, read live from the plane's arrays (a held one follows later updates)."""

    __slots__ = ("_job", "_i", "thing")

    def __init__(self, job: plane.FleetRollout, i: int, thing: str) -> None:
        self._job, self._i, self.thing = job, i, thing

    @property
    def status(self) -> str:
        return plane.STATUSES[self._job.status[self._i]]

    @property
    def cohort(self) -> int:
        return int(self._job.cohort[self._i])

    def _time(self, column: np.ndarray) -> float | None:
        value = float(column[self._i])
        return None if math.isnan(value) else value

    @property
    def notified_at(self) -> float | None:
        return self._time(self._job.notified_at)

    @property
    def started_at(self) -> float | None:
        return self._time(self._job.started_at)

    @property
    def updated_at(self) -> float | None:
        return self._time(self._job.updated_at)

    @property
    def details(self) -> dict:
        return self._job.details.get(self._i, {})

    @property
    def version(self) -> int:
        """IoT Jobs' versionNumber: raised by every accepted update (a device's `expectedVersion` must match)."""
        return int(self._job.version[self._i])


class Executions(Mapping[str, Execution]):
    """A job's executions by thing name (its members only: a rollback's are the exposed things)."""

    def __init__(self, job: plane.FleetRollout, names: list[str], index: dict[str, int]) -> None:
        self._job, self._names, self._index = job, names, index

    def __getitem__(self, thing: str) -> Execution:
        i = self._index.get(thing)
        if i is None or self._job.status[i] < 0:
            raise KeyError(thing)
        return Execution(self._job, i, thing)

    def __iter__(self) -> Iterator[str]:
        return (self._names[i] for i in np.flatnonzero(self._job.status >= 0))

    def __len__(self) -> int:
        return self._job.members


class Rollout:
    """One job over named things: `plane.FleetRollout`'s rules (whom to notify when, timeouts, the abort rule)
    with thing names for the MQTT service and the simulator. Times are seconds."""

    def __init__(self, job_id: str, things: Iterable[str], document: dict, config: RolloutConfig, *,
                 start: float = 0.0, cohorts: bool = True, burst: float = 1.0) -> None:
        names = list(dict.fromkeys(things))
        self._bind(plane.FleetRollout(job_id, len(names), document, config, start=start, cohorts=cohorts,
                                      burst=burst), names, {t: i for i, t in enumerate(names)})

    @classmethod
    def over(cls, job: plane.FleetRollout, names: list[str], index: dict[str, int]) -> Rollout:
        """A named view of a plane job over the same things (the campaign's rollback job)."""
        rollout = cls.__new__(cls)
        rollout._bind(job, names, index)
        return rollout

    def _bind(self, job: plane.FleetRollout, names: list[str], index: dict[str, int]) -> None:
        self.plane, self.names, self.index = job, names, index
        self.job_id, self.document, self.config = job.job_id, job.document, job.config
        self.executions = Executions(job, names, index)

    @property
    def status(self) -> str:
        """The job's status: IN_PROGRESS, COMPLETED or CANCELED."""
        return self.plane.state

    @property
    def finished(self) -> float | None:
        return self.plane.finished

    @property
    def aborted_at(self) -> float | None:
        return self.plane.aborted_at

    @property
    def abort_reason(self) -> str | None:
        return self.plane.abort_reason

    @property
    def rate(self) -> float:
        return self.plane.rate

    def _names(self, idx: np.ndarray) -> list[str]:
        return [self.names[i] for i in idx.tolist()]

    def due(self, now: float) -> list[str]:
        """Things to notify now, within the rollout rate and the open cohorts."""
        return self._names(self.plane.due(now))

    def pending_for(self, thing: str) -> bool:
        """Whether the thing has this job notified and unfinished (what start-next returns)."""
        i = self.index.get(thing)
        return i is not None and self.plane.status[i] in (plane.QUEUED, plane.IN_PROGRESS)

    def record(self, thing: str, status: str, details: dict | None, now: float) -> bool:
        """A device's status update; False (ignored) for an unknown thing or a finished execution."""
        i = self.index.get(thing)
        if i is None or status not in plane.CODE:
            return False
        if not len(self.plane.record(np.array([i], dtype=np.int32), plane.CODE[status], now)):
            return False
        if details:
            self.plane.details[i] = dict(details)
        else:
            self.plane.details.pop(i, None)
        return True

    def tick(self, now: float) -> None:
        """Time out executions IN_PROGRESS too long, apply the abort rule, notice completion."""
        self.plane.tick(now)

    def abort(self, now: float, reason: str) -> None:
        self.plane.abort(now, reason)

    def exposed(self) -> list[str]:
        """Things that were told about this job (and so may have taken its bundle)."""
        return self._names(self.plane.exposed())

    def counts(self) -> dict[str, int]:
        return self.plane.counts()

    def terminal(self) -> int:
        """How many executions have finished (any terminal status)."""
        return self.plane.terminal()


class Campaign:
    """A release rollout and, if it aborts, the rollback job that follows it to every exposed device
    (`plane.FleetCampaign` with thing names)."""

    def __init__(self, rollout: Rollout, rollback_document: dict | None) -> None:
        self.rollout = rollout
        self.fleet = plane.FleetCampaign(rollout.plane, rollback_document)
        self._rollback: Rollout | None = None

    @property
    def rollback_document(self) -> dict | None:
        return self.fleet.rollback_document

    @property
    def rollback(self) -> Rollout | None:
        if self._rollback is None and self.fleet.rollback is not None:
            self._rollback = Rollout.over(self.fleet.rollback, self.rollout.names, self.rollout.index)
        return self._rollback

    def jobs(self) -> list[Rollout]:
        return [r for r in (self.rollout, self.rollback) if r is not None]

    def step(self, now: float) -> list[tuple[Rollout, str]]:
        """Advance the clock: returns (job, thing) notifications to send now. The abort rule runs before anyone new
        is told; the rollback goes out at the maximum rate to every exposed device, without cohorts or abort."""
        out: list[tuple[Rollout, str]] = []
        for job, idx in self.fleet.step(now):
            named = self.rollout if job is self.rollout.plane else self.rollback
            out += [(named, t) for t in named._names(idx)]
        return out

    def find(self, job_id: str) -> Rollout | None:
        return next((r for r in self.jobs() if r.job_id == job_id), None)

    @property
    def done(self) -> bool:
        return self.fleet.done


# -- MQTT --------------------------------------------------------------------------------------------------


UPDATE_STATUSES = frozenset({"IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED"})
"""What a device may set in UpdateJobExecution."""
OVER_CODES = frozenset({"InvalidStateTransition", "TerminalStateReached", "ResourceNotFound"})
"""update/rejected codes meaning the execution is over on the service side (canceled, timed out, removed)."""
RETRY_CODES = frozenset({"RequestThrottled", "InternalError"})


def topics(prefix: str, thing: str) -> dict[str, str]:
    base = f"{prefix}/things/{thing}/jobs"
    return {"notify": f"{base}/notify-next", "start_next": f"{base}/start-next", "update": base + "/{job_id}/update",
            "start_next_replies": f"{base}/start-next/+", "update_replies": f"{base}/+/update/+"}


def _execution_doc(job: Rollout, execution: Execution, *, document: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"jobId": job.job_id, "thingName": execution.thing, "status": execution.status,
                           "statusDetails": dict(execution.details), "versionNumber": execution.version,
                           "executionNumber": 1}
    if document:
        doc["jobDocument"] = job.document
    return doc


def _state(execution: Execution) -> dict[str, Any]:
    return {"status": execution.status, "statusDetails": dict(execution.details), "versionNumber": execution.version}


def notify_payload(job: Rollout, thing: str) -> bytes:
    execution = job.executions[thing]
    return json.dumps({"timestamp": int(time.time()), "execution": {
        **_execution_doc(job, execution), "status": "QUEUED"}}).encode()


def _error(code: str, message: str, token: Any, execution: Execution | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"code": code, "message": message, "timestamp": int(time.time())}
    if token is not None:
        doc["clientToken"] = token
    if execution is not None:
        doc["executionState"] = _state(execution)
    return doc


def answer_device(campaign: Campaign, thing: str, request: list[str], payload: bytes,
                  now: float) -> tuple[str, dict[str, Any], tuple[str, str, dict] | None]:
    """AWS IoT Jobs' answer to one device request: (topic suffix after `jobs/`, body, and the recorded update
    (job, status, details) when an update was accepted). `request` is the topic after `jobs/`:
    `["start-next"]` or `[jobId, "update"]`."""
    base = "start-next" if request == ["start-next"] else f"{request[0]}/update"
    try:
        body = json.loads(payload or b"{}")
        if not isinstance(body, dict):
            raise ValueError("not an object")
    except ValueError:
        return f"{base}/rejected", _error("InvalidJson", "the request is not a JSON object", None), None
    token = body.get("clientToken")
    if base == "start-next":
        return _start_next(campaign, thing, body, token, now)
    return _update(campaign, thing, request[0], body, token, now)


def _start_next(campaign: Campaign, thing: str, body: dict, token: Any,
                now: float) -> tuple[str, dict[str, Any], tuple[str, str, dict] | None]:
    reply: dict[str, Any] = {"timestamp": int(time.time())}
    if token is not None:
        reply["clientToken"] = token
    for job in reversed(campaign.jobs()):
        if job.pending_for(thing):
            execution = job.executions[thing]
            recorded = None
            if execution.status == "QUEUED":  # StartNextPendingJobExecution moves it to IN_PROGRESS
                details = dict(body.get("statusDetails") or execution.details)
                job.record(thing, "IN_PROGRESS", details, now)
                recorded = (job.job_id, "IN_PROGRESS", details)
            reply["execution"] = _execution_doc(job, execution)
            return "start-next/accepted", reply, recorded
    return "start-next/accepted", reply, None  # nothing pending: no execution


def _update(campaign: Campaign, thing: str, job_id: str, body: dict, token: Any,
            now: float) -> tuple[str, dict[str, Any], tuple[str, str, dict] | None]:
    base = f"{job_id}/update"
    job = campaign.find(job_id)
    execution = job.executions.get(thing) if job is not None else None
    if execution is None or execution.status == "PENDING":
        return f"{base}/rejected", _error("ResourceNotFound", f"no execution of job {job_id} for {thing}", token), None
    status = body.get("status")
    details = body.get("statusDetails")
    if status not in UPDATE_STATUSES or (details is not None and not isinstance(details, dict)):
        return f"{base}/rejected", _error("InvalidRequest", f"status must be one of {sorted(UPDATE_STATUSES)} "
                                          "and statusDetails an object of strings", token), None
    expected = body.get("expectedVersion")
    if expected is not None and str(expected) != str(execution.version):
        return f"{base}/rejected", _error("VersionMismatch", f"expected version {expected}, the execution is at "
                                          f"{execution.version}", token, execution), None
    if execution.status in TERMINAL:
        return f"{base}/rejected", _error("InvalidStateTransition", f"the execution is {execution.status}", token,
                                          execution), None
    details = dict(execution.details if details is None else details)
    job.record(thing, status, details, now)
    reply: dict[str, Any] = {"executionState": _state(execution), "timestamp": int(time.time())}
    if token is not None:
        reply["clientToken"] = token
    if body.get("includeJobDocument"):
        reply["jobDocument"] = job.document
    return f"{base}/accepted", reply, (job_id, status, details)


def _client(client_id: str):
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)


def _connect(client, host: str, port: int) -> None:
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise TransportError(f"cannot reach the MQTT broker at {host}:{port}: {exc.strerror or exc}") from None


class JobsService:
    """The IoT Jobs side over MQTT: drives a Campaign in real time and records every status update."""

    def __init__(self, campaign: Campaign, *, host: str = "127.0.0.1", port: int = 1883,
                 prefix: str = DEFAULT_PREFIX, on_update: Callable[[str, str, str, dict, float], None] | None = None,
                 client_id: str | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.campaign, self.host, self.port, self.prefix = campaign, host, port, prefix
        self.on_update = on_update or (lambda *a: None)
        self.client_id = client_id or f"tributary-jobs-{campaign.rollout.job_id}"
        self.clock = clock
        self.lock = threading.Lock()
        self.updates = 0
        self._client = None

    def _on_connect(self, client, userdata, flags, reason, properties=None) -> None:
        if not reason.is_failure:
            client.subscribe(f"{self.prefix}/things/+/jobs/+/update", qos=1)
            client.subscribe(f"{self.prefix}/things/+/jobs/start-next", qos=1)

    def _on_message(self, client, userdata, msg) -> None:
        parts = msg.topic.split("/")
        # <prefix...>/things/<thing>/jobs/<jobId>/update  |  <prefix...>/things/<thing>/jobs/start-next
        i = parts.index("things")
        thing, request = parts[i + 1], parts[i + 3:]
        with self.lock:
            now = self.clock()
            suffix, reply, recorded = answer_device(self.campaign, thing, request, msg.payload, now)
            if recorded is not None:
                self.updates += 1
                self.on_update(recorded[0], thing, recorded[1], recorded[2], now)
        client.publish(f"{self.prefix}/things/{thing}/jobs/{suffix}", json.dumps(reply).encode(), qos=1)

    def run(self, *, timeout: float, poll: float = 0.05, stop: threading.Event | None = None,
            progress: Callable[[Campaign], None] | None = None) -> Campaign:
        """Notify, time out, abort and roll back until the campaign is done (or `timeout` seconds pass)."""
        client = _client(self.client_id)
        client.on_connect, client.on_message = self._on_connect, self._on_message
        _connect(client, self.host, self.port)
        client.loop_start()
        deadline = time.monotonic() + timeout
        try:
            time.sleep(0.2)  # let the subscriptions land before the first notification
            while time.monotonic() < deadline and not (stop and stop.is_set()):
                with self.lock:
                    now = self.clock()
                    for job, thing in self.campaign.step(now):
                        client.publish(topics(self.prefix, thing)["notify"], notify_payload(job, thing), qos=1)
                    done = self.campaign.done
                if progress:
                    progress(self.campaign)
                if done:
                    break
                time.sleep(poll)
        finally:
            client.disconnect()
            client.loop_stop()
        return self.campaign


class DeviceJobs:
    """A device's side of the IoT Jobs MQTT API over a connected paho client (see the module docstring).

    Callbacks arrive on the MQTT thread; `report` runs on the agent's thread and waits for the service's answer
    to each update (a VersionMismatch is answered by sending it again at the version the service names)."""

    def __init__(self, client, prefix: str, thing: str, *, reply_seconds: float = 10.0, attempts: int = 4,
                 log: Callable[[str], None] = lambda line: None) -> None:
        self.client, self.thing, self.log = client, thing, log
        self.names = topics(prefix, thing)
        self.reply_seconds, self.attempts = reply_seconds, attempts
        self.jobs: queue.Queue = queue.Queue()
        self.versions: dict[str, int] = {}
        self.over: set[str] = set()
        """Jobs the service has ended (canceled, timed out, removed): not started, their updates not sent."""
        self._replies: dict[str, queue.Queue] = {}
        self._lock = threading.Lock()
        self.start_next_rejected: dict | None = None

    def subscriptions(self) -> list[str]:
        return [self.names["notify"], self.names["start_next_replies"], self.names["update_replies"]]

    def start_next(self) -> None:
        """StartNextPendingJobExecution: the service answers on start-next/accepted (or rejected)."""
        body = {"clientToken": uuid.uuid4().hex[:16], "statusDetails": {"step": "claimed"}}
        self.client.publish(self.names["start_next"], json.dumps(body).encode(), qos=1)

    def on_message(self, topic: str, payload: bytes) -> None:
        try:
            body = json.loads(payload)
        except ValueError:
            self.log(f"{self.thing}: unreadable jobs message on {topic}")
            return
        if not isinstance(body, dict):
            return
        if topic == self.names["notify"]:
            if body.get("execution"):
                self.start_next()  # a new next job: claim it (AWS sends it QUEUED)
        elif topic.endswith("/start-next/accepted"):
            execution = body.get("execution")
            if execution and execution.get("jobId") not in self.over:
                with self._lock:
                    self.versions[execution["jobId"]] = int(execution.get("versionNumber", 0))
                self.jobs.put(execution)
        elif topic.endswith("/start-next/rejected"):
            self.start_next_rejected = body
            self.log(f"{self.thing} start-next rejected: {body.get('code')}: {body.get('message')}")
        elif topic.endswith(("/update/accepted", "/update/rejected")):
            token = str(body.get("clientToken", ""))
            with self._lock:
                waiting = self._replies.get(token)
            if waiting is not None:
                waiting.put((topic.rsplit("/", 1)[1], body))

    def report(self, job_id: str, status: str, details: dict) -> None:
        """UpdateJobExecution with the version last seen; settled by the service's answer (see the class)."""
        if job_id in self.over:
            self.log(f"{self.thing} {job_id} {status} not sent: the job is over on the service")
            return
        for attempt in range(self.attempts):
            answer, body = self._send_update(job_id, status, details)
            if answer == "accepted":
                state = body.get("executionState") or {}
                with self._lock:
                    self.versions[job_id] = int(state.get("versionNumber", self.versions.get(job_id, 0) + 1))
                self.log(f"{self.thing} {job_id} {status} {details}")
                return
            if answer is None or not self._retry(job_id, body, attempt):
                return
        self.log(f"{self.thing} {job_id} {status}: still rejected after {self.attempts} attempts")

    def _send_update(self, job_id: str, status: str, details: dict) -> tuple[str | None, dict]:
        token = uuid.uuid4().hex[:16]
        box: queue.Queue = queue.Queue()
        body: dict[str, Any] = {"status": status, "statusDetails": {k: str(v) for k, v in details.items()},
                                "clientToken": token}
        with self._lock:
            self._replies[token] = box
            if job_id in self.versions:
                body["expectedVersion"] = str(self.versions[job_id])
        try:
            self.client.publish(self.names["update"].format(job_id=job_id), json.dumps(body).encode(), qos=1)
            try:
                return box.get(timeout=self.reply_seconds)
            except queue.Empty:
                self.log(f"{self.thing} {job_id} {status}: no answer in {self.reply_seconds:g} s (sent once, QoS 1)")
                return None, {}
        finally:
            with self._lock:
                self._replies.pop(token, None)

    def _retry(self, job_id: str, rejected: dict, attempt: int) -> bool:
        """Whether to send a rejected update again (after learning the version, or a backoff)."""
        code = rejected.get("code")
        state = rejected.get("executionState") or {}
        if code == "VersionMismatch" and str(state.get("status")) not in TERMINAL:
            with self._lock:
                self.versions[job_id] = int(state.get("versionNumber", 0))
            return True
        if code in RETRY_CODES:
            time.sleep(0.2 * 2**attempt)
            return True
        if code in OVER_CODES or code == "VersionMismatch":
            self.over.add(job_id)
            self.log(f"{self.thing} {job_id}: the service ended the job ({code}: {rejected.get('message')}; "
                     f"{state.get('status', 'gone')}); dropping it")
            return False
        self.log(f"{self.thing} {job_id} update rejected: {code}: {rejected.get('message')}")
        return False


def run_device(agent, *, host: str = "127.0.0.1", port: int = 1883, prefix: str = DEFAULT_PREFIX,
               stop: threading.Event | None = None, retry_after: float = 1.0,
               log: Callable[[str], None] = lambda line: None) -> None:
    """The agent's main loop on MQTT: finish an interrupted install, ask for the pending job, carry out jobs."""
    thing = agent.device_id
    connected = threading.Event()
    client = _client(f"device-{thing}")
    channel = DeviceJobs(client, prefix, thing, log=log)

    def on_connect(c, userdata, flags, reason, properties=None):
        if not reason.is_failure:
            c.subscribe([(t, 1) for t in channel.subscriptions()])
            connected.set()

    def on_subscribe(c, userdata, mid, reasons, properties=None):
        channel.start_next()

    def on_message(c, userdata, msg):
        channel.on_message(msg.topic, msg.payload)

    agent.report = channel.report
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    _connect(client, host, port)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeError(f"the MQTT broker at {host}:{port} did not accept {thing}")
        agent.recover()
        _work_jobs(agent, channel, stop=stop, retry_after=retry_after)
    finally:
        client.disconnect()
        client.loop_stop()


def _work_jobs(agent, channel: DeviceJobs, *, stop: threading.Event | None, retry_after: float) -> None:
    """Carry out the executions the service hands out, each job once; a transient failure is tried again, and a
    start-next the service refused (e.g. RequestThrottled) is asked again."""
    from pipelines.edge.agent import handle_safely  # noqa: PLC0415 - start-up: pulls in scikit-learn ~2.4 s

    done: set[str] = set()
    while not (stop and stop.is_set()):
        if channel.start_next_rejected is not None:
            channel.start_next_rejected = None
            time.sleep(retry_after)
            channel.start_next()
        try:
            execution = channel.jobs.get(timeout=0.2)
        except queue.Empty:
            continue
        job_id = execution["jobId"]
        if job_id in done or job_id in channel.over:
            continue
        outcome = handle_safely(agent, job_id, execution.get("jobDocument") or {})
        if outcome is None:
            channel.jobs.put(execution)  # transient: try again shortly, the job stays IN_PROGRESS
            time.sleep(retry_after)
        else:
            done.add(job_id)
