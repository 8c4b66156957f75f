"""The document store as a Dagster resource: a folder on `local`, DynamoDB on `localstack` and `aws`.

Also carries the documents stage's landing prefix (in the lake) and the limits a single document must keep.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from dagster import ConfigurableResource
from pydantic import Field

from pipelines.documents import LANDING, DocumentError
from pipelines.documents.safety import Limits
from pipelines.documents.store import DocumentStore, DynamoDocumentStore, FolderDocumentStore

DEFAULT_TABLE = "tributary-documents"


class DocumentStoreResource(ConfigurableResource):
    """Where JSON maintenance records arrive (a NoSQL table), and where other documents land (a lake prefix)."""

    backend: Literal["folder", "dynamodb"] = Field(default="folder", description="folder (local) or dynamodb.")
    folder: str | None = Field(default=None, description="The folder of the embedded store (backend=folder).")
    table: str | None = Field(default=None, description="The DynamoDB table (backend=dynamodb).")
    region: str = "us-east-1"
    endpoint_url: str | None = Field(default=None, description="DynamoDB-compatible endpoint (LocalStack, moto).")
    access_key_id: str | None = None
    secret_access_key: str | None = None
    session_token: str | None = None
    create_table: bool = Field(default=False, description="Create a missing table (test endpoints only).")
    landing_prefix: str = Field(default=LANDING, description="Lake prefix that producers drop files under.")
    max_document_bytes: int = Field(default=Limits.max_document_bytes, description="Larger files are refused.")
    max_image_pixels: int = Field(default=Limits.max_image_pixels, description="Larger images are refused unread.")
    max_documents_per_run: int = Field(default=5_000, description="Landing takes at most this many per run.")

    def get_store(self) -> DocumentStore:
        """The store, checked: raises DocumentError with one clear line when it cannot be used."""
        if self.backend == "folder":
            if not self.folder:
                raise DocumentError("the folder document store needs a folder (TRIBUTARY_DOCUMENTS_DIR)")
            store: DocumentStore = FolderDocumentStore(self.folder)
        else:
            if not self.table:
                raise DocumentError("the DynamoDB document store needs a table name (TRIBUTARY_DOCUMENTS_TABLE)")
            store = DynamoDocumentStore(
                self.table,
                region=self.region,
                endpoint_url=self.endpoint_url,
                access_key_id=self.access_key_id,
                secret_access_key=self.secret_access_key,
                session_token=self.session_token,
                create=self.create_table,
            )
        store.ensure()
        return store

    def limits(self) -> Limits:
        return Limits(max_document_bytes=self.max_document_bytes, max_image_pixels=self.max_image_pixels)


def documents_resource(profile: str) -> DocumentStoreResource:
    """The document store of a profile; fields come from environment variables when set (read at use time)."""
    from resources import PROFILES, ProfileError, _env, home  # here, not at import: resources/__init__ imports us

    if profile not in PROFILES:
        raise ProfileError(f"unknown TRIBUTARY_PROFILE {profile!r}: use one of {', '.join(PROFILES)}")
    landing = _env("TRIBUTARY_DOCUMENTS_LANDING", LANDING)
    if profile == "local":
        return DocumentStoreResource(
            backend="folder",
            folder=_env("TRIBUTARY_DOCUMENTS_DIR", os.path.join(home(), "documents")),
            landing_prefix=landing,
        )
    keys: tuple[Any, Any] = ("test", "test") if profile == "localstack" else (None, None)
    return DocumentStoreResource(
        backend="dynamodb",
        table=_env("TRIBUTARY_DOCUMENTS_TABLE", DEFAULT_TABLE),
        region=_env("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")),
        endpoint_url=_env("AWS_ENDPOINT_URL", "http://127.0.0.1:4566" if profile == "localstack" else None),
        access_key_id=_env("AWS_ACCESS_KEY_ID", keys[0]),
        secret_access_key=_env("AWS_SECRET_ACCESS_KEY", keys[1]),
        session_token=_env("AWS_SESSION_TOKEN", None),
        create_table=profile == "localstack",
        landing_prefix=landing,
    )
