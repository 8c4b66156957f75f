"""Keys and time (issue 20.5): a fleet keeps updating across simulated days because the schedule's re-signing
keeps the timestamp (and snapshot) fresh, and devices follow key rotations through TUF's root chain."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from assets.edge_freshness import edge_keep_fresh_job
from pipelines.core.lake import Lake
from pipelines.edge import keys as keyring
from pipelines.edge.agent import DeviceAgent, FileStorage, handle_safely
from pipelines.edge.cli import edge
from pipelines.edge.repository import EXPIRY, Repository
from pipelines.edge.server import BundleServer
from resources.edge import EdgeResource
from resources.lake import LocalLakeResource

class SimClock:
    """One simulated clock shared by the repository (its signing dates) and the device (its expiry checks). It
    starts at the real time and only moves ahead: ngclient also judges expiry by the system clock."""

    def __init__(self) -> None:
        self.start = self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now


def _install(agent: DeviceAgent, target: str, job: str):
    return handle_safely(agent, job, {"operation": "install", "target": target})


def test_devices_keep_updating_across_simulated_days(edge_models, tmp_path: Path) -> None:
    clock = SimClock()
    keys = keyring.load(edge_models.key_dir)
    repo = Repository(Lake(str(tmp_path / "lake")), clock=clock)
    champion = repo.publish(edge_models.champion.name, edge_models.champion.data, keys)
    with BundleServer(repo.lake.uri(repo.prefix)) as server:
        agent = DeviceAgent("dev-days", FileStorage(tmp_path / "dev"), server.url, clock=clock, backoff=0.0)
        agent.provision(repo.root_bytes())
        assert _install(agent, champion.path, "day-0").status == "SUCCEEDED"

        # The control: two days on and nothing re-signed, the device refuses the repository (the frozen fleet).
        clock.now = clock.start + dt.timedelta(days=2)
        refused = _install(agent, champion.path, "day-2-frozen")
        assert refused.status == "REJECTED" and "expired" in refused.details["reason"], refused

        # Now the schedule runs every hour up to day 12; the device takes a job every six hours and a new release
        # arrives on day 4 (its snapshot expires on day 11: the device gets past it only if that is re-signed).
        outcomes, resigned = [], {"timestamp": 0, "snapshot": 0, "targets": 0}
        challenger = None
        for hour in range(48, 24 * 12):
            clock.now = clock.start + dt.timedelta(hours=hour)
            for role in repo.keep_fresh(keys):
                resigned[role] += 1
            if hour == 24 * 4:
                challenger = repo.publish(edge_models.challenger.name, edge_models.challenger.data, keys)
            if hour % 6 == 0:
                target = challenger.path if challenger else champion.path
                outcomes.append((hour, _install(agent, target, f"hour-{hour}").status))
    assert all(status == "SUCCEEDED" for _, status in outcomes), outcomes
    assert len(outcomes) == 40 and outcomes[-1][0] > 24 * 11 and agent.current["sha256"] == challenger.sha256
    # Half-day margins: the timestamp about every 12 hours, the snapshot once 3 of its 7 days were left.
    assert 18 <= resigned["timestamp"] <= 22 and resigned["snapshot"] == 1 and resigned["targets"] == 0, resigned
    _, timestamp, snapshot, _ = repo.current()
    assert timestamp.signed.expires - clock.now > dt.timedelta(hours=12)
    assert snapshot.signed.expires - clock.now > dt.timedelta(days=3)


def test_the_schedules_job_re_signs_an_ageing_timestamp(repo, edge_models) -> None:
    _, before, _, _ = repo.repo.current()
    assert not repo.repo.keep_fresh(keyring.load(edge_models.key_dir))  # fresh: nothing to do
    repo.repo.refresh_timestamp(repo.keys, expires=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
    resources = {"lake": LocalLakeResource(root=repo.lake.root),
                 "edge": EdgeResource(key_dir=str(edge_models.key_dir))}
    assert edge_keep_fresh_job.execute_in_process(resources=resources).success
    _, after, _, _ = repo.repo.current()
    assert after.signed.version == before.signed.version + 2
    assert after.signed.expires - dt.datetime.now(dt.UTC) > EXPIRY["timestamp"] - dt.timedelta(minutes=5)


def _key_copy(edge_models, tmp_path: Path) -> Path:
    folder = tmp_path / "keys"
    shutil.copytree(edge_models.key_dir, folder)
    return folder


def test_devices_follow_key_rotations_through_the_root_chain(repo, edge_models, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _key_copy(edge_models, tmp_path)
    old = keyring.load(folder)
    monkeypatch.setenv("TRIBUTARY_LAKE_ROOT", repo.lake.root)
    monkeypatch.setenv("TRIBUTARY_EDGE_KEY_DIR", str(folder))
    with BundleServer(repo.root) as server:
        agent = DeviceAgent("dev-rot", FileStorage(tmp_path / "dev"), server.url, backoff=0.0)
        agent.provision(repo.repo.root_bytes())  # root v1, for the life of the device
        assert _install(agent, repo.releases["champion"].path, "job-1").status == "SUCCEEDED"

        result = CliRunner().invoke(edge, ["rotate-keys"])
        assert result.exit_code == 0 and "published root v2" in result.output, result.output
        assert _install(agent, repo.releases["challenger"].path, "job-2").status == "SUCCEEDED"

        result = CliRunner().invoke(edge, ["rotate-keys", "--no-online", "--root", "--root-keys", "4",
                                           "--root-threshold", "3"])
        assert result.exit_code == 0 and "root 3 of 4 keys" in result.output, result.output
        assert _install(agent, repo.releases["champion"].path, "job-3").status == "SUCCEEDED"
        history = sorted(p.name for p in Path(agent.storage.metadata_dir, "root_history").iterdir())
        assert history == ["1.root.json", "2.root.json", "3.root.json"]
        root3 = json.loads(Path(agent.storage.metadata_dir, "root_history", "3.root.json").read_text())["signed"]
        assert root3["roles"]["root"]["threshold"] == 3 and len(root3["roles"]["root"]["keyids"]) == 4

        # The files moved: four root keys now, the old ones kept under retired/, none left staged.
        assert sorted(p.name for p in folder.glob("root-*.pem")) == [f"root-{i}.pem" for i in range(1, 5)]
        assert sorted(p.name for p in (folder / "retired" / "root-v1").iterdir()) == [
            "snapshot.pem", "targets.pem", "timestamp.pem"]
        assert len(list((folder / "retired" / "root-v2").glob("root-*.pem"))) == 3
        assert not (folder / "next").exists()

        # A retired key signs nothing a device accepts any more.
        repo.repo.refresh_timestamp(old, signer=old.timestamp)
        refused = _install(agent, repo.releases["challenger"].path, "job-4")
        assert refused.status == "REJECTED" and "timestamp" in refused.details["reason"], refused


def test_a_rotation_that_stopped_after_its_root_was_published_is_finished(repo, edge_models, tmp_path: Path) -> None:
    from pipelines.edge import rotation

    folder = _key_copy(edge_models, tmp_path)
    old = keyring.load(folder)
    keyring.write_new(folder / rotation.NEXT, ["timestamp"])
    staged = keyring.load_files(folder / rotation.NEXT, ["timestamp"])["timestamp"]
    new = keyring.KeySet(root=old.root, targets=old.targets, snapshot=old.snapshot, timestamp=staged)
    repo.repo.rotate(old, new)  # ...and the process died before the key files moved
    done = rotation.rotate_keys(repo.repo, folder)
    assert done.resumed and done.rotated == ("timestamp",) and done.root_version == 2
    assert keyring.load(folder).timestamp.public_key.keyid == staged.public_key.keyid


def test_rotate_keys_refuses_root_options_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(edge, ["rotate-keys", "--root-threshold", "2"])
    assert result.exit_code == 1 and "add --root" in result.output
