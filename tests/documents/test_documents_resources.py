"""The document store resource per profile: fields from the environment when set, defaults otherwise."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from dagster import EnvVar

from pipelines.documents import DocumentError
from pipelines.documents.store import DynamoDocumentStore, FolderDocumentStore
from resources import ProfileError
from resources.documents import DynamoDocumentStoreResource, FolderDocumentStoreResource, documents_resource


def test_local_profile_is_a_folder_under_tributary_home(tmp_path: Path) -> None:
    resource = documents_resource("local")
    assert isinstance(resource, FolderDocumentStoreResource) and resource.folder == str(tmp_path / "home" / "documents")
    store = resource.get_store()
    assert isinstance(store, FolderDocumentStore) and (tmp_path / "home" / "documents").is_dir()


def test_localstack_and_aws_profiles_are_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    local = documents_resource("localstack")
    assert isinstance(local, DynamoDocumentStoreResource)
    assert (local.table, local.endpoint_url, local.create_table) == ("tributary-documents", "http://127.0.0.1:4566", True)
    monkeypatch.setenv("TRIBUTARY_DOCUMENTS_TABLE", "prod-docs")
    aws = documents_resource("aws")
    assert aws.table == EnvVar("TRIBUTARY_DOCUMENTS_TABLE") and aws.endpoint_url is None and not aws.create_table
    assert aws.process_config_and_initialize().table == "prod-docs"
    with pytest.raises(ProfileError, match="unknown TRIBUTARY_PROFILE 'prod'"):
        documents_resource("prod")


def test_localstack_profile_creates_its_table_on_the_moto_server(s3_env: dict, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    table = f"docs-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("TRIBUTARY_DOCUMENTS_TABLE", table)
    store = documents_resource("localstack").process_config_and_initialize().get_store()
    assert isinstance(store, DynamoDocumentStore) and store.endpoint_url == s3_env["AWS_ENDPOINT_URL"]
    assert store.client.describe_table(TableName=table)["Table"]["TableStatus"] == "ACTIVE"
    assert store.read_since({}) == []


def test_misconfigured_store_is_one_line() -> None:
    with pytest.raises(DocumentError, match="needs a table name"):
        DynamoDocumentStoreResource().get_store()
    with pytest.raises(DocumentError, match="needs a folder"):
        FolderDocumentStoreResource().get_store()
