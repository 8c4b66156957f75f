"""IoT Jobs, here: the rollout configuration of AWS IoT Jobs, a controller that applies it, and the MQTT protocol.

No Dagster. `RolloutConfig` holds exactly the fields of `CreateJob` (`jobExecutionsRolloutConfig`,
`abortConfig`, `timeoutConfig`), so the same JSON drives the local controller and AWS; `cohorts` (1% canary,
10%, all) is ours: AWS expresses it with the exponential rate or one job per thing group.

`Rollout` is a pure state machine over a clock you pass in (seconds), so the MQTT service runs it in real
time and the simulator in accelerated time. The MQTT topics and message shapes are those of AWS IoT Jobs'
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

import hashlib
import json
import math
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from pipelines.stream.transports import TransportError

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED", "REMOVED"})
FAILURES = frozenset({"FAILED", "REJECTED", "TIMED_OUT"})
DEFAULT_PREFIX = "$aws"


def _check_abort_criterion(c: AbortCriterion) -> None:
    if c.failure_type not in ("FAILED", "REJECTED", "TIMED_OUT", "ALL") or c.action != "CANCEL":
        raise RolloutConfigError(f"abortConfig criterion {c} needs failureType FAILED|REJECTED|TIMED_OUT|ALL "
                                 "and action CANCEL")
    if c.min_executed < 1 or not 0 <= c.threshold_percentage <= 100:
        raise RolloutConfigError("abortConfig needs minNumberOfExecutedThings >= 1, thresholdPercentage 0..100")


class RolloutConfigError(ValueError):
    """A rollout configuration AWS would refuse; the message names the field."""


@dataclass(frozen=True)
class AbortCriterion:
    failure_type: str = "FAILED"  # FAILED | REJECTED | TIMED_OUT | ALL
    min_executed: int = 10
    threshold_percentage: float = 20.0
    action: str = "CANCEL"

    def counts(self, status: str) -> bool:
        return status in FAILURES if self.failure_type == "ALL" else status == self.failure_type


@dataclass(frozen=True)
class RolloutConfig:
    """The CreateJob rollout, abort and timeout configuration, plus cohorts."""

    maximum_per_minute: int = 1000
    base_rate_per_minute: int | None = 10
    increment_factor: float = 2.0
    increase_after: int = 20
    increase_on: str = "numberOfSucceededThings"  # or numberOfNotifiedThings
    abort: tuple[AbortCriterion, ...] = (AbortCriterion("ALL", 5, 20.0),)
    in_progress_timeout_minutes: int = 10
    cohorts: tuple[float, ...] = (0.01, 0.10, 1.0)
    cohort_gate: float = 0.9
    """A cohort starts once this share of the cohorts before it has finished (offline devices do not block)."""

    def __post_init__(self) -> None:
        if not 1 <= self.maximum_per_minute <= 1000:
            raise RolloutConfigError("maximumPerMinute must be between 1 and 1000")
        if self.base_rate_per_minute is not None:
            self._check_exponential_rate()
        for c in self.abort:
            _check_abort_criterion(c)
        if not 1 <= self.in_progress_timeout_minutes <= 10080:
            raise RolloutConfigError("timeoutConfig.inProgressTimeoutInMinutes must be between 1 and 10080")
        if not self.cohorts or self.cohorts[-1] != 1.0 or list(self.cohorts) != sorted(self.cohorts):
            raise RolloutConfigError("cohorts must rise to 1.0 (e.g. [0.01, 0.1, 1.0])")

    def _check_exponential_rate(self) -> None:
        if not 1 <= self.base_rate_per_minute <= 1000:
            raise RolloutConfigError("exponentialRate.baseRatePerMinute must be between 1 and 1000")
        if not 1.1 <= self.increment_factor <= 5:
            raise RolloutConfigError("exponentialRate.incrementFactor must be between 1.1 and 5")
        if self.increase_on not in ("numberOfNotifiedThings", "numberOfSucceededThings"):
            raise RolloutConfigError("rateIncreaseCriteria needs numberOfNotifiedThings or numberOfSucceededThings")
        if self.increase_after < 1:
            raise RolloutConfigError(f"rateIncreaseCriteria.{self.increase_on} must be at least 1")

    def to_iot(self) -> dict[str, Any]:
        """The CreateJob fields, as boto3's `iot.create_job(**config.to_iot(), ...)` takes them."""
        rollout: dict[str, Any] = {"maximumPerMinute": self.maximum_per_minute}
        if self.base_rate_per_minute is not None:
            rollout["exponentialRate"] = {
                "baseRatePerMinute": self.base_rate_per_minute,
                "incrementFactor": self.increment_factor,
                "rateIncreaseCriteria": {self.increase_on: self.increase_after},
            }
        return {
            "jobExecutionsRolloutConfig": rollout,
            "abortConfig": {"criteriaList": [
                {"failureType": c.failure_type, "action": c.action, "thresholdPercentage": c.threshold_percentage,
                 "minNumberOfExecutedThings": c.min_executed} for c in self.abort]},
            "timeoutConfig": {"inProgressTimeoutInMinutes": self.in_progress_timeout_minutes},
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.to_iot(), "cohorts": list(self.cohorts), "cohortGate": self.cohort_gate}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RolloutConfig:
        """Parse the CreateJob shape (plus `cohorts`, `cohortGate`); unknown top-level keys are refused."""
        known = {"jobExecutionsRolloutConfig", "abortConfig", "timeoutConfig", "cohorts", "cohortGate"}
        unknown = set(doc) - known
        if unknown:
            raise RolloutConfigError(f"unknown rollout field(s): {', '.join(sorted(unknown))}")
        rollout = doc.get("jobExecutionsRolloutConfig", {})
        kwargs: dict[str, Any] = {"maximum_per_minute": int(rollout.get("maximumPerMinute", 1000))}
        exp = rollout.get("exponentialRate")
        if exp:
            criteria = exp.get("rateIncreaseCriteria", {})
            if len(criteria) != 1:
                raise RolloutConfigError("rateIncreaseCriteria needs exactly one of numberOfNotifiedThings, "
                                         "numberOfSucceededThings")
            (on, after), = criteria.items()
            kwargs.update(base_rate_per_minute=int(exp["baseRatePerMinute"]),
                          increment_factor=float(exp["incrementFactor"]), increase_on=on, increase_after=int(after))
        else:
            kwargs["base_rate_per_minute"] = None
        if "abortConfig" in doc:
            kwargs["abort"] = tuple(
                AbortCriterion(c["failureType"], int(c["minNumberOfExecutedThings"]), float(c["thresholdPercentage"]),
                               c.get("action", "CANCEL")) for c in doc["abortConfig"]["criteriaList"])
        if "timeoutConfig" in doc:
            kwargs["in_progress_timeout_minutes"] = int(doc["timeoutConfig"]["inProgressTimeoutInMinutes"])
        if "cohorts" in doc:
            kwargs["cohorts"] = tuple(float(c) for c in doc["cohorts"])
        if "cohortGate" in doc:
            kwargs["cohort_gate"] = float(doc["cohortGate"])
        return cls(**kwargs)


