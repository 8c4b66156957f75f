"""The rollout: IoT Jobs config, rate and abort rules, and a fleet of real agent processes over Mosquitto."""

from __future__ import annotations

import json
import uuid

import pytest

from pipelines.edge import status as device_status
from pipelines.edge.jobs import AbortCriterion, Campaign, Rollout, RolloutConfig, RolloutConfigError
from pipelines.edge.release import plan_campaign, run_local_rollout
from pipelines.edge.server import BundleServer
from tests.edge.conftest import new_devices


def test_rollout_config_round_trips_the_create_job_shape():
    config = RolloutConfig(maximum_per_minute=500, base_rate_per_minute=5, increment_factor=1.5, increase_after=10,
                           increase_on="numberOfNotifiedThings", abort=(AbortCriterion("FAILED", 3, 25.0),),
                           in_progress_timeout_minutes=30, cohorts=(0.01, 0.1, 1.0))
    doc = config.to_json()
    assert doc["jobExecutionsRolloutConfig"]["exponentialRate"]["rateIncreaseCriteria"] == {"numberOfNotifiedThings": 10}
    assert doc["abortConfig"]["criteriaList"][0] == {"failureType": "FAILED", "action": "CANCEL",
                                                     "thresholdPercentage": 25.0, "minNumberOfExecutedThings": 3}
    assert RolloutConfig.from_json(json.loads(json.dumps(doc))) == config


@pytest.mark.parametrize("doc, field", [
    ({"jobExecutionsRolloutConfig": {"maximumPerMinute": 5000}}, "maximumPerMinute"),
    ({"timeoutConfig": {"inProgressTimeoutInMinutes": 0}}, "inProgressTimeoutInMinutes"),
    ({"cohorts": [0.5, 0.1]}, "cohorts"),
    ({"rolloutz": {}}, "unknown"),
])
def test_invalid_rollout_configs_are_refused_with_the_field_named(doc, field):
    with pytest.raises(RolloutConfigError, match=field):
        RolloutConfig.from_json(doc)


def test_exponential_rate_cohorts_and_abort():
    config = RolloutConfig(maximum_per_minute=100, base_rate_per_minute=10, increment_factor=2.0, increase_after=5,
                           increase_on="numberOfNotifiedThings", abort=(AbortCriterion("ALL", 5, 40.0),),
                           cohorts=(0.01, 0.1, 1.0), cohort_gate=1.0)
    things = [f"t{i}" for i in range(1000)]
    rollout = Rollout("job", things, {}, config)
    first = rollout.due(0.0)
    assert len(first) == 1  # the canary cohort is 1% = 10 things, but the rate starts at 10/min
    assert rollout.due(0.5) == []  # the canary (10 things) is not done: nothing beyond it... yet within rate
    notified = first + rollout.due(60.0)
    assert len(notified) == 10 and rollout.due(120.0) == []  # the 10% cohort waits for the canary
    assert rollout.rate > 10  # 10 notifications doubled the rate once
    for i, thing in enumerate(notified):
        rollout.record(thing, "IN_PROGRESS", {}, 130.0)
        rollout.record(thing, "FAILED" if i < 4 else "SUCCEEDED", {}, 131.0)
    rollout.tick(132.0)
    assert rollout.status == "CANCELED" and "4 of 10" in rollout.abort_reason
    assert rollout.counts()["CANCELED"] == 990


