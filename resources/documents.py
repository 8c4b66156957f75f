"""The document store as a Dagster resource: one interface, a folder on `local`, DynamoDB on `localstack` and `aws`.

Also carries the documents stage's landing prefix (in the lake) and the limits a single document must keep.
"""

from __future__ import annotations

import os

from dagster import ConfigurableResource
from pydantic import Field

from pipelines.documents import LANDING, DocumentError
from pipelines.documents.safety import Limits
from pipelines.documents.store import DocumentStore, DynamoDocumentStore, FolderDocumentStore
from resources.aws import AwsConnection, aws_connection
from resources.profiles import check_profile, env, home

DEFAULT_TABLE = "tributary-documents"


class DocumentStoreResource(ConfigurableResource):
    """Where JSON maintenance records arrive (a NoSQL table), and where other documents land (a lake prefix)."""

    landing_prefix: str = Field(default=LANDING, description="Lake prefix that producers drop files under.")
    max_document_bytes: int = Field(default=Limits.max_document_bytes, description="Larger files are refused.")
    max_image_pixels: int = Field(default=Limits.max_image_pixels, description="Larger images are refused unread.")
    max_documents_per_run: int = Field(default=5_000, description="Landing takes at most this many per run.")
    ocr_threads: int = Field(default=0, description="Threads of the OCR model; 0 picks min(4, cores).")

    def get_store(self) -> DocumentStore:
        """The store, checked: raises DocumentError with one clear line when it cannot be used."""
        store = self._store()
        store.ensure()
        return store

    def _store(self) -> DocumentStore:
        raise NotImplementedError(f"{type(self).__name__} is an interface: use a folder or DynamoDB store")

    def limits(self) -> Limits:
        return Limits(max_document_bytes=self.max_document_bytes, max_image_pixels=self.max_image_pixels)


class FolderDocumentStoreResource(DocumentStoreResource):
    """The embedded store: a folder (`local`)."""

    folder: str | None = Field(default=None, description="The folder of the embedded store.")

    def _store(self) -> DocumentStore:
        if not self.folder:
            raise DocumentError("the folder document store needs a folder (TRIBUTARY_DOCUMENTS_DIR)")
        return FolderDocumentStore(self.folder)


class DynamoDocumentStoreResource(DocumentStoreResource, AwsConnection):
    """A DynamoDB table (`localstack`, `aws`)."""

    table: str | None = Field(default=None, description="The DynamoDB table.")
    create_table: bool = Field(default=False, description="Create a missing table (test endpoints only).")

    def _store(self) -> DocumentStore:
        if not self.table:
            raise DocumentError("the DynamoDB document store needs a table name (TRIBUTARY_DOCUMENTS_TABLE)")
        return DynamoDocumentStore(self.table, **self.connection(), create=self.create_table)


def documents_resource(profile: str) -> DocumentStoreResource:
    """The document store of a profile; fields come from environment variables when set (read at use time)."""
    common = {"landing_prefix": env("TRIBUTARY_DOCUMENTS_LANDING", LANDING),
              "ocr_threads": env("TRIBUTARY_OCR_THREADS", 0, kind=int)}
    if check_profile(profile) == "local":
        return FolderDocumentStoreResource(
            folder=env("TRIBUTARY_DOCUMENTS_DIR", os.path.join(home(), "documents")), **common)
    return DynamoDocumentStoreResource(
        table=env("TRIBUTARY_DOCUMENTS_TABLE", DEFAULT_TABLE), **aws_connection(profile),
        create_table=profile == "localstack", **common)
