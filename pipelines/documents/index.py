"""The search index: every embedded chunk with its document's metadata and its plane from `warehouse/dim_plane`.

This is where the documents meet the warehouse: one table keyed by text and chunk, joined to the plane dimension
by tail number, built by the `warehouse/document_index` asset and read by `tributary search`. The index records
the versions of the two document tables it was built from, so a search never reads an index older than them.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.documents import DOCUMENT_EMBEDDINGS, DOCUMENT_INDEX, DOCUMENT_TEXT

TEXT_FIELDS: Final = ("text_id", "doc_id", "kind", "title", "tailnum", "doc_date")
CHUNK_FIELDS: Final = ("text_id", "chunk", "chunk_text", "embedding")
PLANE_FIELDS: Final = ("manufacturer", "model", "year", "type", "engines", "seats", "engine")
VERSION_FIELDS: Final = ("text_version", "embeddings_version")


def build_index(embeddings: pl.DataFrame, texts: pl.DataFrame, planes: pl.DataFrame, *, text_version: int,
                embeddings_version: int, planes_note: str | None = None) -> pl.DataFrame:
    """One row per chunk of a current text: the chunk and its vector, the text's metadata, and the plane's
    attributes (`plane_known` is False where the tail is absent from `planes`, or the text names none).
    `planes_note` says where the planes came from when not from `warehouse/dim_plane`; search repeats it."""
    planes = planes.select("tailnum", *(c for c in PLANE_FIELDS if c in planes.columns)).unique("tailnum")
    return (
        embeddings.select(CHUNK_FIELDS)
        .join(texts.select(TEXT_FIELDS), on="text_id", how="inner")
        .join(planes.with_columns(plane_known=pl.lit(True)), on="tailnum", how="left")
        .with_columns(pl.col("plane_known").fill_null(False), text_version=pl.lit(text_version, pl.Int64),
                      embeddings_version=pl.lit(embeddings_version, pl.Int64),
                      planes_note=pl.lit(planes_note, pl.String))
        .sort("text_id", "chunk")
    )


def source_versions(lake: Lake) -> tuple[int, int] | None:
    """(document_text, document_embeddings) Delta versions, or None before both exist."""
    text, embeddings = delta.version(lake, DOCUMENT_TEXT), delta.version(lake, DOCUMENT_EMBEDDINGS)
    return None if text is None or embeddings is None else (text, embeddings)


def read_current(lake: Lake) -> pl.DataFrame | None:
    """The index, when it is built from the document tables as they are now; None when it is missing or stale."""
    versions = source_versions(lake)
    if versions is None or delta.open_table(lake, DOCUMENT_INDEX) is None:
        return None
    index = delta.scan(lake, DOCUMENT_INDEX).collect()
    built_from = index.select(VERSION_FIELDS).unique()
    if built_from.height != 1 or tuple(built_from.row(0)) != versions:
        return None
    return index


def planes_frame(details: dict[str, dict]) -> pl.DataFrame:
    """Plane attributes by tail (as `search.plane_details` gives them) as a frame to join on `tailnum`."""
    if not details:
        return pl.DataFrame(schema={"tailnum": pl.String})
    return pl.DataFrame([{"tailnum": tail, **fields} for tail, fields in details.items()], infer_schema_length=None)