@dataclass
class Execution:
    thing: str
    cohort: int
    status: str = "PENDING"  # PENDING (not yet notified) -> QUEUED (notified) -> IN_PROGRESS -> terminal
    notified_at: float | None = None
    started_at: float | None = None
    updated_at: float | None = None
    details: dict = field(default_factory=dict)
    version: int = 1
    """IoT Jobs' versionNumber: raised by every accepted update (a device's `expectedVersion` must match)."""


def spread(things: Iterable[str], salt: str) -> list[str]:
    """A fixed pseudo-random order, so the canary is a sample of the fleet rather than its first names."""
    return sorted(things, key=lambda t: hashlib.sha256(f"{salt}:{t}".encode()).hexdigest())


class Rollout:
    """One job over a fleet: whom to notify when, timeouts, and the abort rule. Times are seconds."""

    def __init__(self, job_id: str, things: Iterable[str], document: dict, config: RolloutConfig, *,
                 start: float = 0.0, cohorts: bool = True, burst: float = 1.0) -> None:
        self.job_id, self.document, self.config = job_id, document, config
        order = spread(things, job_id)
        n = len(order)
        bounds = [max(1, math.ceil(f * n)) for f in (config.cohorts if cohorts else (1.0,))]
        self.executions: dict[str, Execution] = {}
        for i, thing in enumerate(order):
            cohort = next(k for k, b in enumerate(bounds) if i < b)
            self.executions[thing] = Execution(thing, cohort)
        self.order = order
        self.cohort_count = len(bounds)
        self.status = "IN_PROGRESS"
        self.started, self.finished, self.aborted_at = start, None, None
        self.abort_reason: str | None = None
        self.rate = float(config.base_rate_per_minute or config.maximum_per_minute)
        self._allowance, self._last, self._since_increase, self._next = burst, start, 0, 0

    # -- notifications ---------------------------------------------------------------------------------

    def _cohort_open(self, cohort: int) -> bool:
        if cohort == 0:
            return True
        earlier = [e for e in self.executions.values() if e.cohort < cohort]
        done = sum(e.status in TERMINAL for e in earlier)
        return done >= self.config.cohort_gate * len(earlier) and not any(
            e.status == "IN_PROGRESS" for e in earlier)

    def due(self, now: float) -> list[str]:
        """Things to notify now, within the rollout rate and the open cohorts."""
        if self.status != "IN_PROGRESS":
            return []
        self._allowance = min(max(self.rate, self._allowance, 1.0),
                              self._allowance + self.rate * (now - self._last) / 60.0)
        self._last = now
        out: list[str] = []
        while self._next < len(self.order) and self._allowance >= 1.0:
            execution = self.executions[self.order[self._next]]
            if not self._cohort_open(execution.cohort):
                break
            execution.status, execution.notified_at = "QUEUED", now
            self._allowance -= 1.0
            self._next += 1
            out.append(execution.thing)
            if self.config.increase_on == "numberOfNotifiedThings":
                self._count_towards_increase()
        return out

    def _count_towards_increase(self) -> None:
        if self.config.base_rate_per_minute is None:
            return
        self._since_increase += 1
        if self._since_increase >= self.config.increase_after:
            self._since_increase = 0
            self.rate = min(float(self.config.maximum_per_minute), self.rate * self.config.increment_factor)

    def pending_for(self, thing: str) -> bool:
        """Whether the thing has this job notified and unfinished (what start-next returns)."""
        execution = self.executions.get(thing)
        return bool(execution and execution.status in ("QUEUED", "IN_PROGRESS"))

    # -- updates -----------------------------------------------------------------------------------------

    def record(self, thing: str, status: str, details: dict | None, now: float) -> bool:
        """A device's status update; False (ignored) for an unknown thing or a finished execution."""
        execution = self.executions.get(thing)
        if execution is None or execution.status in TERMINAL or execution.status == "PENDING":
            return False
        if status == "IN_PROGRESS" and execution.started_at is None:
            execution.started_at = now
        execution.status, execution.updated_at = status, now
        execution.details = dict(details or {})
        execution.version += 1
        if status == "SUCCEEDED" and self.config.increase_on == "numberOfSucceededThings":
            self._count_towards_increase()
        return True

    def tick(self, now: float) -> None:
        """Time out executions IN_PROGRESS too long, apply the abort rule, notice completion."""
        if self.status != "IN_PROGRESS":
            return
        limit = self.config.in_progress_timeout_minutes * 60
        for e in self.executions.values():
            if e.status == "IN_PROGRESS" and e.started_at is not None and now - e.started_at > limit:
                e.status, e.updated_at = "TIMED_OUT", now
        executed = [e for e in self.executions.values() if e.status in TERMINAL]
        for criterion in self.config.abort:
            failed = sum(criterion.counts(e.status) for e in executed)
            if len(executed) >= criterion.min_executed and 100.0 * failed / len(executed) >= criterion.threshold_percentage:
                self.abort(now, f"{failed} of {len(executed)} executed things {criterion.failure_type} "
                                f"(>= {criterion.threshold_percentage:g}% after {criterion.min_executed})")
                return
        if self._next >= len(self.order) and all(e.status in TERMINAL for e in self.executions.values()):
            self.status, self.finished = "COMPLETED", now

    def abort(self, now: float, reason: str) -> None:
        self.status, self.aborted_at, self.finished, self.abort_reason = "CANCELED", now, now, reason
        for e in self.executions.values():
            if e.status in ("PENDING", "QUEUED", "IN_PROGRESS"):
                e.details = {**e.details, "canceled_from": e.status}
                e.status, e.updated_at = "CANCELED", now

    def exposed(self) -> list[str]:
        """Things that were told about this job (and so may have taken its bundle)."""
        return [e.thing for e in self.executions.values() if e.notified_at is not None]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.executions.values():
            out[e.status] = out.get(e.status, 0) + 1
        return out