def test_a_finished_canary_that_crossed_the_threshold_opens_no_further_cohort():
    """Updates that finish the canary and cross the abort threshold arrive between two steps: the next step
    must abort before it tells anyone else (the check used to run after the notifications)."""
    config = RolloutConfig(base_rate_per_minute=None, maximum_per_minute=1000, cohorts=(0.5, 1.0), cohort_gate=1.0,
                           abort=(AbortCriterion("FAILED", 1, 50.0),))
    campaign = Campaign(Rollout("job", ["a", "b", "c", "d"], {}, config, burst=1000.0),
                        rollback_document={"operation": "rollback"})
    canary = [thing for _, thing in campaign.step(0.0)]
    assert len(canary) == 2
    for thing in canary:
        campaign.rollout.record(thing, "IN_PROGRESS", {}, 1.0)
        campaign.rollout.record(thing, "FAILED", {}, 2.0)
    sent = campaign.step(3.0)
    assert campaign.rollout.status == "CANCELED"
    assert sorted(campaign.rollout.exposed()) == sorted(canary)
    assert all(job is campaign.rollback for job, _ in sent) and sorted(t for _, t in sent) == sorted(canary)


def test_in_progress_timeout():
    rollout = Rollout("job", ["a"], {}, RolloutConfig(base_rate_per_minute=None, in_progress_timeout_minutes=1,
                                                      abort=(), cohorts=(1.0,)))
    rollout.due(0.0)
    rollout.record("a", "IN_PROGRESS", {}, 1.0)
    rollout.tick(62.0)
    assert rollout.executions["a"].status == "TIMED_OUT"


@pytest.mark.e2e
@pytest.mark.usefixtures("mosquitto")
def test_a_bad_release_aborts_and_no_device_stays_on_it_then_a_good_one_reaches_all(repo, tmp_path):
    from tests.edge.test_edge_power_loss import factory_device, start_agent

    fleet, root_json = new_devices(repo, tmp_path, "fleet", 4)
    status_lake = repo.lake
    config = RolloutConfig(base_rate_per_minute=None, maximum_per_minute=1000, cohorts=(0.5, 1.0), cohort_gate=1.0,
                           abort=(AbortCriterion("FAILED", 1, 50.0),), in_progress_timeout_minutes=5)
    with BundleServer(repo.root) as server:
        for device in fleet:
            factory_device(repo, server.url, tmp_path / device, device)
        procs = [start_agent(d, tmp_path / d, server.url, root_json) for d in fleet]
        try:
            bad = plan_campaign(repo.repo, fleet, config, target=repo.releases["bad"], job_id=f"bad-{uuid.uuid4().hex[:6]}")
            assert bad.rollback_document == {"operation": "rollback", "from": repo.releases["bad"].path,
                                             "target": repo.releases["challenger"].path}
            run_local_rollout(status_lake, bad, host="127.0.0.1", port=1883, prefix="$aws", timeout=90)
            assert bad.rollout.status == "CANCELED"
            exposed = bad.rollout.exposed()
            assert 1 <= len(exposed) <= 2  # the canary cohort only
            assert bad.rollback is not None and bad.rollback.status == "COMPLETED"
            assert set(bad.rollback.executions) == set(exposed)
            for device in fleet:
                current = json.loads((tmp_path / device / "current.json").read_text())
                assert current["sha256"] == repo.releases["champion"].sha256
            summary = device_status.summary(device_status.read(status_lake), bad.rollout.job_id)
            assert summary["rollout_status"] == "CANCELED" and summary["states"].get("FAILED", 0) >= 1
            assert summary["rollback"] == {"SUCCEEDED": len(exposed)}
            good = plan_campaign(repo.repo, fleet, config, target=repo.releases["challenger"],
                                 job_id=f"good-{uuid.uuid4().hex[:6]}")
            run_local_rollout(status_lake, good, host="127.0.0.1", port=1883, prefix="$aws", timeout=90)
            assert good.rollout.status == "COMPLETED" and good.rollout.counts() == {"SUCCEEDED": len(fleet)}
            summary = device_status.summary(device_status.read(status_lake))
            assert summary["job_id"] == good.rollout.job_id
            assert summary["versions"] == {repo.releases["challenger"].model_version: len(fleet)}
            assert "100%" in "\n".join(device_status.render(summary))
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(10)


