"""Metadata every materialization reports: row count, URI, column schema, a markdown preview."""

from __future__ import annotations

import polars as pl
from dagster import MetadataValue, TableColumn, TableSchema


def column_schema(schema: pl.Schema | dict) -> TableSchema:
    return TableSchema(columns=[TableColumn(name, str(dtype)) for name, dtype in dict(schema).items()])


def markdown_preview(df: pl.DataFrame, rows: int = 5) -> MetadataValue:
    with pl.Config(tbl_formatting="MARKDOWN", tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True,
                   tbl_cols=-1, tbl_width_chars=1000, fmt_str_lengths=40):
        return MetadataValue.md(str(df.head(rows)))


def table_metadata(*, rows: int, uri: str, schema: pl.Schema | dict, preview: pl.DataFrame) -> dict:
    return {
        "dagster/row_count": rows,
        "dagster/uri": MetadataValue.path(uri),
        "dagster/column_schema": column_schema(schema),
        "preview": markdown_preview(preview),
    }


def delta_metadata(*, rows: int, uri: str, version: int | None, schema: pl.Schema | dict, preview: pl.DataFrame,
                   single: bool = True) -> dict:
    """Metadata of a Delta write. In a range run one result stands for every day, so it carries run totals."""
    meta = table_metadata(rows=rows, uri=uri, schema=schema, preview=preview)
    if not single:
        meta["rows_in_run"] = meta.pop("dagster/row_count")
    meta["delta_version"] = version if version is not None else -1
    return meta


def quarantine_metadata(quarantine: pl.DataFrame) -> dict:
    """Quarantined rows in total and per rule broken."""
    counts = quarantine.group_by("rule").len().sort("rule") if quarantine.height else None
    meta = {"quarantined": quarantine.height}
    if counts is not None:
        meta["quarantine_by_rule"] = MetadataValue.json(dict(counts.iter_rows()))
    return meta