@dataclass
class Campaign:
    """A release rollout and, if it aborts, the rollback job that follows it to every exposed device."""

    rollout: Rollout
    rollback_document: dict | None
    rollback: Rollout | None = None

    def jobs(self) -> list[Rollout]:
        return [r for r in (self.rollout, self.rollback) if r is not None]

    def step(self, now: float) -> list[tuple[Rollout, str]]:
        """Advance the clock: returns (job, thing) notifications to send now."""
        # The abort rule runs before anyone new is told: updates that arrived since the last step may already
        # have crossed the threshold (and finished the canary, which would otherwise open the next cohort).
        self.rollout.tick(now)
        out = [(self.rollout, t) for t in self.rollout.due(now)]
        if self.rollout.status == "CANCELED" and self.rollback is None and self.rollback_document:
            # Remediation goes out at the maximum rate to every exposed device, without cohorts or abort.
            config = RolloutConfig(maximum_per_minute=self.rollout.config.maximum_per_minute,
                                   base_rate_per_minute=None, abort=(),
                                   in_progress_timeout_minutes=self.rollout.config.in_progress_timeout_minutes,
                                   cohorts=(1.0,))
            self.rollback = Rollout(f"{self.rollout.job_id}-rollback", self.rollout.exposed(),
                                    self.rollback_document, config, start=now, cohorts=False,
                                    burst=float(config.maximum_per_minute))
        if self.rollback is not None:
            self.rollback.tick(now)
            out += [(self.rollback, t) for t in self.rollback.due(now)]
        return out

    def find(self, job_id: str) -> Rollout | None:
        return next((r for r in self.jobs() if r.job_id == job_id), None)

    @property
    def done(self) -> bool:
        if self.rollout.status == "COMPLETED":
            return True
        if self.rollout.status == "CANCELED":
            return self.rollback is None and not self.rollback_document or (
                self.rollback is not None and self.rollback.status != "IN_PROGRESS")
        return False


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
