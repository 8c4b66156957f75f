"""The rollout control plane: IoT Jobs' rollout rules over job executions held in numpy arrays.

No Dagster. The one implementation of the rules, for every fleet size: the MQTT service and `tributary edge
simulate` drive it through `jobs.Rollout` / `jobs.Campaign` (thing names over these indices), the million-device
simulator (`pipelines/synthetic/megafleet.py`) directly. `RolloutConfig` holds exactly the fields of `CreateJob`
(`jobExecutionsRolloutConfig`, `abortConfig`, `timeoutConfig`), so the same JSON drives the local controller and
AWS; `cohorts` (1% canary, 10%, all) is ours: AWS expresses it with the exponential rate or one job per thing
group.

`FleetRollout` keeps a status code per thing in an int8 array, running counts per cohort and status (so a cohort
gate and an abort criterion are O(1), where an object per thing rescanned the fleet on every notification and
tick: O(N^2)), timeouts from a FIFO of start batches (O(started)), and notifications as slices of a fixed random
order. The rules: the rate (exponential increase on notified or succeeded things up to the maximum), cohorts and
their gate, the in-progress timeout, the abort criteria, and the rollback of the exposed things at the maximum
rate. Details (step, reason) are small label codes; free-form details are kept only for the things that send
them (the MQTT service's devices, the real agents of a mixed run).

`rows(...)` turns the changed executions into `edge/device_status` rows without a Python object per thing.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from pipelines.edge.status import SCHEMA


class RolloutConfigError(ValueError):
    """A rollout configuration AWS would refuse; the message names the field."""


def _check_abort_criterion(c: AbortCriterion) -> None:
    if c.failure_type not in ("FAILED", "REJECTED", "TIMED_OUT", "ALL") or c.action != "CANCEL":
        raise RolloutConfigError(f"abortConfig criterion {c} needs failureType FAILED|REJECTED|TIMED_OUT|ALL "
                                 "and action CANCEL")
    if c.min_executed < 1 or not 0 <= c.threshold_percentage <= 100:
        raise RolloutConfigError("abortConfig needs minNumberOfExecutedThings >= 1, thresholdPercentage 0..100")


@dataclass(frozen=True)
class AbortCriterion:
    failure_type: str = "FAILED"  # FAILED | REJECTED | TIMED_OUT | ALL
    min_executed: int = 10
    threshold_percentage: float = 20.0
    action: str = "CANCEL"


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


STATUSES = ("PENDING", "QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED")
CODE = {s: i for i, s in enumerate(STATUSES)}
PENDING, QUEUED, IN_PROGRESS, SUCCEEDED, FAILED, REJECTED, TIMED_OUT, CANCELED = range(len(STATUSES))
TERMINAL_CODES = np.array([s in ("SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT", "CANCELED") for s in STATUSES])
FAILURE_TYPES = {"FAILED": (FAILED,), "REJECTED": (REJECTED,), "TIMED_OUT": (TIMED_OUT,),
                 "ALL": (FAILED, REJECTED, TIMED_OUT)}


def spread_order(n: int, job_id: str) -> np.ndarray:
    """A fixed pseudo-random order of thing indices per job (the canary is a sample of the fleet, not its first
    names); seeded by the job id so a rerun orders the same way."""
    seed = int.from_bytes(job_id.encode()[:32].ljust(32, b"\0"), "little") % 2**63
    return np.random.default_rng(seed).permutation(n).astype(np.int32)


class FleetRollout:
    """One job over `n` things (indices 0..n-1 of the fleet's `things`); times are seconds."""

    def __init__(self, job_id: str, n: int, document: dict, config: RolloutConfig, *, members: np.ndarray | None = None,
                 start: float = 0.0, cohorts: bool = True, burst: float = 1.0, labels: tuple[str, ...] = ("",)) -> None:
        self.job_id, self.document, self.config, self.n = job_id, document, config, n
        # The things this job targets (a rollback targets the exposed things only); others stay NaN/-1.
        members = np.arange(n, dtype=np.int32) if members is None else np.asarray(members, dtype=np.int32)
        self.order = members[spread_order(len(members), job_id)]
        m = len(self.order)
        fractions = config.cohorts if cohorts else (1.0,)
        self.bounds = np.array([max(1, math.ceil(f * m)) for f in fractions], dtype=np.int64) if m else np.zeros(
            len(fractions), dtype=np.int64)
        self.cohort_count = len(self.bounds)
        self.status = np.full(n, -1, dtype=np.int8)
        self.status[members] = PENDING
        self.cohort = np.full(n, -1, dtype=np.int8)
        position_cohort = np.searchsorted(self.bounds, np.arange(m), side="right").astype(np.int8)
        self.cohort[self.order] = position_cohort
        self.notified_at = np.full(n, np.nan)
        self.started_at = np.full(n, np.nan)
        self.updated_at = np.full(n, np.nan)
        self.version = np.ones(n, dtype=np.int32)
        self.label = np.zeros(n, dtype=np.int16)
        """A code into `labels`: the step/reason a simulated thing last reported (free-form details in `details`)."""
        self.labels = list(labels)
        self.details: dict[int, dict] = {}
        self.dirty = np.zeros(n, dtype=bool)
        # counts[cohort, status]: the gate and the abort rule read these, never the arrays.
        self.counts_by_cohort = np.zeros((self.cohort_count, len(STATUSES)), dtype=np.int64)
        np.add.at(self.counts_by_cohort[:, PENDING], position_cohort, 1)
        self._started: deque[tuple[float, np.ndarray]] = deque()
        self.state = "IN_PROGRESS"
        self.started, self.finished, self.aborted_at = start, None, None
        self.abort_reason: str | None = None
        self.rate = float(config.base_rate_per_minute or config.maximum_per_minute)
        self._allowance, self._last, self._since_increase, self._next = burst, start, 0, 0

    # -- bookkeeping ------------------------------------------------------------------------------------

    def _move(self, idx: np.ndarray, new: int, now: float) -> None:
        """Set `idx` (unique) to status `new`, keeping the counts; version and dirty flags follow."""
        if len(idx) == 0:
            return
        old = self.status[idx]
        np.subtract.at(self.counts_by_cohort, (self.cohort[idx], old), 1)
        np.add.at(self.counts_by_cohort[:, new], self.cohort[idx], 1)
        self.status[idx] = new
        self.updated_at[idx] = now
        self.dirty[idx] = True

    def counts(self) -> dict[str, int]:
        total = self.counts_by_cohort.sum(axis=0)
        return {STATUSES[i]: int(c) for i, c in enumerate(total) if c}

    @property
    def members(self) -> int:
        return len(self.order)

    def terminal(self) -> int:
        return int(self.counts_by_cohort[:, TERMINAL_CODES].sum())

    # -- notifications ------------------------------------------------------------------------------------

    def _cohort_open(self, cohort: int) -> bool:
        if cohort == 0:
            return True
        earlier = self.counts_by_cohort[:cohort]
        done = int(earlier[:, TERMINAL_CODES].sum())
        return done >= self.config.cohort_gate * int(earlier.sum()) and not earlier[:, IN_PROGRESS].any()

    def due(self, now: float) -> np.ndarray:
        """Thing indices to notify now, within the rollout rate and the open cohorts."""
        if self.state != "IN_PROGRESS" or self._next >= len(self.order):
            self._last = now
            return np.empty(0, dtype=np.int32)
        self._allowance = min(max(self.rate, self._allowance, 1.0),
                              self._allowance + self.rate * (now - self._last) / 60.0)
        self._last = now
        take = int(self._allowance)
        first = self._next
        while take > 0 and self._next < len(self.order):
            cohort = int(np.searchsorted(self.bounds, self._next, side="right"))
            if not self._cohort_open(cohort):
                break
            k = min(take, int(self.bounds[cohort]) - self._next)
            self._next += k
            take -= k
        out = self.order[first:self._next]
        if len(out):
            self._allowance -= len(out)
            self.notified_at[out] = now
            self._move(out, QUEUED, now)
            if self.config.increase_on == "numberOfNotifiedThings":
                self._count_towards_increase(len(out))
        return out

    def _count_towards_increase(self, k: int) -> None:
        if self.config.base_rate_per_minute is None or k == 0:
            return
        self._since_increase += k
        while self._since_increase >= self.config.increase_after:
            self._since_increase -= self.config.increase_after
            self.rate = min(float(self.config.maximum_per_minute), self.rate * self.config.increment_factor)

    # -- updates --------------------------------------------------------------------------------------------

    def record(self, idx: np.ndarray, status: int, now: float, *, label: int = 0) -> np.ndarray:
        """Status updates from things `idx` (unique); the accepted ones (a finished or never-notified execution is
        refused, as IoT Jobs answers InvalidStateTransition / ResourceNotFound)."""
        idx = np.asarray(idx, dtype=np.int32)
        if len(idx) == 0:
            return idx
        current = self.status[idx]
        ok = idx[(current == QUEUED) | (current == IN_PROGRESS)]
        if status == IN_PROGRESS:
            fresh = ok[np.isnan(self.started_at[ok])]
            self.started_at[fresh] = now
            if len(fresh):
                self._started.append((now, fresh))
        self._move(ok, status, now)
        self.version[ok] += 1
        self.label[ok] = label
        if status == SUCCEEDED and self.config.increase_on == "numberOfSucceededThings":
            self._count_towards_increase(len(ok))
        return ok

    def label_code(self, text: str) -> int:
        if text not in self.labels:
            self.labels.append(text)
        return self.labels.index(text)

    def tick(self, now: float) -> None:
        """Time out executions IN_PROGRESS too long, apply the abort rule, notice completion."""
        if self.state != "IN_PROGRESS":
            return
        limit = self.config.in_progress_timeout_minutes * 60
        while self._started and now - self._started[0][0] > limit:
            _, idx = self._started.popleft()
            late = idx[self.status[idx] == IN_PROGRESS]
            self._move(late, TIMED_OUT, now)
        total = self.counts_by_cohort.sum(axis=0)
        executed = int(total[TERMINAL_CODES].sum())
        for criterion in self.config.abort:
            failed = int(sum(total[c] for c in FAILURE_TYPES[criterion.failure_type]))
            if executed >= criterion.min_executed and 100.0 * failed / executed >= criterion.threshold_percentage:
                self.abort(now, f"{failed} of {executed} executed things {criterion.failure_type} "
                                f"(>= {criterion.threshold_percentage:g}% after {criterion.min_executed})")
                return
        if self._next >= len(self.order) and executed == len(self.order):
            self.state, self.finished = "COMPLETED", now

    def abort(self, now: float, reason: str) -> None:
        """CANCEL: every execution not finished is canceled (one pass over the fleet, once)."""
        self.state, self.aborted_at, self.finished, self.abort_reason = "CANCELED", now, now, reason
        open_ = np.flatnonzero((self.status == PENDING) | (self.status == QUEUED) | (self.status == IN_PROGRESS))
        self._move(open_.astype(np.int32), CANCELED, now)

    def exposed(self) -> np.ndarray:
        """Things that were told about this job (and so may have taken its bundle)."""
        return np.flatnonzero(~np.isnan(self.notified_at)).astype(np.int32)

    def pending(self, idx: np.ndarray) -> np.ndarray:
        """Which of `idx` have this job notified and unfinished (what start-next hands out)."""
        s = self.status[idx]
        return (s == QUEUED) | (s == IN_PROGRESS)

    def finished_at_quantile(self, share: float) -> float | None:
        """When `share` of the job's things had finished it (seconds), over SUCCEEDED/FAILED/REJECTED."""
        s = self.status
        ends = np.sort(self.updated_at[(s == SUCCEEDED) | (s == FAILED) | (s == REJECTED)])
        need = int(share * len(self.order)) - 1
        return float(ends[need]) if 0 <= need < len(ends) else None

    # -- device_status rows -----------------------------------------------------------------------------

    def take_dirty(self) -> np.ndarray:
        idx = np.flatnonzero(self.dirty).astype(np.int32)
        self.dirty[idx] = False
        return idx


@dataclass
class FleetCampaign:
    """A release rollout and, if it aborts, the rollback job to every exposed thing."""

    rollout: FleetRollout
    rollback_document: dict | None
    rollback: FleetRollout | None = None

    def jobs(self) -> list[FleetRollout]:
        return [r for r in (self.rollout, self.rollback) if r is not None]

    def step(self, now: float) -> list[tuple[FleetRollout, np.ndarray]]:
        """Advance the clock: (job, thing indices) notifications to send now. The abort rule runs before anyone
        new is told; the rollback goes out at the maximum rate to every exposed thing, without cohorts or abort."""
        self.rollout.tick(now)
        out = [(self.rollout, self.rollout.due(now))]
        if self.rollout.state == "CANCELED" and self.rollback is None and self.rollback_document:
            c = self.rollout.config
            config = RolloutConfig(maximum_per_minute=c.maximum_per_minute, base_rate_per_minute=None, abort=(),
                                   in_progress_timeout_minutes=c.in_progress_timeout_minutes, cohorts=(1.0,))
            self.rollback = FleetRollout(f"{self.rollout.job_id}-rollback", self.rollout.n, self.rollback_document,
                                         config, members=self.rollout.exposed(), start=now, cohorts=False,
                                         burst=float(config.maximum_per_minute), labels=tuple(self.rollout.labels))
        if self.rollback is not None:
            self.rollback.tick(now)
            out.append((self.rollback, self.rollback.due(now)))
        return [(job, idx) for job, idx in out if len(idx)]

    def find(self, job_id: str) -> FleetRollout | None:
        return next((r for r in self.jobs() if r.job_id == job_id), None)

    @property
    def done(self) -> bool:
        if self.rollout.state == "COMPLETED":
            return True
        if self.rollout.state == "CANCELED":
            return self.rollback is None and not self.rollback_document or (
                self.rollback is not None and self.rollback.state != "IN_PROGRESS")
        return False


def rows(job: FleetRollout, things: pl.Series, idx: np.ndarray, *, at, version: np.ndarray | None = None,
         versions: tuple[str, ...] = ()) -> pl.DataFrame:
    """`edge/device_status` rows for things `idx` of `job`, built column by column (no dict per thing):
    the label code names the step or reason; `version` (codes into `versions`) the bundle each thing runs."""
    idx = np.asarray(idx, dtype=np.int64)
    labels = pl.Series("l", job.labels, dtype=pl.String)
    label = pl.Series("label", job.label[idx]).cast(pl.Int64)
    frame = pl.DataFrame({
        "device_id": things.gather(idx),
        "job_id": pl.repeat(job.job_id, len(idx), dtype=pl.String, eager=True),
        "status": pl.Series(STATUSES, dtype=pl.String).gather(pl.Series(job.status[idx]).cast(pl.Int64)),
        "version": (pl.Series(versions, dtype=pl.String).gather(pl.Series(version[idx]).cast(pl.Int64))
                    if version is not None else pl.repeat("", len(idx), dtype=pl.String, eager=True)),
        "step": labels.gather(label),
        "reason": labels.gather(label),
    })
    frame = frame.with_columns(
        step=pl.when(pl.col("status").is_in(["FAILED", "REJECTED"])).then(pl.lit("")).otherwise("step"),
        reason=pl.when(pl.col("status").is_in(["FAILED", "REJECTED"])).then("reason").otherwise(pl.lit("")),
        rollout_status=pl.lit(job.state), updated_at=pl.lit(at, dtype=pl.Datetime("us", "UTC")))
    if job.details:  # the real agents' own details, as they sent them (a few thousand at most)
        keys = np.fromiter(job.details, dtype=np.int64, count=len(job.details))
        hit = keys[np.isin(keys, idx)]
        if len(hit):
            patch = pl.DataFrame({
                "i": hit,
                "step_": [str(job.details[int(i)].get("step", "")) for i in hit],
                "reason_": [str(job.details[int(i)].get("reason", ""))[:500] for i in hit],
            }, schema={"i": pl.Int64, "step_": pl.String, "reason_": pl.String})
            frame = (frame.with_columns(i=pl.Series(idx)).join(patch, on="i", how="left", maintain_order="left")
                     .with_columns(step=pl.coalesce("step_", "step"), reason=pl.coalesce("reason_", "reason"))
                     .drop("i", "step_", "reason_"))
    return frame.select(list(SCHEMA)).cast(SCHEMA)
