"""AWS side: the moto IoT job carries the rollout and abort config; the deploy files are valid and narrow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.edge.iot import create_job, iot_client, job_document
from pipelines.edge.jobs import RolloutConfig

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "edge"


def test_rollout_json_parses_and_matches_create_job():
    config = RolloutConfig.from_json(json.loads((DEPLOY / "rollout.json").read_text()))
    assert config.cohorts == (0.01, 0.1, 1.0)
    doc = json.loads((DEPLOY / "rollout.json").read_text())
    assert config.to_iot() == {k: doc[k] for k in ("jobExecutionsRolloutConfig", "abortConfig", "timeoutConfig")}


def test_policies_are_least_privilege():
    policy = json.loads((DEPLOY / "iam-policy.json").read_text())
    for statement in policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions)
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(r != "*" for r in resources)
    s3 = [s for s in policy["Statement"] if any(a.startswith("s3:") for a in s["Action"])]
    assert all("edge/repository" in json.dumps(s) for s in s3)
    device = json.loads((DEPLOY / "device-policy.json").read_text())
    assert all("${iot:Connection.Thing.ThingName}" in json.dumps(s["Resource"]) for s in device["Statement"])
    document = json.loads((DEPLOY / "job-document.json").read_text())
    assert {"operation", "target", "sha256", "length"} <= set(document)


@pytest.mark.e2e
def test_the_iot_job_on_moto_carries_the_rollout_and_abort_config(s3_endpoint, repo):
    client = iot_client(region="us-east-1", endpoint_url=s3_endpoint, access_key_id="test", secret_access_key="test")
    thing = client.create_thing(thingName="edge-thing-1")
    config = RolloutConfig.from_json(json.loads((DEPLOY / "rollout.json").read_text()))
    release = repo.releases["challenger"]
    created = create_job(client, job_id="delay-model-release-2", targets=[thing["thingArn"]],
                         document=job_document(release, repository_url="http://edge.example"), config=config)
    job = client.describe_job(jobId=created["jobId"])["job"]
    assert job["jobExecutionsRolloutConfig"] == config.to_iot()["jobExecutionsRolloutConfig"]
    assert job["abortConfig"] == config.to_iot()["abortConfig"]
    assert job["timeoutConfig"] == config.to_iot()["timeoutConfig"]
    document = json.loads(client.get_job_document(jobId=created["jobId"])["document"])
    assert document["target"] == release.path and document["sha256"] == release.sha256


@pytest.mark.e2e
def test_the_rollout_asset_on_the_iot_path_creates_the_job(s3_endpoint, repo):
    from dagster import materialize

    from assets.edge import edge_rollout
    from resources.edge import IotEdgeResource
    from resources.lake import LocalLakeResource

    client = iot_client(region="us-east-1", endpoint_url=s3_endpoint, access_key_id="test", secret_access_key="test")
    thing = client.create_thing(thingName="edge-thing-asset")
    edge = IotEdgeResource(endpoint_url=s3_endpoint, access_key_id="test", secret_access_key="test",
                           iot_targets=thing["thingArn"], rollout_config=str(DEPLOY / "rollout.json"))
    result = materialize([edge_rollout], resources={"lake": LocalLakeResource(root=repo.lake.root), "edge": edge})
    assert result.success
    [mat] = result.asset_materializations_for_node("edge_rollout")[:1]
    job_id = mat.metadata["job_id"].value
    assert job_id == f"delay-model-release-{repo.releases['bad'].release}"
    job = client.describe_job(jobId=job_id)["job"]
    assert job["abortConfig"]["criteriaList"][0]["minNumberOfExecutedThings"] == 10


@pytest.mark.e2e
def test_the_repository_publishes_to_s3_with_the_timestamp_last(s3_endpoint, edge_models):
    import uuid

    from pipelines.edge import keys as keyring
    from pipelines.edge.repository import Repository
    from pipelines.core.lake import Lake

    lake = Lake(f"s3://edge-{uuid.uuid4().hex[:10]}", endpoint_url=s3_endpoint, access_key_id="test",
                secret_access_key="test")
    lake.check(create=True)
    repository = Repository(lake)
    keys = keyring.load(edge_models.key_dir)
    release = repository.publish(edge_models.champion.name, edge_models.champion.data, keys,
                                 custom={"model_version": edge_models.champion.model_version})
    again = repository.publish(edge_models.champion.name, edge_models.champion.data, keys)
    assert again == release and [r.path for r in repository.releases()] == [release.path]
    assert lake.read_bytes(f"edge/repository/targets/{release.sha256}.{release.path}") == edge_models.champion.data
    _, timestamp, snapshot, targets = repository.current()
    assert (timestamp.signed.version, snapshot.signed.version, targets.signed.version) == (2, 2, 2)
