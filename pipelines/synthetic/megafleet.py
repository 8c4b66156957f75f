"""A million devices: an event-driven, vectorized fleet against the columnar control plane, with real agents mixed in.

No Dagster. `fleet.simulate` runs the real `DeviceAgent` for every device (about 30 ms of wall time each); a
million of them would take hours. Here most devices are modelled: when the control plane (`plane.FleetCampaign`)
notifies a batch of things, their whole job is drawn at once with numpy (poll delay, download time at a drawn
link speed, verify/install/self-test time, the faults of `fleet.FAULTS` with their extra time and bytes, and a
permanent failure with probability `fail_rate` or always for a bad release), and their start-next / IN_PROGRESS
and terminal updates are scheduled as batches in one-second buckets of simulated time. A sample of `real_agents`
devices, spread over the same rollout order, are real agents (the `fleet.py` runner: TUF ngclient refresh and
an HTTP Range download from the bundle server on loopback, A/B slots, self-test, their own faults); their
updates go into the same control plane, and their measured bytes give the fleet's scaled byte figure.

Rates are AWS IoT Jobs': `jobExecutionsRolloutConfig.maximumPerMinute` is 1..1000 (API reference,
AwsJobExecutionsRolloutConfig / JobExecutionsRolloutConfig; the IoT Jobs limits page says jobs roll out and
cancel executions "at a rate of 1000 devices per minute"), so a million things take at least 1000 simulated
minutes to notify. The per-account TPS quotas of the device data-plane calls (StartNextPendingJobExecution,
UpdateJobExecution) were not in the reference text we could read; the figures report the peak device
requests per second the rollout causes so they can be set against an account's quotas.

Modelling assumptions (simulated devices only; all in `AgentModel`): cellular links with a median of
250 kB/s (lognormal, sigma 0.8); 0.5-5 s from notify-next to start-next; 2-10 s to verify, stage, switch and
self-test; a transient download fault retried after 30 s (a cut or truncated body resumes, a corrupted one is
downloaded again), a power loss costs a 60 s reboot, offline devices come back 5-30 minutes into the rollout.
A real agent's job takes no simulated time (its wall time is in the wall figure).
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import random
import shutil
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import polars as pl

from pipelines.edge import plane
from pipelines.edge import status as device_status
from pipelines.edge.agent import BlobStore
from pipelines.edge.jobs import RolloutConfig
from pipelines.edge.repository import Release
from pipelines.edge.server import BundleServer, FaultPlan
from pipelines.synthetic.fleet import FAULTS, SimDevice, _build_fleet, _job_runner, default_rollout

FAULT_CODE = {f: i + 1 for i, f in enumerate(FAULTS)}  # 0: no fault
RUNS_FACTORY, RUNS_TARGET = 0, 1
LABELS = ("", "claimed", "installed", "self_test_failed", "rolled_back", "real_agent")
CLAIMED, INSTALLED, SELF_TEST_FAILED, ROLLED_BACK = 1, 2, 3, 4


@dataclass(frozen=True)
class AgentModel:
    """How long a simulated device takes, in simulated seconds, and how fast its link is (see the module)."""

    poll_seconds: tuple[float, float] = (0.5, 5.0)
    link_median_bytes_per_second: float = 250_000.0
    link_sigma: float = 0.8
    install_seconds: tuple[float, float] = (2.0, 10.0)
    retry_seconds: float = 30.0
    reboot_seconds: float = 60.0
    offline_minutes: tuple[float, float] = (5.0, 30.0)


@dataclass
class MegaResult:
    figures: dict
    campaign: plane.FleetCampaign
    things: pl.Series
    running: np.ndarray
    real: list[SimDevice] = field(default_factory=list)


@dataclass
class _Fleet:
    """The devices as columns: fault code, when each is online, what it runs, bytes it fetched."""

    fault: np.ndarray
    online_at: np.ndarray
    running: np.ndarray
    bundle_bytes: np.ndarray
    metadata_bytes: np.ndarray


def thing_names(n: int) -> pl.Series:
    return pl.select(pl.format("dev-{}", pl.int_range(n, dtype=pl.Int64).cast(pl.String).str.zfill(7))
                     ).to_series().alias("device_id")


def simulate_million(
    repo_root: str | Path,
    *,
    root_json: bytes,
    factory: tuple[Release, bytes],
    target: Release,
    devices: int = 1_000_000,
    real_agents: int = 1000,
    faults: float = 0.1,
    fail_rate: float = 0.0,
    seed: int = 7,
    workers: int = 8,
    config: RolloutConfig | None = None,
    model: AgentModel = AgentModel(),
    lake=None,
    flush_minutes: float = 120.0,
    merge_batch_rows: int = 250_000,
    max_sim_seconds: float = 7 * 24 * 3600,
    progress: Callable[[str], None] = lambda line: None,
) -> MegaResult:
    """Roll `target` out to `devices` things on `factory`, `real_agents` of them real; MERGE the status into
    `edge/device_status` of `lake` every `flush_minutes` simulated minutes and at the end (when a lake is given)."""
    started = time.monotonic()
    sim = _Sim(devices, factory=factory, target=target, faults=faults, fail_rate=fail_rate, seed=seed,
               config=config or default_rollout(devices), model=model, metadata_each=_metadata_bytes(Path(repo_root)))
    work = Path(tempfile.mkdtemp(prefix="tributary-megafleet-"))
    fault_plan = FaultPlan()
    sim.add_real_agents(real_agents, work, fault_plan, root_json=root_json)
    flush_every = int(flush_minutes * 60)
    with BundleServer(repo_root, plan=fault_plan) as server, cf.ThreadPoolExecutor(workers) as pool, httpx.Client(
            timeout=httpx.Timeout(10.0, connect=5.0),
            limits=httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2)) as http:
        sim.run_job = _job_runner(server.url, http, sim.lock, sim.updates)
        sim.pool = pool
        while sim.now <= max_sim_seconds:
            sim.second()
            if int(sim.now) % 3600 == 0:
                progress(f"t={sim.now / 60:6.0f} sim min  {sim.campaign.rollout.counts()}  "
                         f"wall {time.monotonic() - started:.0f}s")
            if lake is not None and sim.now > 0 and int(sim.now) % flush_every == 0:
                sim.flush(lake, merge_batch_rows)
            if sim.campaign.done and not sim.buckets:
                break
            sim.now += 1.0
    if lake is not None:
        sim.flush(lake, merge_batch_rows)
    shutil.rmtree(work, ignore_errors=True)
    figures = sim.figures(time.monotonic() - started)
    return MegaResult(figures, sim.campaign, sim.things, sim.fleet.running, sim.real)


class _Sim:
    """The run's state: the control plane, the modelled fleet, the real sample, and the event buckets."""

    def __init__(self, devices: int, *, factory: tuple[Release, bytes], target: Release, faults: float,
                 fail_rate: float, seed: int, config: RolloutConfig, model: AgentModel, metadata_each: int) -> None:
        self.devices, self.factory, self.target, self.faults = devices, factory, target, faults
        self.fail_rate, self.seed, self.model, self.metadata_each = fail_rate, seed, model, metadata_each
        self.rng = np.random.default_rng(seed)
        self.things = thing_names(devices)
        self.fleet = _model_fleet(self.rng, devices, faults, model)
        self.campaign = plane.FleetCampaign(
            plane.FleetRollout(f"release-{target.release}", devices,
                               {"operation": "install", "target": target.path}, config, labels=LABELS),
            rollback_document={"operation": "rollback", "from": target.path, "target": factory[0].path})
        self.is_real = np.zeros(devices, dtype=bool)
        self.real: list[SimDevice] = []
        self.by_index: dict[int, SimDevice] = {}
        self.buckets: dict[int, list[tuple]] = defaultdict(list)
        self.api_calls: dict[int, int] = defaultdict(int)
        self.merged = {"rows": 0, "commits": 0, "seconds": 0.0}
        self.outcomes_real: dict[str, int] = defaultdict(int)
        self.exposed_at_abort: int | None = None
        self.updates: list[tuple[str, str, str, dict]] = []
        self.lock = threading.Lock()
        self.pool: cf.ThreadPoolExecutor | None = None
        self.run_job = None
        self.now = 0.0

    def add_real_agents(self, count: int, work: Path, fault_plan: FaultPlan, *, root_json: bytes) -> None:
        """The real sample, spread over the fleet (so over the rollout order: some in the canary, some in every
        wave), with `fleet.py`'s devices and faults (which replace the modelled ones)."""
        if count <= 0:
            return
        idx = np.sort(self.rng.choice(self.devices, size=min(count, self.devices), replace=False))
        self.real = _build_fleet(work, BlobStore(), fault_plan, random.Random(self.seed), root_json=root_json,
                                 factory=self.factory, target=self.target, devices=len(idx), faults=self.faults,
                                 ids=[self.things[int(i)] for i in idx])
        self.by_index = dict(zip(idx.tolist(), self.real, strict=True))
        self.is_real[idx] = True
        for i, dev in self.by_index.items():
            self.fleet.fault[i] = FAULT_CODE.get(dev.fault or "", 0)
            self.fleet.online_at[i] = dev.online_at

    def second(self) -> None:
        """One simulated second: notifications, then the events due."""
        now = self.now
        for job, idx in self.campaign.step(now):
            self._notify(job, idx)
        for event in self.buckets.pop(int(now), ()):
            if event[0] == "start":
                self._start(event[1], event[2])
            elif event[0] == "end":
                self._end(event[1], event[2], event[3])
            else:
                self._run_real(event[1], event[2])
        if self.campaign.rollout.state == "CANCELED" and self.exposed_at_abort is None:
            self.exposed_at_abort = len(self.campaign.rollout.exposed())

    def flush(self, lake, batch_rows: int) -> None:
        """MERGE the executions changed since the last flush into `edge/device_status` (batched commits)."""
        t0 = time.monotonic()
        at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=self.now)
        versions = (str(self.factory[0].model_version), str(self.target.model_version))
        for job in self.campaign.jobs():
            idx = job.take_dirty()
            if len(idx):
                frame = plane.rows(job, self.things, idx, at=at, version=self.fleet.running, versions=versions)
                device_status.write(lake, frame, batch_rows=batch_rows)
                self.merged["rows"] += frame.height
                self.merged["commits"] += -(-frame.height // batch_rows)
        self.merged["seconds"] += time.monotonic() - t0

    def _at(self, when: np.ndarray, event: tuple) -> None:
        """Schedule `event` (its index array last) for each thing at its time, grouped by second (a later one)."""
        *head, idx = event
        if len(idx) == 0:
            return
        seconds = np.maximum(np.ceil(when).astype(np.int64), int(self.now) + 1)
        order = np.argsort(seconds, kind="stable")
        seconds, idx = seconds[order], idx[order]
        cuts = np.flatnonzero(np.diff(seconds)) + 1
        for part_s, part_i in zip(np.split(seconds, cuts), np.split(idx, cuts), strict=True):
            self.buckets[int(part_s[0])].append((*head, part_i))

    def _notify(self, job: plane.FleetRollout, idx: np.ndarray) -> None:
        """notify-next to `idx`: each calls start-next after its poll delay, an offline one once it is back."""
        when = np.maximum(self.fleet.online_at[idx], self.now) + self.rng.uniform(*self.model.poll_seconds,
                                                                                   size=len(idx))
        real = self.is_real[idx]
        self._at(when[~real], ("start", job, idx[~real]))
        self._at(when[real], ("real", job, idx[real]))

    def _start(self, job: plane.FleetRollout, idx: np.ndarray) -> None:
        """start-next: the pending ones go IN_PROGRESS and their whole job is drawn (time, bytes, outcome)."""
        now, fleet, model, target, rng = self.now, self.fleet, self.model, self.target, self.rng
        self.api_calls[int(now)] += len(idx)
        ok = job.record(idx, plane.IN_PROGRESS, now, label=CLAIMED)  # a canceled job is no longer handed out
        k = len(ok)
        if k == 0:
            return
        fault = fleet.fault[ok]
        rollback = job.document.get("operation") == "rollback"
        took = np.zeros(k) if rollback else target.length / rng.lognormal(
            np.log(model.link_median_bytes_per_second), model.link_sigma, size=k)
        seconds = took + rng.uniform(*model.install_seconds, size=k)
        if not rollback:
            nbytes = np.full(k, target.length, dtype=np.int64)
            seconds[np.isin(fault, [FAULT_CODE["cut"], FAULT_CODE["truncate"], FAULT_CODE["corrupt"]])] += \
                model.retry_seconds
            corrupt = fault == FAULT_CODE["corrupt"]
            nbytes[corrupt] += target.length  # checked after the whole body: downloaded again
            seconds[corrupt] += took[corrupt]
            seconds[fault == FAULT_CODE["power"]] += model.reboot_seconds
            fleet.bundle_bytes[ok] += nbytes
        fleet.metadata_bytes[ok] += self.metadata_each
        failed = np.zeros(k, dtype=bool) if rollback else (
            np.ones(k, dtype=bool) if target.bad else rng.random(k) < self.fail_rate)
        self._at(now + seconds[~failed], ("end", job, plane.SUCCEEDED, ok[~failed]))
        self._at(now + seconds[failed], ("end", job, plane.FAILED, ok[failed]))
        self.api_calls[int(now)] += k  # the IN_PROGRESS update

    def _end(self, job: plane.FleetRollout, code: int, idx: np.ndarray) -> None:
        """The device finished: what it runs changes whatever the service says (a canceled or timed-out execution
        refuses the update, but the device installed); then its terminal update."""
        rollback = job.document.get("operation") == "rollback"
        if code == plane.SUCCEEDED:
            self.fleet.running[idx] = RUNS_FACTORY if rollback else RUNS_TARGET
        label = ROLLED_BACK if rollback else (INSTALLED if code == plane.SUCCEEDED else SELF_TEST_FAILED)
        job.record(idx, code, self.now, label=label)
        self.api_calls[int(self.now)] += len(idx)

    def _run_real(self, job: plane.FleetRollout, idx: np.ndarray) -> None:
        """Real agents claim and carry out their job now (the step waits for them); their updates go to the plane."""
        now = self.now
        pending = idx[job.pending(idx)]
        if len(pending) == 0:
            return
        self.api_calls[int(now)] += len(pending)
        job.record(pending, plane.IN_PROGRESS, now, label=job.label_code("claimed"))
        futures = {self.pool.submit(self.run_job, self.by_index[int(i)], job): int(i) for i in pending}
        retry = []
        for future in cf.as_completed(futures):
            i = futures[future]
            outcome = future.result()
            dev = self.by_index[i]
            if outcome is None:
                retry.append(i)
            else:
                self.outcomes_real[outcome.status] += 1
            pointer = dev.storage.read_doc("current") or {}
            self.fleet.running[i] = RUNS_TARGET if pointer.get("sha256") == self.target.sha256 else RUNS_FACTORY
            self.fleet.bundle_bytes[i], self.fleet.metadata_bytes[i] = dev.bytes, dev.metadata_bytes
        with self.lock:
            batch, self.updates[:] = list(self.updates), []
        index = {self.things[i]: i for i in pending.tolist()}
        for job_id, thing, state, details in batch:
            target_job = self.campaign.find(job_id)
            if target_job is None or thing not in index:
                continue
            one = np.array([index[thing]], dtype=np.int32)
            label = target_job.label_code(str(details.get("step") or details.get("reason") or "real_agent")[:60])
            if len(target_job.record(one, plane.CODE[state], now, label=label)):
                target_job.details[int(one[0])] = dict(details)
            self.api_calls[int(now)] += 1
        if retry:  # a transient failure: the agent asks again in 30 s, the job stays IN_PROGRESS
            self._at(np.full(len(retry), now + self.model.retry_seconds), ("real", job, np.array(retry, dtype=np.int32)))

    def figures(self, wall: float) -> dict:
        return _figures(self, wall)


def _model_fleet(rng: np.random.Generator, n: int, faults: float, model: AgentModel) -> _Fleet:
    """Each device's fault (a share `faults`, the kinds in turn as in `fleet.py`) and when it is online."""
    fault = np.zeros(n, dtype=np.int8)
    faulty = rng.choice(n, size=int(round(n * faults)), replace=False)
    fault[np.sort(faulty)] = (np.arange(len(faulty)) % len(FAULTS) + 1).astype(np.int8)
    online_at = np.zeros(n)
    off = fault == FAULT_CODE["offline"]
    online_at[off] = rng.uniform(*model.offline_minutes, size=int(off.sum())) * 60
    return _Fleet(fault, online_at, np.full(n, RUNS_FACTORY, dtype=np.int8), np.zeros(n, dtype=np.int64),
                  np.zeros(n, dtype=np.int64))


def _metadata_bytes(repo_root: Path) -> int:
    """What one refresh of a device one release behind fetches: timestamp, snapshot and targets (modelled)."""
    meta = repo_root / "metadata"

    def newest(kind: str) -> Path:
        return max(meta.glob(f"*.{kind}.json"), key=lambda p: int(p.name.split(".")[0]))

    return sum(p.stat().st_size for p in (meta / "timestamp.json", newest("snapshot"), newest("targets")))


def _figures(sim: _Sim, wall: float) -> dict:
    campaign, fleet, target, is_real, devices = sim.campaign, sim.fleet, sim.target, sim.is_real, sim.devices
    end, exposed_at_abort, merged = sim.now, sim.exposed_at_abort, sim.merged
    rollout = campaign.rollout
    took = (fleet.bundle_bytes > 0)
    real_took = took & is_real
    real_bundle = int(fleet.bundle_bytes[is_real].sum())
    real_meta = int(fleet.metadata_bytes[is_real].sum())
    per_device = (real_bundle + real_meta) / int(real_took.sum()) if real_took.any() else None
    calls = np.array(list(sim.api_calls.values())) if sim.api_calls else np.zeros(1)
    q99 = rollout.finished_at_quantile(0.99)
    figures = {
        "devices": devices,
        "real_agents": int(is_real.sum()),
        "simulated_devices": devices - int(is_real.sum()),
        "faulty_devices": int((fleet.fault > 0).sum()),
        "release": f"{target.path} (model v{target.model_version}{', bad release drill' if target.bad else ''})",
        "rollout_status": rollout.state,
        "release_job_states": dict(sorted(rollout.counts().items())),
        "converged_99pct_sim_minutes": round(q99 / 60, 1) if q99 is not None else None,
        "converged_all_sim_minutes": round(end / 60, 1),
        "wall_seconds": round(wall, 1),
        "devices_on_new_release": int((fleet.running == RUNS_TARGET).sum()),
        "peak_device_requests_per_second": int(calls.max()),
        "device_requests_total": int(calls.sum()),
        "bundle_bytes_simulated_devices_modelled": int(fleet.bundle_bytes[~is_real].sum()),
        "metadata_bytes_simulated_devices_modelled": int(fleet.metadata_bytes[~is_real].sum()),
        "metadata_bytes_per_refresh_modelled": sim.metadata_each,
        "real_agents_bundle_bytes_measured": real_bundle,
        "real_agents_metadata_bytes_measured": real_meta,
        "real_agents_outcomes": dict(sorted(sim.outcomes_real.items())),
        "real_agents_on_new_release": int(((fleet.running == RUNS_TARGET) & is_real).sum()),
        "bytes_per_device_measured_mean": round(per_device) if per_device else None,
        "fleet_bytes_scaled_from_real_agents": round(per_device * int(took.sum())) if per_device else None,
        "device_status_rows_merged": merged["rows"],
        "device_status_merge_commits": merged["commits"],
        "device_status_merge_wall_seconds": round(merged["seconds"], 1),
    }
    if rollout.state == "CANCELED":
        rb = campaign.rollback
        figures.update({
            "abort_reason": rollout.abort_reason,
            "aborted_at_sim_minutes": round((rollout.aborted_at or 0) / 60, 2),
            "exposed_before_abort": exposed_at_abort,
            "rollback_job_states": dict(sorted(rb.counts().items())) if rb else {},
            "devices_left_on_bad_release": int((fleet.running == RUNS_TARGET).sum()) if target.bad else None,
        })
    return figures
