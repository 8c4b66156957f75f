"""The `aws` side of a rollout: one AWS IoT job with the same rollout, abort and timeout config. No Dagster.

The job document names the TUF target; the device still verifies everything through TUF, so the document
is a pointer, not a trust anchor (AWS code signing of the document is unnecessary with TUF behind it).
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from pipelines.edge.jobs import RolloutConfig
from pipelines.edge.repository import Release


class IotError(RuntimeError):
    """AWS IoT refused or could not be reached; one line says why."""


def job_document(release: Release, *, repository_url: str, operation: str = "install") -> dict[str, Any]:
    return {"operation": operation, "target": release.path, "repository": repository_url,
            "sha256": release.sha256, "length": release.length, "modelVersion": release.model_version}


def iot_client(*, region: str, endpoint_url: str | None = None, access_key_id: str | None = None,
               secret_access_key: str | None = None, session_token: str | None = None):
    import boto3  # noqa: PLC0415 - start-up: boto3 ~0.3 s

    return boto3.client("iot", region_name=region, endpoint_url=endpoint_url, aws_access_key_id=access_key_id,
                        aws_secret_access_key=secret_access_key, aws_session_token=session_token)


def create_job(client, *, job_id: str, targets: list[str], document: dict, config: RolloutConfig,
               description: str = "") -> dict[str, Any]:
    """CreateJob with the rollout, abort and timeout config; returns jobId and jobArn."""

    if not targets:
        raise IotError("an IoT job needs at least one target (thing or thing-group ARN)")
    try:
        response = client.create_job(jobId=job_id, targets=targets, document=json.dumps(document, sort_keys=True),
                                     description=description[:2028], targetSelection="SNAPSHOT", **config.to_iot())
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise IotError(f"AWS IoT refused job {job_id}: {error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise IotError(f"cannot reach AWS IoT: {exc}") from None
    return {"jobId": response["jobId"], "jobArn": response["jobArn"]}


def cancel_job(client, job_id: str, reason: str) -> None:
    client.cancel_job(jobId=job_id, reasonCode="ABORTED_BY_TRIBUTARY", comment=reason[:2028], force=False)