def test_campaign_sends_the_rollback_to_every_exposed_device():
    config = RolloutConfig(base_rate_per_minute=None, abort=(AbortCriterion("FAILED", 1, 10.0),), cohorts=(1.0,))
    campaign = Campaign(Rollout("job", ["a", "b", "c"], {}, config, burst=3.0), rollback_document={"target": "old"})
    sent = campaign.step(0.0)
    assert len(sent) == 3  # a burst of three: all are told
    thing = sent[0][1]
    campaign.rollout.record(thing, "FAILED", {}, 1.0)  # one fails; the other two may have taken the bundle too
    sent = campaign.step(2.0)
    assert campaign.rollout.status == "CANCELED"
    rollback = sorted(t for job, t in sent if job.job_id == "job-rollback")
    assert rollback == sorted(campaign.rollout.exposed()) == ["a", "b", "c"]
    assert campaign.step(3.0) == [] and not campaign.done
    for t in rollback:
        campaign.rollback.record(t, "SUCCEEDED", {}, 4.0)
    campaign.step(5.0)
    assert campaign.done


@pytest.mark.e2e
@pytest.mark.usefixtures("mosquitto")
def test_the_rollout_asset_drives_the_local_fleet_and_lands_device_status(repo, tmp_path):
    from dagster import materialize

    from assets.edge import edge_rollout
    from resources.edge import EdgeResource
    from resources.lake import LocalLakeResource
    from tests.edge.test_edge_power_loss import factory_device, start_agent

    fleet, root_json = new_devices(repo, tmp_path, "asset", 2)
    rollout = {"jobExecutionsRolloutConfig": {"maximumPerMinute": 1000},
               "abortConfig": {"criteriaList": [{"failureType": "FAILED", "action": "CANCEL",
                                                 "thresholdPercentage": 50, "minNumberOfExecutedThings": 1}]},
               "timeoutConfig": {"inProgressTimeoutInMinutes": 5}, "cohorts": [0.5, 1.0], "cohortGate": 1.0}
    with BundleServer(repo.root) as server:
        for device in fleet:
            factory_device(repo, server.url, tmp_path / device, device)
        procs = [start_agent(d, tmp_path / d, server.url, root_json) for d in fleet]
        try:
            edge = EdgeResource(fleet=",".join(fleet), rollout_config=json.dumps(rollout), rollout_timeout_seconds=60)
            result = materialize([edge_rollout], resources={"lake": LocalLakeResource(root=repo.lake.root), "edge": edge})
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(10)
    assert result.success
    by_key = {e.asset_key.to_user_string(): e.event_specific_data.materialization
              for e in result.get_asset_materialization_events()}
    assert by_key["edge/rollout"].metadata["status"].value == "CANCELED"  # the newest release is the bad drill
    assert by_key["edge/device_status"].metadata["dagster/row_count"].value >= len(fleet) + 1
    for device in fleet:
        assert json.loads((tmp_path / device / "current.json").read_text())["sha256"] == repo.releases["champion"].sha256


def test_status_lines_say_how_a_rollout_went() -> None:
    base = {"job_id": "j1", "total": 2, "done": 2, "versions": {"1": 2}, "rollback": {}}
    failed = device_status.render({**base, "rollout_status": "COMPLETED", "states": {"FAILED": 2}})
    assert failed[0] == "job j1: COMPLETED, failed on every device (2)"
    assert "finished 2/2 (100%)" in failed[1] and failed[2] == "states:   FAILED 2"
    mixed = device_status.render({**base, "rollout_status": "COMPLETED", "states": {"SUCCEEDED": 1, "TIMED_OUT": 1}})
    assert mixed[0] == "job j1: COMPLETED, 1 succeeded, 1 failed"
    empty = device_status.render({"job_id": None})
    assert empty == ["no rollout recorded: edge/device_status is empty (`tributary edge rollout` records one; "
                     "`tributary edge simulate` runs a fleet in memory and writes no rows: the UI shows its figures as an "
                     "observation of edge/rollout)"]
