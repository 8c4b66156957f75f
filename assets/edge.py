"""Edge group: the champion as a TUF-signed bundle in the lake, its staged rollout, and the fleet's status."""

from collections.abc import Iterator

from dagster import (AssetExecutionContext, AssetKey, AssetSpec, Config, Definitions, MaterializeResult, MetadataValue,
                     multi_asset)
from pydantic import Field

from assets.common import optional_asset
from assets.ml import EVALUATION_KEY
from resources.edge import EdgeResource, IotEdgeResource
from resources.lake import LakeResource
from resources.ml import MlflowResource
from pipelines.edge import status as device_status
from pipelines.edge.iot import create_job, job_document
from pipelines.edge.repository import Repository

GROUP = "edge"
BUNDLE_KEY = AssetKey(["edge", "delay_model_bundle"])
ROLLOUT_KEY = AssetKey(["edge", "rollout"])
STATUS_KEY = AssetKey.from_user_string(device_status.TABLE)


class BundleConfig(Config):
    version: str = Field(default="champion", description="The registered version or alias to bundle.")
    bad_release: bool = Field(default=False, description="Publish a drill bundle whose self-test fails.")


class RolloutRunConfig(Config):
    things: list[str] = Field(default_factory=list, description="Devices; the edge resource's fleet when empty.")
    timeout_seconds: float | None = Field(default=None, description="Local controller wait; the resource's if unset.")


@optional_asset(BUNDLE_KEY, group=GROUP, deps=[EVALUATION_KEY], kinds={"xgboost", "tuf"},
                description="The champion as a device bundle (booster, spec, self-test, manifest), signed into the "
                            "TUF repository.")
def delay_model_bundle(context: AssetExecutionContext, config: BundleConfig, lake: LakeResource,
                       mlflow: MlflowResource, edge: EdgeResource) -> Iterator[MaterializeResult]:
    """Skipped (with the reason in the log) when the version's bundle is already published: same bytes, no release."""
    from pipelines.edge.release import publish_model  # noqa: PLC0415 - start-up: pulls in scikit-learn ~2.4 s

    the_lake = lake.get_lake()
    release, new = publish_model(the_lake, mlflow.settings(), edge.key_dir, version_or_alias=config.version,
                                 bad=config.bad_release, prefix=edge.repository_prefix, log=context.log.info)
    if not new:
        return
    yield MaterializeResult(metadata=bundle_metadata(the_lake, release, edge.repository_prefix))


def bundle_metadata(the_lake, release, prefix: str) -> dict:
    """What a published bundle reports: the asset's, and `tributary edge publish`'s."""
    return {
        "target": release.path,
        "model_version": release.model_version,
        "release": release.release,
        "bundle_bytes": release.length,
        "sha256": release.sha256,
        "bad_release_drill": release.bad,
        "dagster/uri": MetadataValue.path(the_lake.uri(f"{prefix}/targets/{release.sha256}.{release.path}")),
        "repository": MetadataValue.path(the_lake.uri(prefix)),
    }


@multi_asset(
    specs=[
        AssetSpec(ROLLOUT_KEY, group_name=GROUP, deps=[BUNDLE_KEY], kinds={"mqtt"},
                  description="A staged rollout with IoT Jobs rollout, abort and timeout config; rolls back on abort."),
        AssetSpec(STATUS_KEY, group_name=GROUP, deps=[ROLLOUT_KEY], kinds={"delta"},
                  description="One row per device and job: state, model version, reason (MERGE on device_id + job_id)."),
    ],
    can_subset=False,
)
def edge_rollout(context: AssetExecutionContext, config: RolloutRunConfig, lake: LakeResource,
                 edge: EdgeResource) -> Iterator[MaterializeResult]:
    """local: the controller over MQTT against the fleet; aws: one IoT job (CreateJob) with the same config."""

    the_lake = lake.get_lake()
    repo = Repository(the_lake, edge.repository_prefix)
    release = repo.latest()
    if release is None:
        raise ValueError("nothing to roll out: the edge repository has no release")
    rollout_config = edge.rollout()
    if isinstance(edge, IotEdgeResource):
        job_id = f"delay-model-release-{release.release}"
        created = create_job(edge.iot(), job_id=job_id, targets=edge.targets(),
                             document=job_document(release, repository_url=edge.repository_url),
                             config=rollout_config, description=f"delay_model v{release.model_version}")
        yield MaterializeResult(asset_key=ROLLOUT_KEY, metadata={
            "job_id": created["jobId"], "job_arn": created["jobArn"], "target": release.path,
            "rollout_config": MetadataValue.json(rollout_config.to_json())})
        yield MaterializeResult(asset_key=STATUS_KEY, metadata={"note": "AWS IoT Jobs holds execution status"})
        return
    from pipelines.edge.release import plan_campaign, run_local_rollout  # noqa: PLC0415 - start-up: pulls in scikit-learn ~2.4 s

    things = config.things or edge.things()
    if not things:
        raise ValueError("no devices to roll out to: set TRIBUTARY_EDGE_FLEET or the run config's things")
    campaign = plan_campaign(repo, things, rollout_config, target=release)
    run_local_rollout(the_lake, campaign, host=edge.mqtt_host, port=edge.mqtt_port, prefix=edge.topic_prefix,
                      timeout=config.timeout_seconds or edge.rollout_timeout_seconds)
    if campaign.rollout.status == "CANCELED":
        context.log.warning(f"rollout {campaign.rollout.job_id} aborted: {campaign.rollout.abort_reason}")
    rollout, status = local_rollout_metadata(the_lake, campaign, rollout_config)
    yield MaterializeResult(asset_key=ROLLOUT_KEY, metadata=rollout)
    yield MaterializeResult(asset_key=STATUS_KEY, metadata=status)


def local_rollout_metadata(the_lake, campaign, rollout_config) -> tuple[dict, dict]:
    """What a local rollout reports for edge/rollout and edge/device_status: the asset's, and `tributary edge
    rollout`'s."""
    rollout = campaign.rollout
    summary = device_status.summary(device_status.read(the_lake), rollout.job_id)
    return {
        "job_id": rollout.job_id, "target": rollout.document["target"], "status": rollout.status,
        "abort_reason": rollout.abort_reason or "", "states": MetadataValue.json(rollout.counts()),
        "rollback_states": MetadataValue.json(campaign.rollback.counts() if campaign.rollback else {}),
        "rollout_config": MetadataValue.json(rollout_config.to_json()),
    }, {
        "dagster/row_count": sum(len(j.executions) for j in campaign.jobs()),
        "dagster/uri": MetadataValue.path(the_lake.uri(device_status.TABLE)),
        "versions": MetadataValue.json(summary["versions"]),
        "preview": MetadataValue.md("\n\n".join(device_status.render(summary))),
    }


defs = Definitions(assets=[delay_model_bundle, edge_rollout])
