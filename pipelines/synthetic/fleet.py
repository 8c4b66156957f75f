"""The fleet simulator: thousands of agents (the same DeviceAgent code) against the bundle server on loopback.

No Dagster. Devices keep their state in `MemoryStorage` (TUF metadata in a temporary folder each), the
rollout controller (`jobs.Campaign`) runs in accelerated time, and the jobs channel between them is
in-process: one MQTT connection per simulated device would exceed what one broker process and two cores
give, and the protocol is exercised with real agent processes over Mosquitto in the tests. Downloads,
TUF refreshes and faults are real: every byte goes over HTTP on loopback through the fault-injecting server.

Time: each tick is one simulated second; the controller's rates, timeouts and offline periods are counted
in simulated time, and a tick waits for the installs it started, so the figures do not depend on the
machine's speed (the wall time is reported beside them).

Faults (each hits one device once): a connection cut mid-download, corrupted bytes, a truncated body,
power loss at an install step (then a reboot that recovers), a full disk (the spare slot must be freed),
a skewed clock (hours, within the timestamp's lifetime) and a device offline for a while.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import random
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pipelines.edge.agent import BlobStore, DeviceAgent, MemoryStorage, Outcome, PowerLoss, handle_safely
from pipelines.edge.jobs import Campaign, Rollout, RolloutConfig
from pipelines.edge.repository import Release
from pipelines.edge.server import BundleServer, FaultPlan
from pipelines.edge.jobs import AbortCriterion
from pipelines.edge.repository import Repository
from pipelines.core.lake import Lake

FAULTS = ("cut", "corrupt", "truncate", "power", "disk_full", "clock_skew", "offline")
POWER_STEPS = ("download_half", "verified", "staged", "switched", "self_testing", "committed")


@dataclass
class SimDevice:
    id: str
    storage: MemoryStorage
    fault: str | None = None
    power_at: str | None = None
    skew: dt.timedelta = dt.timedelta(0)
    online_at: float = 0.0
    retry_at: dict[str, float] = field(default_factory=dict)
    busy: bool = False
    bytes: int = 0
    metadata_bytes: int = 0
    reboots: int = 0


@dataclass
class SimResult:
    figures: dict
    campaign: Campaign
    devices: list[SimDevice]

    def lines(self) -> list[str]:
        return [f"{k}: {v}" for k, v in self.figures.items()]


def default_rollout(devices: int) -> RolloutConfig:
    """deploy/edge/rollout.json: 1% canary, 10%, then all; exponential from 50/min doubling every 100 successes
    up to 1000/min; abort at 20% failures (of any type) once 10 devices have finished (fewer for tiny fleets);
    10-minute in-progress timeout."""

    return RolloutConfig(maximum_per_minute=1000, base_rate_per_minute=50, increment_factor=2.0, increase_after=100,
                         increase_on="numberOfSucceededThings",
                         abort=(AbortCriterion("ALL", max(1, min(10, devices // 20)), 20.0),),
                         in_progress_timeout_minutes=10, cohorts=(0.01, 0.10, 1.0))


def simulate(
    repo_root: str | Path,
    *,
    root_json: bytes,
    factory: tuple[Release, bytes],
    target: Release,
    devices: int = 1000,
    faults: float = 0.1,
    seed: int = 7,
    workers: int = 8,
    config: RolloutConfig | None = None,
    max_sim_seconds: float = 6 * 3600,
    progress: Callable[[str], None] = lambda line: None,
) -> SimResult:
    """Roll `target` out to a fleet on `factory`; a failing self-test makes it a bad-release run."""
    rng = random.Random(seed)
    config = config or default_rollout(devices)
    work = Path(tempfile.mkdtemp(prefix="tributary-fleet-"))
    blobs = BlobStore()
    factory_release = factory[0]
    plan = FaultPlan()
    fleet = _build_fleet(work, blobs, plan, rng, root_json=root_json, factory=factory, target=target,
                         devices=devices, faults=faults)
    by_id = {d.id: d for d in fleet}
    rollback_doc = {"operation": "rollback", "from": target.path, "target": factory_release.path}
    campaign = Campaign(Rollout(f"release-{target.release}", [d.id for d in fleet],
                                {"operation": "install", "target": target.path}, config),
                        rollback_document=rollback_doc)
    updates: list[tuple[str, str, str, dict]] = []
    lock = threading.Lock()
    http = httpx.Client(timeout=httpx.Timeout(10.0, connect=5.0),
                        limits=httpx.Limits(max_connections=workers * 2, max_keepalive_connections=workers * 2))
    started = time.monotonic()
    exposed_at_abort: int | None = None
    rollback_done_at: float | None = None
    last_change = 0.0
    with BundleServer(repo_root, plan=plan) as server, cf.ThreadPoolExecutor(workers) as pool:
        run_job = _job_runner(server.url, http, lock, updates)
        now = 0.0
        while now <= max_sim_seconds:
            to_run = _due(campaign, fleet, by_id, now)
            _run_all(pool, run_job, to_run, now)
            with lock:
                batch, updates[:] = list(updates), []
            if _record(campaign, batch, now):
                last_change = now
            if campaign.rollout.status == "CANCELED" and exposed_at_abort is None:
                exposed_at_abort = len(campaign.rollout.exposed())
            if campaign.rollback is not None and campaign.rollback.status == "COMPLETED" and rollback_done_at is None:
                rollback_done_at = now
            if int(now) % 60 == 0:
                counts = campaign.rollout.counts()
                progress(f"t={now / 60:5.1f} min  {dict(sorted(counts.items()))}")
            if campaign.done and not to_run and _fleet_settled(fleet, now):
                break
            now += 1.0
    http.close()
    wall = time.monotonic() - started
    figures = _figures(fleet, campaign, target, factory_release, wall, now, last_change, exposed_at_abort,
                       rollback_done_at, blobs)
    shutil.rmtree(work, ignore_errors=True)
    return SimResult(figures, campaign, fleet)


def _job_runner(url: str, http: httpx.Client, lock: threading.Lock, updates: list[tuple[str, str, str, dict]]
                ) -> Callable[[SimDevice, Rollout], Outcome | None]:
    """Run one job on one simulated device (an agent on its storage), rebooting it after a planned power cut."""

    def make_agent(dev: SimDevice) -> DeviceAgent:
        def report(job_id: str, status: str, details: dict) -> None:
            with lock:
                updates.append((job_id, dev.id, status, details))

        def hook(step: str) -> None:
            if dev.power_at == step:
                dev.power_at = None
                raise PowerLoss(step)

        return DeviceAgent(dev.id, dev.storage, url, http=http, report=report, hook=hook,
                           clock=lambda: dt.datetime.now(dt.UTC) + dev.skew, backoff=0.0)

    def run_job(dev: SimDevice, job: Rollout) -> Outcome | None:
        agent = make_agent(dev)
        try:
            try:
                return handle_safely(agent, job.job_id, job.document)
            except PowerLoss:
                dev.reboots += 1
                agent = make_agent(dev)  # the device boots again on the same storage
                outcome = agent.recover()
                return outcome if outcome is not None else handle_safely(agent, job.job_id, job.document)
        finally:
            dev.bytes += agent.counters.bundle_bytes
            dev.metadata_bytes += agent.counters.metadata_bytes

    return run_job


def _build_fleet(work: Path, blobs: BlobStore, plan: FaultPlan, rng: random.Random, *, root_json: bytes,
                 factory: tuple[Release, bytes], target: Release, devices: int, faults: float,
                 ids: list[str] | None = None) -> list[SimDevice]:
    """The devices on the factory bundle, a share `faults` of them with a fault (each kind in turn); `ids` names
    them (default sim-000000, ...)."""
    factory_release, factory_bytes = factory
    fleet: list[SimDevice] = []
    n_faulty = int(round(devices * faults))
    faulty = set(rng.sample(range(devices), n_faulty))
    planted = 0
    for i in range(devices):
        device_id = ids[i] if ids is not None else f"sim-{i:06d}"
        meta = work / device_id
        meta.mkdir()
        (meta / "root.json").write_bytes(root_json)
        storage = MemoryStorage(blobs, meta)
        storage.install_factory("a", factory_bytes, factory_release.model_version, factory_release.path)
        dev = SimDevice(device_id, storage)
        if i in faulty:
            dev.fault = FAULTS[planted % len(FAULTS)]
            planted += 1
            _plant_fault(dev, rng, plan, blobs, quota_bytes=len(factory_bytes) + target.length + 4096,
                         bundle_length=target.length)
        fleet.append(dev)
    return fleet


def _plant_fault(dev: SimDevice, rng: random.Random, plan: FaultPlan, blobs: BlobStore, *, quota_bytes: int,
                 bundle_length: int) -> None:
    """Set up the device's fault: a planned download fault, a power cut at a step, a full disk, a skewed clock,
    or a late start."""
    if dev.fault in ("cut", "corrupt", "truncate"):
        plan.add(dev.id, dev.fault, at=rng.uniform(0.1, 0.9))
    elif dev.fault == "power":
        dev.power_at = rng.choice(POWER_STEPS)
    elif dev.fault == "disk_full":
        junk = blobs.put(f"old bundle of {dev.id}".encode().ljust(bundle_length, b"\0"))
        dev.storage.slots["b"] = junk
        dev.storage.quota_bytes = quota_bytes
    elif dev.fault == "clock_skew":
        dev.skew = dt.timedelta(hours=rng.choice([-1, 1]) * rng.uniform(1, 6))
    elif dev.fault == "offline":
        dev.online_at = rng.uniform(5, 30) * 60


def _due(campaign: Campaign, fleet: list[SimDevice], by_id: dict[str, SimDevice], now: float
         ) -> list[tuple[SimDevice, Rollout]]:
    """The (device, job) pairs to run this second: devices notified now, and devices that came online (or whose
    retry is due) asking for their pending job (start-next)."""
    latest: dict[str, Rollout] = {}
    for job, thing in campaign.step(now):  # a device told of a release and its rollback runs the newer
        latest[thing] = job
    to_run = [(by_id[t], job) for t, job in latest.items() if by_id[t].online_at <= now and not by_id[t].busy]
    scheduled = {dev.id for dev, _ in to_run}
    # The plane's columns, read once a second (the fleet is the jobs' things in the same order): the newest job
    # with an unfinished execution per device, and when it was told.
    jobs = campaign.jobs()[::-1]
    pending = [job.plane.pending(slice(None)).tolist() for job in jobs]
    notified = [job.plane.notified_at.tolist() for job in jobs]
    for i, dev in enumerate(fleet):
        if dev.busy or dev.online_at > now or dev.id in scheduled:
            continue
        k = next((k for k, mask in enumerate(pending) if mask[i]), None)
        if k is None:
            dev.retry_at.clear()
            continue
        job = jobs[k]
        due = dev.retry_at.get(job.job_id)
        if (due is None and notified[k][i] < now) or (due is not None and due <= now):
            to_run.append((dev, job))
    return to_run


def _run_all(pool: cf.ThreadPoolExecutor, run_job: Callable[[SimDevice, Rollout], Outcome | None],
             to_run: list[tuple[SimDevice, Rollout]], now: float) -> None:
    """Run the jobs on the pool and wait for them; a device whose job failed transiently retries in 30 s."""
    for dev, _ in to_run:
        dev.busy = True
    futures = {pool.submit(run_job, dev, job): (dev, job) for dev, job in to_run}
    for future in cf.as_completed(futures):
        dev, job = futures[future]
        dev.busy = False
        if future.result() is None:
            dev.retry_at[job.job_id] = now + 30.0
        else:
            dev.retry_at.pop(job.job_id, None)


def _record(campaign: Campaign, batch: list[tuple[str, str, str, dict]], now: float) -> bool:
    """Apply the devices' status updates to their jobs; True when any changed a job's state."""
    changed = False
    for job_id, thing, status, details in batch:
        job = campaign.find(job_id)
        if job is not None and job.record(thing, status, details, now):
            changed = True
    return changed


def _fleet_settled(fleet: list[SimDevice], now: float) -> bool:
    """No device busy, offline, or waiting to retry."""
    return all(not d.busy and d.online_at <= now and not d.retry_at for d in fleet)


def _quantile_minutes(job: Rollout, share: float) -> float | None:
    """When `share` of the fleet had finished the job (offline devices make the last percent's tail)."""
    seconds = job.plane.finished_at_quantile(share)
    return round(seconds / 60, 1) if seconds is not None else None


def _rollback_minutes(campaign: Campaign, fleet: list[SimDevice], *, online_only: bool) -> float | None:
    """Abort to the last rollback success, over the exposed devices that were online at the abort (an offline
    one never heard of the bad release; it gets the rollback, a no-op, when it comes back)."""
    if campaign.rollback is None or campaign.rollout.aborted_at is None:
        return None
    aborted = campaign.rollout.aborted_at
    online = {d.id for d in fleet if d.online_at <= aborted}
    done = [e.updated_at for e in campaign.rollback.executions.values()
            if e.status == "SUCCEEDED" and (not online_only or e.thing in online)]
    return round((max(done) - aborted) / 60, 2) if done else 0.0


def _figures(fleet, campaign, target, factory_release, wall, end, last_change, exposed_at_abort, rollback_done_at,
             blobs) -> dict:
    versions = Counter()
    bricked = 0
    on_bad = 0
    for dev in fleet:
        pointer = dev.storage.read_doc("current")
        if not pointer:
            bricked += 1
            continue
        try:
            ok = dev.storage.load(pointer["slot"]).self_test().passed
        except Exception:
            ok = False
        bricked += not ok
        versions[pointer["target"]] += 1
        on_bad += pointer["sha256"] == target.sha256 and target.bad
    installed = sum(1 for d in fleet if (d.storage.read_doc("current") or {}).get("sha256") == target.sha256)
    downloaded = sum(d.bytes for d in fleet)
    takers = sum(1 for d in fleet if d.bytes)
    # Every device that took the bundle needed it once; a rollback needs nothing (the old bundle is in a slot).
    minimum = takers * target.length
    faults = Counter(d.fault for d in fleet if d.fault)
    figures = {
        "devices": len(fleet),
        "faulty_devices": sum(faults.values()),
        "faults": dict(sorted(faults.items())),
        "reboots_after_power_loss": sum(d.reboots for d in fleet),
        "release": f"{target.path} (model v{target.model_version}{', bad release drill' if target.bad else ''})",
        "rollout_status": campaign.rollout.status,
        "release_job_states": dict(sorted(campaign.rollout.counts().items())),
        "converged_after_sim_minutes": round(last_change / 60, 1),
        "converged_99pct_sim_minutes": _quantile_minutes(campaign.rollout, 0.99),
        "wall_seconds": round(wall, 1),
        "share_on_new_release": round(installed / len(fleet), 4),
        "bricked_devices": bricked,
        "devices_per_bundle": dict(versions),
        "bundle_bytes_downloaded": downloaded,
        "bundle_bytes_minimum": minimum,
        "resume_efficiency": round(minimum / downloaded, 4) if downloaded else 1.0,
        "metadata_bytes_downloaded": sum(d.metadata_bytes for d in fleet),
    }
    if target.bad:
        figures.update({
            "abort_reason": campaign.rollout.abort_reason,
            "exposed_before_abort": exposed_at_abort,
            "aborted_at_sim_minutes": round((campaign.rollout.aborted_at or 0) / 60, 2),
            "took_bad_bundle": campaign.rollout.counts().get("FAILED", 0),
            "rollback_job_states": dict(sorted(campaign.rollback.counts().items())) if campaign.rollback else {},
            "rollback_online_took_sim_minutes": _rollback_minutes(campaign, fleet, online_only=True),
            "rollback_all_took_sim_minutes": (round((rollback_done_at - campaign.rollout.aborted_at) / 60, 2)
                                              if rollback_done_at is not None else None),
            "devices_left_on_bad_release": on_bad,
        })
    return figures


ATTACKS = ("tampered_bundle", "wrong_signature", "replayed_release", "expired_timestamp")


def run_attacks(
    repo_root: str | Path,
    keys,
    *,
    root_json: bytes,
    factory: tuple[Release, bytes],
    target: Release,
    devices: int = 20,
) -> dict[str, dict]:
    """Each attack on its own copy of the repository against `devices` fresh devices: how many refused it
    (REJECTED), and how many still run a model that passes its self-test (must be all of them)."""

    results: dict[str, dict] = {}
    factory_release, factory_bytes = factory
    for attack in ATTACKS:
        work = Path(tempfile.mkdtemp(prefix=f"tributary-attack-{attack}-"))
        copy = work / "repository"
        shutil.copytree(repo_root, copy)
        repo = Repository(Lake(str(work)), "repository")
        blobs = BlobStore()
        fleet = []
        for i in range(devices):
            meta = work / f"dev-{i}"
            meta.mkdir()
            (meta / "root.json").write_bytes(root_json)
            storage = MemoryStorage(blobs, meta)
            storage.install_factory("a", factory_bytes, factory_release.model_version, factory_release.path)
            fleet.append(storage)
        with BundleServer(copy) as server:
            agents = [DeviceAgent(f"attacked-{i}", s, server.url, backoff=0.0) for i, s in enumerate(fleet)]
            if attack == "tampered_bundle":
                path = copy / "targets" / f"{target.sha256}.{target.path}"
                data = bytearray(path.read_bytes())
                data[len(data) // 2] ^= 0x01
                path.write_bytes(bytes(data))
            elif attack == "wrong_signature":
                from securesystemslib.signer import CryptoSigner  # noqa: PLC0415 - start-up: securesystemslib ~0.26 s

                repo.refresh_timestamp(keys, signer=CryptoSigner.generate_ed25519())
            elif attack == "replayed_release":
                old = (copy / "metadata" / "timestamp.json").read_bytes()
                repo.refresh_timestamp(keys)
                for agent in agents:  # the fleet sees the newer timestamp first
                    handle_safely(agent, "check-in", {"operation": "install", "target": factory_release.path})
                (copy / "metadata" / "timestamp.json").write_bytes(old)
            elif attack == "expired_timestamp":
                repo.refresh_timestamp(keys, expires=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
            outcomes = [handle_safely(agent, f"attack-{attack}", {"operation": "install", "target": target.path})
                        for agent in agents]
            for agent in agents:
                agent.close()
        healthy = sum(1 for s in fleet if (s.read_doc("current") or {}).get("sha256") == factory_release.sha256
                      and s.load("a").self_test().passed)
        reasons = Counter((o.details.get("reason", "") if o else "retry later").split(":")[0] for o in outcomes)
        results[attack] = {"devices": devices, "refused": sum(1 for o in outcomes if o and o.status == "REJECTED"),
                           "still_on_trusted_model": healthy, "reasons": dict(reasons)}
        shutil.rmtree(work, ignore_errors=True)
    return results
