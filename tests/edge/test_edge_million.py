"""The columnar control plane and the vectorized fleet: 100,000 devices in seconds, real agents mixed in."""

from __future__ import annotations

import numpy as np

from pipelines.core.lake import Lake
from pipelines.edge import plane
from pipelines.edge import status as device_status
from pipelines.edge.jobs import AbortCriterion, Campaign, Rollout, RolloutConfig
from pipelines.synthetic.megafleet import simulate_million

CONFIG = RolloutConfig(maximum_per_minute=1000, base_rate_per_minute=50, increment_factor=2.0, increase_after=100,
                       abort=(AbortCriterion("ALL", 10, 20.0),), in_progress_timeout_minutes=10,
                       cohorts=(0.01, 0.10, 1.0))


def _run(repo, edge_models, target, *, devices=100_000, real=0, lake=None, **kw):
    factory = repo.releases["champion"]
    return simulate_million(repo.root, root_json=repo.repo.root_bytes(), factory=(factory, edge_models.champion.data),
                            target=target, devices=devices, real_agents=real, seed=11, workers=4, lake=lake,
                            config=CONFIG, **kw)


def test_the_columnar_plane_notifies_like_the_per_thing_rollout():
    """Same config, same updates: the columnar plane tells as many things per second, opens the same cohorts,
    and aborts at the same moment as `jobs.Rollout` (the object-per-thing controller the MQTT service runs)."""
    n = 3000
    names = [f"t{i}" for i in range(n)]
    old = Campaign(Rollout("job-x", names, {}, CONFIG), rollback_document={"operation": "rollback"})
    new = plane.FleetCampaign(plane.FleetRollout("job-x", n, {}, CONFIG), rollback_document={"operation": "rollback"})
    told_old, told_new = [], []
    for second in range(0, 900):
        a = [t for job, t in old.step(second) if job is old.rollout]
        b = [idx for job, idx in new.step(second) if job is new.rollout]
        b = np.concatenate(b) if b else np.empty(0, dtype=np.int32)
        told_old.append(len(a))
        told_new.append(len(b))
        # Every told thing finishes at once: it succeeds, except every other one told after minute 2 (the two
        # planes order the fleet differently, so "every other" counts in the order each told them).
        fail = second > 120
        for k, t in enumerate(a):
            old.rollout.record(t, "IN_PROGRESS", {}, second)
            old.rollout.record(t, "FAILED" if fail and k % 2 == 0 else "SUCCEEDED", {}, second)
        if len(b):
            new.rollout.record(b, plane.IN_PROGRESS, second)
            bad = b[::2] if fail else b[:0]
            new.rollout.record(bad, plane.FAILED, second)
            new.rollout.record(np.setdiff1d(b, bad), plane.SUCCEEDED, second)
    assert told_new == told_old
    assert old.rollout.counts() == new.rollout.counts()
    assert old.rollout.status == new.rollout.state == "CANCELED"
    assert old.rollout.aborted_at == new.rollout.aborted_at and old.rollout.abort_reason == new.rollout.abort_reason
    assert len(old.rollout.exposed()) == len(new.rollout.exposed()) == sum(told_new) > 30
    assert old.rollback.counts() == new.rollback.counts() == {"QUEUED": sum(told_new)}


def test_a_hundred_thousand_devices_converge_and_merge_one_row_each(repo, edge_models, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    result = _run(repo, edge_models, repo.releases["challenger"], faults=0.1, lake=lake, flush_minutes=30)
    f = result.figures
    assert f["rollout_status"] == "COMPLETED"
    assert f["release_job_states"] == {"SUCCEEDED": 100_000}
    assert f["devices_on_new_release"] == 100_000
    # 1000/min at most: 100,000 things cannot finish in under 100 simulated minutes.
    assert 100 <= f["converged_99pct_sim_minutes"] <= f["converged_all_sim_minutes"] < 400
    assert f["bundle_bytes_simulated_devices_modelled"] >= 100_000 * repo.releases["challenger"].length
    table = device_status.read(lake)
    assert table.height == 100_000 and table.select("device_id", "job_id").n_unique() == 100_000
    assert table["status"].unique().to_list() == ["SUCCEEDED"]
    assert f["device_status_rows_merged"] >= 100_000 and f["device_status_merge_commits"] >= 2
    # MERGE again: updates, never duplicates.
    device_status.write(lake, table.head(1000), batch_rows=300)
    assert device_status.read(lake).height == 100_000


def test_a_failure_rate_over_the_threshold_aborts_and_no_further_wave_is_told(repo, edge_models, tmp_path):
    lake = Lake(str(tmp_path / "lake"))
    result = _run(repo, edge_models, repo.releases["challenger"], faults=0.0, fail_rate=0.5, lake=lake)
    f, campaign = result.figures, result.campaign
    assert f["rollout_status"] == "CANCELED" and "ALL" in f["abort_reason"]
    told = f["exposed_before_abort"]
    canary = int(np.ceil(0.01 * 100_000))
    assert 10 <= told <= canary  # stopped inside the canary: the 10% and 100% waves were never told
    assert len(campaign.rollout.exposed()) == told  # and nobody was told afterwards
    assert (campaign.rollout.cohort[campaign.rollout.exposed()] == 0).all()
    assert f["rollback_job_states"] == {"SUCCEEDED": told}
    assert f["devices_on_new_release"] == 0  # the ones that installed were rolled back
    table = device_status.read(lake)
    assert table.filter(table["job_id"].str.ends_with("-rollback")).height == told
    assert table.filter(~table["job_id"].str.ends_with("-rollback")).height == 100_000
    assert table.filter(table["status"] == "CANCELED").height == 100_000 - f["release_job_states"].get("SUCCEEDED", 0) \
        - f["release_job_states"].get("FAILED", 0) - f["release_job_states"].get("TIMED_OUT", 0)


def test_real_agents_in_the_same_rollout_do_real_tuf_and_http(repo, edge_models, tmp_path):
    """40 real agents (TUF refresh, Range download from the bundle server, A/B install, self-test, their own
    faults) among 20,000 devices; their updates land in the same control plane and in the status table."""
    lake = Lake(str(tmp_path / "lake"))
    target = repo.releases["challenger"]
    result = _run(repo, edge_models, target, devices=20_000, real=40, faults=0.1, lake=lake)
    f = result.figures
    assert f["real_agents"] == 40 and f["rollout_status"] == "COMPLETED"
    assert f["real_agents_on_new_release"] == 40 and f["real_agents_outcomes"] == {"SUCCEEDED": 40}
    assert f["real_agents_bundle_bytes_measured"] >= 40 * target.length
    assert f["real_agents_metadata_bytes_measured"] > 0
    for dev in result.real:
        assert (dev.storage.read_doc("current") or {}).get("sha256") == target.sha256
    table = device_status.read(lake)
    real_rows = table.filter(table["device_id"].is_in([d.id for d in result.real]))
    assert real_rows.height == 40 and set(real_rows["status"]) == {"SUCCEEDED"}
    assert f["bytes_per_device_measured_mean"] >= target.length
