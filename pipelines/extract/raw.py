"""Reading the raw zone back: only published files (through their manifests), lazily. No Dagster."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from pipelines.extract.extraction import current_file
from pipelines.core.lake import Lake
from pipelines.extract.source import TABLES

PARTITION_DATE = "_partition_date"
"""Column added to raw rows read back: the day of the raw partition the row came from."""


class RawMissing(RuntimeError):
    """A raw partition was asked for but never extracted; the message names it."""


def _empty(table: str) -> pl.LazyFrame:
    return pl.LazyFrame(schema={**TABLES[table].columns, PARTITION_DATE: pl.Date()})


def scan_days(lake: Lake, table: str, days: Iterable[dt.date], *, missing_ok: bool = False,
              skipped: list[dt.date] | None = None) -> pl.LazyFrame:
    """The published raw rows of the given days, each tagged with its partition's day; with `missing_ok`, days
    never extracted are left out (and added to `skipped`)."""
    frames = []
    for day in days:
        path = current_file(lake, table, day.isoformat())
        if path is None:
            if missing_ok:
                if skipped is not None:
                    skipped.append(day)
                continue
            raise RawMissing(f"raw/{table} has no published extract for {day}: materialize it first")
        frames.append(
            pl.scan_parquet(lake.uri(path), storage_options=lake.storage_options or None)
            .with_columns(pl.lit(day).alias(PARTITION_DATE))
        )
    return pl.concat(frames, how="vertical") if frames else _empty(table)


def scan_snapshot(lake: Lake, table: str) -> pl.LazyFrame:
    """The newest published snapshot of a reference table."""
    path = current_file(lake, table)
    if path is None:
        raise RawMissing(f"raw/{table} has no published snapshot: materialize it first")
    return pl.scan_parquet(lake.uri(path), storage_options=lake.storage_options or None)
