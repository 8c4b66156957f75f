"""What every stage's assets share: the metadata a materialization reports (row count, URI, column schema, a
markdown preview, Delta version, quarantine, charts), the quality check specs and results, and the month-chunk
range write of daily-partitioned Delta tables."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetKey,
                     BackfillPolicy, MetadataValue, TableColumn, TableSchema, asset)

from assets.automation import follows_upstream
from assets.partitions import chunks, daily_partitions, days_in_run
from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.core.quality import BatchValidator, QualityReport


def column_schema(schema: pl.Schema | dict) -> TableSchema:
    """Names and types; a warehouse table's columns also say what they mean (`pipelines.warehouse.columns`)."""
    from pipelines.warehouse.columns import descriptions  # noqa: PLC0415 - keeps this edit to this function alone

    described = descriptions(dict(schema))
    return TableSchema(columns=[TableColumn(name, str(dtype), description=described.get(name))
                                for name, dtype in dict(schema).items()])


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


def chart_metadata(the_lake: Lake, folder: str, name: str, png: bytes) -> dict:
    """Publish a PNG chart to `folder/name.png` in the lake; its URI and an inline preview as metadata."""
    rel = f"{folder}/{name}.png"
    the_lake.publish_bytes(rel, png)
    encoded = base64.b64encode(png).decode()
    return {"chart": MetadataValue.path(the_lake.uri(rel)),
            "chart_preview": MetadataValue.md(f"![{name}](data:image/png;base64,{encoded})")}


def quality_check(report: QualityReport, name: str = "expectations") -> AssetCheckResult:
    """A Great Expectations report as a WARN check result."""
    return AssetCheckResult(
        check_name=name,
        passed=report.success,
        severity=AssetCheckSeverity.WARN,
        description=report.summary(),
        metadata={"evaluated": report.evaluated, "failures": len(report.failures)},
    )


def quality_check_specs(key: list[str] | AssetKey, *, blocking_share: bool = False) -> list[AssetCheckSpec]:
    """The expectations check of a table; with `blocking_share`, the blocking quarantine-share check too."""
    specs = [AssetCheckSpec("expectations", asset=key, description="Great Expectations suite: types, ranges, keys.")]
    if blocking_share:
        specs.append(AssetCheckSpec(
            "quarantine_share", asset=key, blocking=True,
            description="Fails when the run's quarantined share passes the limit, so the warehouse is not fed.",
        ))
    return specs


def delta_table(key: AssetKey, *, group: str, description: str, deps: Sequence[AssetKey] = (), daily: bool = False,
                blocking_share: bool = False, follows: bool = True):
    """`@asset` of a Delta table built with polars and checked by its suite (`quality_check_specs`): a `daily`
    table is partitioned by day and backfills a range in one run; it `follows` its upstreams by itself."""
    return asset(
        key=key,
        group_name=group,
        deps=list(deps),
        partitions_def=daily_partitions if daily else None,
        backfill_policy=BackfillPolicy.single_run() if daily else None,
        kinds={"polars", "delta"},
        automation_condition=follows_upstream() if follows else None,
        check_specs=quality_check_specs(key, blocking_share=blocking_share),
        description=description,
    )


def optional_asset(key: AssetKey, *, group: str, deps: Sequence[AssetKey], kinds: set[str], description: str):
    """`@asset` of an asset that may decline to materialize rather than fail: it yields nothing and says why in
    the log (a model not trainable yet, a bundle already published, no champion to serve, no outcomes yet)."""
    return asset(key=key, group_name=group, deps=list(deps), kinds=kinds, output_required=False,
                 description=description)


@dataclass
class RangeWritten:
    """What `write_days` wrote: rows over the run, the last Delta version, the first chunk (the preview)."""

    uri: str
    rows: int
    version: int | None
    preview: pl.DataFrame
    single: bool
    """The run is one day (one partition), so the row count is that partition's."""

    def metadata(self) -> dict:
        return delta_metadata(rows=self.rows, uri=self.uri, version=self.version, schema=self.preview.schema,
                              preview=self.preview, single=self.single)


def write_days(
    context: AssetExecutionContext,
    the_lake: Lake,
    rel: str,
    build: Callable[[list[dt.date]], pl.DataFrame],
    *,
    partition_by: str,
    checker: BatchValidator,
    note: Callable[[], str] | None = None,
) -> RangeWritten:
    """The run's days in month chunks: `build` a chunk's rows, overwrite exactly those days of `rel` (a rerun
    replaces, never appends) and add them to `checker`; one progress line per chunk (`note` adds to it)."""
    days = days_in_run(context)
    rows, version, preview = 0, None, None
    started = time.monotonic()
    for chunk in chunks(days):
        df = build(chunk)
        version = delta.overwrite_range(the_lake, rel, df, partition_by=partition_by, first=chunk[0], last=chunk[-1])
        checker.add(df)
        rows += df.height
        preview = df if preview is None else preview
        context.log.info(f"{rel}: through {chunk[-1]}, {rows:,} rows{note() if note else ''} (Delta version "
                         f"{version}), {rows / max(time.monotonic() - started, 1e-9):,.0f} rows/s")
    return RangeWritten(uri=the_lake.uri(rel), rows=rows, version=version, preview=preview, single=len(days) == 1)
