"""The columnar control plane and the vectorized fleet: 100,000 devices in seconds, real agents mixed in."""

from __future__ import annotations

import numpy as np

from pipelines.core.lake import Lake
from pipelines.edge import plane
from pipelines.edge import status as device_status
from pipelines.edge.jobs import AbortCriterion, RolloutConfig
from pipelines.synthetic.megafleet import simulate_million

CONFIG = RolloutConfig(maximum_per_minute=1000, base_rate_per_minute=50, increment_factor=2.0, increase_after=100,
                       abort=(AbortCriterion("ALL", 10, 20.0),), in_progress_timeout_minutes=10,
                       cohorts=(0.01, 0.10, 1.0))


def _run(repo, edge_models, target, *, devices=100_000, real=0, lake=None, **kw):
    factory = repo.releases["champion"]
    return simulate_million(repo.root, root_json=repo.repo.root_bytes(), factory=(factory, edge_models.champion.data),
                            target=target, devices=devices, real_agents=real, seed=11, workers=4, lake=lake,
                            config=CONFIG, **kw)


def _expected_notifications(seconds: int, fail_after: int) -> tuple[list[int], int | None]:
    """What CONFIG's rules say, as scalar arithmetic: the allowance grows by rate/60 a second (from a burst of one)
    and each whole one tells a thing; the rate doubles (up to 1000/min) every 100 successes; the abort rule runs
    at the start of a second, before anyone new is told, once 10 executed things are 20% failures. Here every told
    thing finishes the same second (so the cohort gate is always open), failing every other one after `fail_after`.
    Returns the things told each second and the second of the abort."""
    rate, allowance, since, executed, failed = 50.0, 1.0, 0, 0, 0
    told: list[int] = []
    for second in range(seconds):
        if executed >= 10 and 100.0 * failed / executed >= 20.0:
            return told + [0] * (seconds - second), second
        if second:
            allowance = min(max(rate, allowance, 1.0), allowance + rate / 60.0)
        k = int(allowance)
        allowance -= k
        told.append(k)
        bad = (k + 1) // 2 if second > fail_after else 0  # the 1st, 3rd, ... told this second fail
        executed, failed, since = executed + k, failed + bad, since + k - bad
        while since >= 100:
            since -= 100
            rate = min(1000.0, rate * 2.0)
    return told, None


def test_the_plane_notifies_cohorts_aborts_and_rolls_back_by_the_rules_second_by_second():
    """Each second: as many things told as the rate allows (none beyond the allowance), the 10% cohort opened once
    the canary finished, the abort at the first second the criterion holds, nobody told after it, and a rollback
    job to exactly the exposed things. (This test compared the columnar plane with `jobs.Rollout`'s object per
    thing second by second until that became a view on the plane; the figures it matched are kept below.)"""
    n = 3000
    campaign = plane.FleetCampaign(plane.FleetRollout("job-x", n, {}, CONFIG),
                                   rollback_document={"operation": "rollback"})
    job = campaign.rollout
    expected, abort_second = _expected_notifications(900, fail_after=120)
    told, cohorts_told = [], []
    for second in range(900):
        before = job.counts_by_cohort.copy()
        sent = [idx for j, idx in campaign.step(second) if j is job]
        idx = np.concatenate(sent) if sent else np.empty(0, dtype=np.int32)
        told.append(len(idx))
        if len(idx):
            cohort = job.cohort[idx]
            for c in np.unique(cohort)[1:] if cohort.min() == 0 else np.unique(cohort):
                # a later cohort is told only once 90% of the earlier ones have finished, none still in progress
                earlier = before[:c]
                assert earlier[:, plane.TERMINAL_CODES].sum() >= CONFIG.cohort_gate * earlier.sum(), second
                assert earlier[:, plane.IN_PROGRESS].sum() == 0, second
            cohorts_told.extend(cohort.tolist())
            job.record(idx, plane.IN_PROGRESS, second)
            bad = idx[::2] if second > 120 else idx[:0]
            job.record(bad, plane.FAILED, second)
            job.record(np.setdiff1d(idx, bad), plane.SUCCEEDED, second)
        if second < abort_second:
            assert job.state == "IN_PROGRESS", second
    assert told == expected
    assert abort_second == job.aborted_at == 152  # as jobs.Rollout aborted
    assert job.abort_reason == "31 of 153 executed things ALL (>= 20% after 10)"
    assert job.counts() == {"SUCCEEDED": 122, "FAILED": 31, "CANCELED": 2847}
    assert job.rate == 100.0  # doubled once, at the 100th success
    # The canary (30 things) first, then the 10% cohort; nobody from the last one before the abort.
    assert cohorts_told == sorted(cohorts_told) and cohorts_told.count(0) == 30 and set(cohorts_told) == {0, 1}
    assert len(job.exposed()) == sum(told) == 153
    assert campaign.rollback.counts() == {"QUEUED": 153}
    assert set(campaign.rollback.order.tolist()) == set(job.exposed().tolist())


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
