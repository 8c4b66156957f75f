"""End to end on the `localstack` profile: DynamoDB and S3 on a moto server, the CLI in a subprocess, the
documents group materialized, and `search --format json` answering a known query."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import pytest
from dagster import DagsterInstance, materialize

from assets.documents import document_assets, document_checks
from pipelines.synthetic.documents import generate

pytestmark = pytest.mark.e2e

COUNTS = {"records": 10, "reports": 2, "scans": 1, "emails": 2}


def cli(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.documents.cli", *args], env={**os.environ, **env},
                          cwd=cwd, capture_output=True, text=True, timeout=600)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_produce_land_read_and_search_on_dynamodb_and_s3(s3_env: dict, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    table = f"docs-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TRIBUTARY_DOCUMENTS_TABLE", table)
    env = {**s3_env, "TRIBUTARY_DOCUMENTS_TABLE": table}
    args = [f"--{k}={v}" for k, v in COUNTS.items()]
    produced = cli("docs", "produce", "--seed", "17", *args, "--hostile", env=env, cwd=tmp_path)
    assert produced.returncode == 0, produced.stderr
    assert f"into DynamoDB table '{table}'" in produced.stdout and "s3://" in produced.stdout

    ddb = boto3.client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    assert ddb.scan(TableName=table, Select="COUNT")["Count"] == COUNTS["records"] + 2  # + two hostile records

    from resources import build_resources
    from resources.documents import documents_resource

    resources = {"lake": build_resources("localstack")["lake"], "documents": documents_resource("localstack")}
    result = materialize(document_assets + document_checks, resources=resources,
                         instance=DagsterInstance.ephemeral())
    assert result.success
    landed = {e.event_specific_data.materialization.asset_key.to_user_string():
              e.event_specific_data.materialization.metadata for e in result.get_asset_materialization_events()}
    assert landed["raw/documents"]["refused"].value == 1  # the oversize email
    assert landed["standardized/document_text"]["ocr_images"].value >= 1

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    bucket = env["TRIBUTARY_LAKE_ROOT"].removeprefix("s3://")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="raw/documents/")["Contents"]]
    assert any(k.startswith("raw/documents/_manifests/") for k in keys) and "raw/documents/_state.json" in keys
    from pipelines.core import delta

    lake = resources["lake"].process_config_and_initialize().get_lake()
    refused = dict(delta.scan(lake, "quarantine/document_text").select("doc_id", "rule").collect().iter_rows())
    assert refused == {"mr-hostile-truncated": "invalid_json", "mr-hostile-no-tail": "missing_field",
                       "ir-hostile-billion-laughs": "xml_forbidden", "ir-hostile-xxe": "xml_forbidden",
                       "wo-hostile-bomb": "image_too_large", "wo-hostile-truncated": "unreadable_image"}

    corpus = generate(seed=17, **COUNTS)
    query = corpus.known_queries()[0]
    found = cli("search", query.query, "--k", "3", "--format", "json", env=env, cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    answer = json.loads(found.stdout)
    assert {h["text_id"] for h in answer["hits"]} & set(query.answers), (query, answer)
    assert answer["hits"][0]["tailnum"] and answer["hits"][0]["plane"]
    assert any("warehouse/dim_plane is not built" in n for n in answer["notes"])


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["search", "brake wear"], {}, "no documents are searchable yet"),
        (["docs", "produce", "--records", "1"], {"TRIBUTARY_PROFILE": "localstack", "AWS_ENDPOINT_URL": "CLOSED"},
         "cannot reach DynamoDB table 'tributary-documents'"),
        (["search", "x"], {"TRIBUTARY_PROFILE": "localstack", "AWS_ENDPOINT_URL": "CLOSED"}, "cannot reach the lake"),
        (["search", "x"], {"TRIBUTARY_PROFILE": "staging"}, "unknown TRIBUTARY_PROFILE 'staging'"),
    ],
    ids=["empty-lake", "unreachable-dynamodb", "unreachable-s3", "bad-profile"],
)
def test_bad_input_is_one_clear_line(args: list[str], env: dict, message: str, tmp_path: Path) -> None:
    env = {k: f"http://127.0.0.1:{_closed_port()}" if v == "CLOSED" else v for k, v in env.items()}
    env = {"TRIBUTARY_HOME": str(tmp_path / "home"), "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           **env}
    result = cli(*args, env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: ") and message in lines[-1], result.stderr
    assert "Traceback" not in result.stderr
