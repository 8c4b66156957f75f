"""What every stage's assets share: the metadata a materialization reports (row count, URI, column schema, a
markdown preview, Delta version, quarantine, charts), the quality check specs and results, and the month-by-month
range write of monthly-partitioned Delta tables."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import polars as pl
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetDep, AssetExecutionContext, AssetKey,
                     BackfillPolicy, MetadataValue, TableColumn, TableSchema, asset)

from assets.automation import follows_upstream
from assets.partitions import days_in_run, monthly_partitions, months
from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.core.checks import SuiteChecker
from pipelines.core.progress import Every
from pipelines.core.quality import QualityReport


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
    """A suite's report (evaluated in polars, `pipelines.core.checks`) as a WARN check result."""
    return AssetCheckResult(
        check_name=name,
        passed=report.success,
        severity=AssetCheckSeverity.WARN,
        description=report.summary(),
        metadata={"evaluated": report.evaluated, "failures": len(report.failures)},
    )


def quality_check_specs(key: list[str] | AssetKey, *, blocking_share: bool = False) -> list[AssetCheckSpec]:
    """The expectations check of a table; with `blocking_share`, the blocking quarantine-share check too."""
    specs = [AssetCheckSpec("expectations", asset=key, description="The table's Great Expectations suite, evaluated "
                            "in polars over the run's rows: types, ranges, keys (the nightly job runs it in GX).")]
    if blocking_share:
        specs.append(AssetCheckSpec(
            "quarantine_share", asset=key, blocking=True,
            description="Fails when the run's quarantined share passes the limit, so the warehouse is not fed.",
        ))
    return specs


def delta_table(key: AssetKey, *, group: str, description: str, deps: Sequence[AssetKey | AssetDep] = (),
                monthly: bool = False, blocking_share: bool = False, follows: bool = True):
    """`@asset` of a Delta table built with polars and checked by its suite (`quality_check_specs`): a `monthly`
    table is partitioned by month and backfills a range in one run; it `follows` its upstreams by itself."""
    return asset(
        key=key,
        group_name=group,
        deps=list(deps),
        partitions_def=monthly_partitions if monthly else None,
        backfill_policy=BackfillPolicy.single_run() if monthly else None,
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
    """What `write_months` wrote: rows over the run, the last Delta version, the first month (the preview)."""

    uri: str
    rows: int
    version: int | None
    preview: pl.DataFrame
    single: bool
    """The run is one month (one partition), so the row count is that partition's."""

    def metadata(self) -> dict:
        return delta_metadata(rows=self.rows, uri=self.uri, version=self.version, schema=self.preview.schema,
                              preview=self.preview, single=self.single)


def write_months(
    context: AssetExecutionContext,
    the_lake: Lake,
    rel: str,
    build: Callable[[list[dt.date]], pl.DataFrame | Mapping[str, pl.DataFrame]],
    *,
    column: str,
    checker: SuiteChecker,
    note: Callable[[], str] | None = None,
    also: Mapping[str, str] | None = None,
) -> RangeWritten:
    """The run's months one by one: `build` a month's rows from its days and add them to `checker`; overwrite
    exactly those days of `rel` on `column` (a rerun replaces, never appends), a year of months a commit
    (`delta.write_months`); a progress line for the first and the last month and every 5 s between (`note` adds
    to it). With `also` (table -> its date column), `build` returns each table's rows by name, `rel` among them,
    and those tables are written in the same commits' groups."""
    batches = months(days_in_run(context))

    def frames(days: list[dt.date]) -> Mapping[str, pl.DataFrame]:
        built = build(days)
        return built if isinstance(built, Mapping) else {rel: built}

    rows, version, preview = 0, None, None
    started, report = time.monotonic(), Every()
    written = delta.write_months(the_lake, batches, {rel: column, **(also or {})}, frames)
    for n, (days, built, version) in enumerate(written, start=1):
        df = built[rel]
        checker.add(df)
        rows += df.height
        preview = df if preview is None else preview
        if report.due(last=n == len(batches)):
            committed = (f"Delta version {version}" if version is not None
                         else "not committed yet: a year's months are one commit")
            context.log.info(f"{rel}: {n}/{len(batches)} months, through {days[-1]}, {rows:,} rows"
                             f"{note() if note else ''} ({committed}), "
                             f"{rows / max(time.monotonic() - started, 1e-9):,.0f} rows/s")
    if preview is None:
        raise ValueError(f"{rel}: the run holds no day of data (its months lie after the last daily partition)")
    return RangeWritten(uri=the_lake.uri(rel), rows=rows, version=version, preview=preview, single=len(batches) == 1)
