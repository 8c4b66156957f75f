"""The agent on real files against the bundle server on loopback: faults it survives, attacks it refuses."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
from tuf.api.metadata import Metadata

from pipelines.edge.agent import DeviceAgent, FileStorage, PowerLoss, handle_safely
from pipelines.edge.server import BundleServer
from securesystemslib.signer import CryptoSigner


def _device(repo, server, tmp_path, name="dev-1", **kwargs) -> DeviceAgent:
    reports: list[tuple[str, str, dict]] = []
    storage_kwargs = {"quota_bytes": kwargs.pop("quota_bytes")} if "quota_bytes" in kwargs else {}
    agent = DeviceAgent(name, FileStorage(tmp_path / name, **storage_kwargs), server.url,
                        report=lambda j, s, d: reports.append((j, s, d)), backoff=0.0, **kwargs)
    agent.provision(repo.repo.root_bytes())
    agent.reports = reports  # type: ignore[attr-defined]
    return agent


def _install(agent, release, job="job-1"):
    return handle_safely(agent, job, {"operation": "install", "target": release.path})


@pytest.fixture
def server(repo):
    with BundleServer(repo.root) as srv:
        yield srv


def test_install_switches_atomically_and_commits(repo, server, tmp_path):
    agent = _device(repo, server, tmp_path)
    assert _install(agent, repo.releases["champion"]).status == "SUCCEEDED"
    assert _install(agent, repo.releases["challenger"], "job-2").status == "SUCCEEDED"
    assert agent.current["sha256"] == repo.releases["challenger"].sha256
    assert agent.current["slot"] == "b" and agent.journal is None
    assert agent.predictor().self_test().passed
    assert [s for _, s, _ in agent.reports][-1] == "SUCCEEDED"


def test_bad_release_fails_its_self_test_and_rolls_back_by_itself(repo, server, tmp_path):
    agent = _device(repo, server, tmp_path)
    _install(agent, repo.releases["champion"])
    outcome = _install(agent, repo.releases["bad"], "job-bad")
    assert outcome.status == "FAILED" and "rolled back" in outcome.details["reason"]
    assert agent.current["sha256"] == repo.releases["champion"].sha256


def test_a_resumed_download_fetches_only_the_missing_bytes(repo, server, tmp_path):
    agent = _device(repo, server, tmp_path)
    release = repo.releases["champion"]
    server.plan.add("dev-1", "cut", at=0.4)
    assert _install(agent, release).status == "SUCCEEDED"
    assert agent.counters.resumes == 1
    assert agent.counters.bundle_bytes == release.length  # not one byte fetched twice


def test_a_download_cut_by_power_loss_resumes_after_reboot(repo, server, tmp_path):
    release = repo.releases["champion"]

    def cut(step):
        if step == "download_half":
            raise PowerLoss(step)

    first = _device(repo, server, tmp_path, hook=cut)
    with pytest.raises(PowerLoss):
        _install(first, release)
    partial = first.storage.part_size()
    assert 0 < partial < release.length and first.journal["step"] == "downloading"
    again = _device(repo, server, tmp_path)
    assert again.recover().status == "SUCCEEDED"
    assert again.counters.bundle_bytes == release.length - partial


@pytest.mark.parametrize("fault", ["corrupt", "truncate"])
def test_corrupted_or_truncated_bytes_are_caught_and_fetched_again(repo, server, tmp_path, fault):
    agent = _device(repo, server, tmp_path)
    server.plan.add("dev-1", fault, at=0.5)
    assert _install(agent, repo.releases["champion"]).status == "SUCCEEDED"
    assert agent.predictor().self_test().passed


def test_a_full_disk_frees_the_spare_slot_and_installs(repo, server, tmp_path):
    champion, challenger = repo.releases["champion"], repo.releases["challenger"]
    quota = champion.length + challenger.length + 1024
    agent = _device(repo, server, tmp_path, quota_bytes=quota)
    _install(agent, champion)
    (tmp_path / "dev-1" / "slot-b.tar").write_bytes(b"\0" * challenger.length)  # an old bundle fills the disk
    assert _install(agent, challenger, "job-2").status == "SUCCEEDED"
    assert agent.current["sha256"] == challenger.sha256


def test_a_tampered_bundle_is_refused_and_the_device_keeps_its_model(repo, server, tmp_path):
    agent = _device(repo, server, tmp_path)
    _install(agent, repo.releases["champion"])
    path = repo.target_file(repo.releases["challenger"])
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    outcome = _install(agent, repo.releases["challenger"], "job-2")
    assert outcome.status == "REJECTED" and "sha256" in outcome.details["reason"]
    assert agent.current["sha256"] == repo.releases["champion"].sha256
    assert agent.predictor().self_test().passed


def test_tampered_metadata_is_refused(repo, server, tmp_path):
    agent = _device(repo, server, tmp_path)
    _install(agent, repo.releases["champion"])
    metadata = tmp_path / "lake" / "edge" / "repository" / "metadata"
    newest = max(metadata.glob("*.targets.json"), key=lambda p: int(p.name.split(".")[0]))
    newest.write_bytes(newest.read_bytes().replace(b'"length": ', b'"length": 1', 1))
    repo.repo.refresh_timestamp(repo.keys)  # fresh timestamp, but the snapshot pins the real targets
    (tmp_path / "dev-1" / "tuf" / "targets.json").unlink()  # force the device to fetch targets again
    outcome = _install(agent, repo.releases["challenger"], "job-2")
    assert outcome.status == "REJECTED"
    assert agent.current["sha256"] == repo.releases["champion"].sha256


def test_metadata_signed_by_a_foreign_key_is_refused(repo, server, tmp_path):
    agent = _device(repo, server, tmp_path)
    _install(agent, repo.releases["champion"])
    repo.repo.refresh_timestamp(repo.keys, signer=CryptoSigner.generate_ed25519())
    outcome = _install(agent, repo.releases["challenger"], "job-2")
    assert outcome.status == "REJECTED" and "UnsignedMetadataError" in outcome.details["reason"]


def test_a_replayed_old_release_is_refused(repo, server, tmp_path):
    metadata = tmp_path / "lake" / "edge" / "repository" / "metadata"
    old_timestamp = (metadata / "timestamp.json").read_bytes()
    agent = _device(repo, server, tmp_path)
    repo.repo.refresh_timestamp(repo.keys)
    _install(agent, repo.releases["champion"])
    (metadata / "timestamp.json").write_bytes(old_timestamp)  # an attacker serves yesterday's repository
    outcome = _install(agent, repo.releases["challenger"], "job-2")
    assert outcome.status == "REJECTED" and "BadVersionNumberError" in outcome.details["reason"]
    assert Metadata.from_bytes(old_timestamp).signed.version < 5


def test_an_expired_timestamp_is_refused(repo, server, tmp_path):
    agent = _device(repo, server, tmp_path)
    _install(agent, repo.releases["champion"])
    repo.repo.refresh_timestamp(repo.keys, expires=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
    outcome = _install(agent, repo.releases["challenger"], "job-2")
    assert outcome.status == "REJECTED" and "ExpiredMetadataError" in outcome.details["reason"]
    assert agent.current["sha256"] == repo.releases["champion"].sha256


@pytest.mark.parametrize(("skew_hours", "status"), [(-6, "SUCCEEDED"), (6, "SUCCEEDED"), (48, "REJECTED")])
def test_clock_skew_within_the_timestamp_lifetime_is_tolerated(repo, server, tmp_path, skew_hours, status):
    skew = dt.timedelta(hours=skew_hours)
    agent = _device(repo, server, tmp_path, clock=lambda: dt.datetime.now(dt.UTC) + skew)
    outcome = _install(agent, repo.releases["champion"])
    assert outcome.status == status
    if status == "REJECTED":
        assert "device clock" in outcome.details["reason"] and agent.current is None


def test_keys_are_private_files(edge_models):
    for path in edge_models.key_dir.glob("*.pem"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_the_timestamp_is_written_last(edge_models, tmp_path):
    from pipelines.edge import keys as keyring
    from pipelines.edge.repository import Repository
    from pipelines.core.lake import Lake

    written: list[str] = []

    class Recording(Lake):
        def publish_bytes(self, rel, data):
            written.append(rel.rsplit("/", 1)[-1])
            super().publish_bytes(rel, data)

    repository = Repository(Recording(str(tmp_path / "lake")))
    repository.init(keyring.load(edge_models.key_dir))
    written.clear()
    repository.publish(edge_models.champion.name, edge_models.champion.data, keyring.load(edge_models.key_dir))
    assert written[-1] == "timestamp.json"
    assert written[0].endswith(edge_models.champion.name) and written[1] == "2.targets.json"
    assert written[2] == "2.snapshot.json"


def test_a_self_test_that_kills_the_device_twice_is_rolled_back_on_the_third_boot(repo, server, tmp_path):
    def crash(step):
        if step == "self_testing":
            raise PowerLoss(step)

    agent = _device(repo, server, tmp_path)
    _install(agent, repo.releases["champion"])
    for _ in range(2):
        dying = _device(repo, server, tmp_path, hook=crash)
        with pytest.raises(PowerLoss):
            dying.recover() if dying.journal else _install(dying, repo.releases["challenger"], "job-2")
        assert dying.current["sha256"] == repo.releases["challenger"].sha256  # it boots the new bundle on trial
    survivor = _device(repo, server, tmp_path)
    outcome = survivor.recover()
    assert outcome.status == "FAILED" and "did not finish in 2 boots" in outcome.details["reason"]
    assert survivor.current["sha256"] == repo.releases["champion"].sha256


def test_a_job_notified_again_after_its_end_is_answered_from_the_record(repo, server, tmp_path):
    agent = _device(repo, server, tmp_path)
    _install(agent, repo.releases["champion"])
    first = _install(agent, repo.releases["bad"], "job-bad")
    bytes_before = agent.counters.bundle_bytes
    again = _install(agent, repo.releases["bad"], "job-bad")
    assert again == first and agent.counters.bundle_bytes == bytes_before


def test_a_rollback_job_returns_a_device_on_the_bad_bundle_to_the_one_it_ran_before(repo, server, tmp_path,
                                                                                    monkeypatch):
    from pipelines.edge.runtime import Predictor, SelfTestResult

    agent = _device(repo, server, tmp_path)
    _install(agent, repo.releases["champion"])
    bad = repo.releases["bad"]
    # A release that passed its self-test on the device but misbehaves in the field: force it on.
    monkeypatch.setattr(Predictor, "self_test", lambda self: SelfTestResult(True, 1, 0.0, "forced for the test"))
    assert _install(agent, bad, "job-bad").status == "SUCCEEDED"
    monkeypatch.undo()
    assert agent.current["target"] == bad.path
    document = {"operation": "rollback", "from": bad.path, "target": repo.releases["challenger"].path}
    bytes_before = agent.counters.bundle_bytes
    outcome = handle_safely(agent, "job-bad-rollback", document)
    assert outcome.status == "SUCCEEDED"
    assert agent.current["sha256"] == repo.releases["champion"].sha256  # the bundle it ran before, not the fallback
    assert agent.counters.bundle_bytes == bytes_before  # still in the other slot: nothing downloaded
    other = _device(repo, server, tmp_path, name="dev-2")
    _install(other, repo.releases["champion"])
    assert handle_safely(other, "job-bad-rollback", document).details["reason"] == f"not on {bad.path}"
