"""The fleet simulator: every fault at once on a few hundred devices, and a bad-release drill."""

from __future__ import annotations

import pytest

from pipelines.edge import agent
from pipelines.synthetic.fleet import FAULTS, simulate


def _run(repo, edge_models, target, devices=140, faults=0.5):
    factory = repo.releases["champion"]
    return simulate(repo.root, root_json=repo.repo.root_bytes(), factory=(factory, edge_models.champion.data),
                    target=target, devices=devices, faults=faults, workers=4, seed=3)


@pytest.mark.e2e
def test_a_faulty_fleet_converges_with_no_bricked_device(repo, edge_models):
    result = _run(repo, edge_models, repo.releases["challenger"])
    f = result.figures
    assert set(f["faults"]) == set(FAULTS)
    assert f["bricked_devices"] == 0
    assert f["share_on_new_release"] == 1.0
    assert f["rollout_status"] == "COMPLETED"
    assert f["reboots_after_power_loss"] == f["faults"]["power"]
    assert f["bundle_bytes_downloaded"] >= f["bundle_bytes_minimum"] > 0


@pytest.mark.e2e
def test_a_bad_release_drill_aborts_and_rolls_every_exposed_device_back(repo, edge_models):
    result = _run(repo, edge_models, repo.releases["bad"], devices=300, faults=0.1)
    f = result.figures
    assert f["rollout_status"] == "CANCELED"
    assert f["devices_left_on_bad_release"] == 0 and f["bricked_devices"] == 0
    assert f["exposed_before_abort"] >= 1
    assert f["rollback_job_states"] == {"SUCCEEDED": f["exposed_before_abort"]}


@pytest.mark.e2e
def test_without_the_ab_swap_a_bad_release_bricks_devices_and_the_counter_rises(repo, edge_models, monkeypatch):
    """Negative control for `bricked_devices == 0` above: a device that installs into the slot it runs (no A/B
    swap) has nothing left to boot when the release's self-test fails, and the counter counts it."""
    monkeypatch.setattr(agent, "_other", lambda slot: slot)
    result = _run(repo, edge_models, repo.releases["bad"], devices=60, faults=0)
    f = result.figures
    assert f["rollout_status"] == "CANCELED"
    assert f["bricked_devices"] >= f["exposed_before_abort"] >= 1


def test_every_attack_is_refused_by_every_device(repo, edge_models):
    from pipelines.synthetic.fleet import ATTACKS, run_attacks

    factory = repo.releases["champion"]
    results = run_attacks(repo.root, repo.keys, root_json=repo.repo.root_bytes(),
                          factory=(factory, edge_models.champion.data), target=repo.releases["challenger"], devices=5)
    assert set(results) == set(ATTACKS)
    for attack, r in results.items():
        assert r["refused"] == r["devices"] == r["still_on_trusted_model"], (attack, r)
