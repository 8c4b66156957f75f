"""Batch extraction of the source database into the raw zone. No Dagster here.

One parameterized query per daily partition, read in bounded chunks and streamed to Parquet. A raw file is
never rewritten: each extraction writes `<run-id>.parquet` beside the earlier ones and then publishes the
partition's `_manifest.json`, which names the current file. A reader goes through the manifest, so a run
killed half-way leaves nothing a reader would take.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import connectorx
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from pipelines.core.lake import Lake
from pipelines.extract.source import TABLES, SourceTable, sql_metadata

SOURCE = "flightsdb"
"""The source's name in raw-zone paths: raw/<source>/<table>/..."""

_log = logging.getLogger(__name__)

DEFAULT_CHUNK_ROWS = 50_000
MANIFEST = "_manifest.json"


@dataclass(frozen=True)
class Extracted:
    """What one extraction wrote."""

    table: str
    date: str
    rows: int
    path: str
    uri: str
    source_updated_at: str | None
    preview: pl.DataFrame


def raw_dir(table: str, date: str) -> str:
    return f"raw/{SOURCE}/{table}/date={date}"


def manifest_path(table: str, date: str) -> str:
    return f"{raw_dir(table, date)}/{MANIFEST}"


def snapshot_pointer(table: str) -> str:
    """Snapshot tables also publish a table-level manifest naming their newest snapshot."""
    return f"raw/{SOURCE}/{table}/{MANIFEST}"


def arrow_schema(table: SourceTable) -> pa.Schema:
    return pl.Schema(table.columns).to_arrow()


def partition_query(table: SourceTable) -> sa.TextClause:
    """The extraction query: one day's rows for partitioned tables, all rows otherwise.

    Values are bound (`:year`...), never formatted into the SQL. Plain text rather than a typed select:
    the drivers' own values go straight to polars, and `conform` types them in one vectorized pass.
    """
    sql = f"SELECT {', '.join(table.columns)} FROM {table.name}"
    if table.partitioned:
        sql += " WHERE year = :year AND month = :month AND day = :day"
    return _text(f"{sql} ORDER BY {', '.join(table.primary_key)}")


@functools.cache
def _text(sql: str) -> sa.TextClause:
    return sa.text(sql)


def query_parameters(table: SourceTable, date: dt.date | None) -> dict[str, int]:
    if not table.partitioned:
        return {}
    if date is None:
        raise ValueError(f"{table.name} is partitioned by day: a date is required")
    return {"year": date.year, "month": date.month, "day": date.day}


def conform(batch: pl.DataFrame, table: SourceTable) -> pl.DataFrame:
    """Give a fetched batch the table's declared types and column order, whatever the driver returned."""
    return table.conform(batch, parse_strings=True)


def read_batches(
    conn: sa.Connection, table: SourceTable, date: dt.date | None, *, chunk_rows: int = DEFAULT_CHUNK_ROWS
) -> Iterator[pl.DataFrame]:
    """Stream a partition's rows in chunks of at most `chunk_rows` (a server-side cursor on PostgreSQL)."""
    overrides = {c: t for c, t in table.columns.items() if not isinstance(t, pl.Datetime)}
    for batch in pl.read_database(
        partition_query(table),
        conn.execution_options(stream_results=True, max_row_buffer=chunk_rows),
        iter_batches=True,
        batch_size=chunk_rows,
        schema_overrides=overrides,
        execute_options={"parameters": query_parameters(table, date)},
    ):
        yield conform(batch, table)


def extract(
    source: sa.Engine | sa.Connection,
    lake: Lake,
    table_name: str,
    *,
    date: dt.date | None,
    run_id: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    preview_rows: int = 5,
) -> Extracted:
    """Extract one partition (or a snapshot when `date` is None) and publish it. Safe to re-run.

    Pass a connection to extract many partitions over one connection.
    """
    if isinstance(source, sa.Engine):
        with source.connect() as conn:
            return extract(conn, lake, table_name, date=date, run_id=run_id, chunk_rows=chunk_rows,
                           preview_rows=preview_rows)
    table = TABLES[table_name]
    label = (date or dt.datetime.now(dt.UTC).date()).isoformat()
    return _publish(lake, table, label, run_id, read_batches(source, table, date, chunk_rows=chunk_rows),
                    preview_rows=preview_rows)


class _DayFile:
    """One partition's raw file. A partition that arrives in one batch (nearly every day) is written by polars in
    one piece and published whole (3-4x faster than pyarrow's writer, which must first convert polars' string
    views); from a second batch on, the batches stream through pyarrow's writer, so memory never holds more
    than a batch, however big the day."""

    def __init__(self, lake: Lake, rel: str, table: SourceTable) -> None:
        self.lake, self.rel, self.table = lake, rel, table
        self.first: pl.DataFrame | None = None
        self.writer: pq.ParquetWriter | None = None

    def add(self, batch: pl.DataFrame) -> None:
        if self.first is None and self.writer is None:
            self.first = batch
            return
        if self.writer is None:
            self.writer = self.lake.parquet_writer(self.rel, self.schema)
            self.writer.write_table(self._arrow(self.first))
            self.first = None
        self.writer.write_table(self._arrow(batch))

    @functools.cached_property
    def schema(self) -> pa.Schema:
        """Only a day in several batches needs it (building it cost a year's extraction 0.1 s)."""
        return arrow_schema(self.table)

    def _arrow(self, batch: pl.DataFrame) -> pa.Table:
        data = batch.to_arrow(compat_level=pl.CompatLevel.newest())  # string views as polars holds them: no copy
        return data if data.schema == self.schema else data.cast(self.schema)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            return
        whole = self.first if self.first is not None else pl.DataFrame(schema=self.table.columns)
        buffer = io.BytesIO()
        whole.write_parquet(buffer, compression="zstd")
        self.lake.publish_bytes(self.rel, buffer.getvalue())

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.lake.delete(self.rel)


def _publish(lake: Lake, table: SourceTable, label: str, run_id: str, batches: Iterator[pl.DataFrame], *,
             preview_rows: int) -> Extracted:
    """Stream batches into `<run-id>.parquet` of one partition, then publish the partition's manifest."""
    table_name = table.name
    rel = f"{raw_dir(table_name, label)}/{run_id}.parquet"
    rows = 0
    newest: dt.datetime | None = None
    preview: pl.DataFrame | None = None  # a day's first rows (an empty frame is built only for an empty day)
    file = _DayFile(lake, rel, table)
    try:
        for batch in batches:
            if batch.height == 0:
                continue
            file.add(batch)
            rows += batch.height
            batch_newest = batch["updated_at"].max()
            newest = batch_newest if newest is None or batch_newest > newest else newest
            if preview is None:
                preview = batch.head(preview_rows)
            elif preview.height < preview_rows:
                preview = pl.concat([preview, batch.head(preview_rows - preview.height)])
        file.close()
    except BaseException:
        file.abort()  # nothing half-written stays behind
        raise
    manifest = {
        "table": table_name,
        "date": label,
        "file": f"{run_id}.parquet",
        "run_id": run_id,
        "rows": rows,
        "source_updated_at": newest.isoformat() if newest else None,
        "extracted_at": dt.datetime.now(dt.UTC).isoformat(),
        "schema": {name: str(dtype) for name, dtype in table.columns.items()},
    }
    lake.publish_json(manifest_path(table_name, label), manifest)
    if not table.partitioned:
        lake.publish_json(snapshot_pointer(table_name), manifest)
    return Extracted(
        table=table_name,
        date=label,
        rows=rows,
        path=rel,
        uri=lake.uri(rel),
        source_updated_at=manifest["source_updated_at"],
        preview=pl.DataFrame(schema=table.columns) if preview is None else preview,
    )


def range_query(table: SourceTable) -> sa.TextClause:
    """Every row of a range of days in one query, in day order: the day index serves it (row values compare
    on (year, month, day), which PostgreSQL and SQLite both match against the index)."""
    if not table.partitioned:
        raise ValueError(f"{table.name} is not partitioned by day")
    return _text(f"SELECT {', '.join(table.columns)} FROM {table.name} "
                 "WHERE (year, month, day) >= (:y0, :m0, :d0) AND (year, month, day) <= (:y1, :m1, :d1) "
                 f"ORDER BY year, month, day, {', '.join(table.primary_key)}")


def _range_batches(conn: sa.Connection, table: SourceTable, first: dt.date, last: dt.date,
                   chunk_rows: int) -> Iterator[pl.DataFrame]:
    # connectorx reads through a connection of its own: a connection already in a transaction is read through
    # itself, so that it sees what it wrote.
    arrow = None if conn.in_transaction() else _arrow_batches(conn.engine.url, table, first, last, chunk_rows)
    if arrow is not None:
        yield from arrow
        return
    overrides = {c: t for c, t in table.columns.items() if not isinstance(t, pl.Datetime)}
    params = {"y0": first.year, "m0": first.month, "d0": first.day, "y1": last.year, "m1": last.month, "d1": last.day}
    for batch in pl.read_database(
        range_query(table), conn.execution_options(stream_results=True, max_row_buffer=chunk_rows),
        iter_batches=True, batch_size=chunk_rows, schema_overrides=overrides, execute_options={"parameters": params},
    ):
        yield conform(batch, table)


def arrow_url(url: sa.URL) -> str | None:
    """The connectorx address of a SQLite file or PostgreSQL database; None where connectorx cannot read."""
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database and url.database != ":memory:":
        return f"sqlite://{Path(url.database).resolve()}"
    if backend == "postgresql":
        return url.set(drivername="postgresql").render_as_string(hide_password=False)
    return None


def _arrow_batches(url: sa.URL, table: SourceTable, first: dt.date, last: dt.date,
                   chunk_rows: int) -> Iterator[pl.DataFrame] | None:
    """The range read by connectorx as Arrow batches of at most `chunk_rows` (no Python object per value: half
    the time of rows through SQLAlchemy). None, and the caller reads through SQLAlchemy, when connectorx cannot
    read this source or its first batch fails (a value of another type than the column declares, say).

    connectorx binds no parameters, so the range goes into the SQL text: three integers of each `dt.date`,
    formatted as integers, never text from outside."""
    address = arrow_url(url)
    if address is None:
        return None
    sql = (f"SELECT {', '.join(table.columns)} FROM {table.name} "
           f"WHERE (year, month, day) >= ({int(first.year)}, {int(first.month)}, {int(first.day)}) "
           f"AND (year, month, day) <= ({int(last.year)}, {int(last.month)}, {int(last.day)}) "
           f"ORDER BY year, month, day, {', '.join(table.primary_key)}")
    try:
        reader = connectorx.read_sql(address, sql, return_type="arrow_stream", batch_size=chunk_rows)
        batches = iter(reader)
        head = next(batches, None)
    except Exception as exc:  # any failure before the first row: the SQLAlchemy path reads it instead
        _log.info("extract %s: connectorx could not read (%s); reading through SQLAlchemy",
                  table.name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return None

    def frames() -> Iterator[pl.DataFrame]:
        if head is None:
            return
        yield conform(pl.from_arrow(head), table)
        for batch in batches:
            yield conform(pl.from_arrow(batch), table)

    return frames()


def _days_of(batches: Iterator[pl.DataFrame]) -> Iterator[tuple[dt.date, pl.DataFrame]]:
    """(day, rows) pieces of day-ordered batches; a day spanning two batches comes as two pieces."""
    for batch in batches:
        if batch.height == 0:
            continue
        # The batch is in day order, so each day is a slice of it: zero-copy, where partitioning it by day and
        # dropping the key column ran two polars queries a day.
        days = batch.select(pl.date("year", "month", "day").alias("day").rle()).unnest("day")
        start = 0
        for length, day in days.iter_rows():
            yield day, batch.slice(start, length)
            start += length


def extract_range(
    conn: sa.Connection,
    lake: Lake,
    table_name: str,
    *,
    first: dt.date,
    last: dt.date,
    run_id: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    preview_rows: int = 5,
) -> Iterator[Extracted]:
    """Extract every day from `first` to `last` with ONE query, publishing each day as `extract` would (the
    same file name, manifest and content), in day order as each day completes. Days without rows are
    published empty, as `extract` publishes them. A run killed half-way leaves the finished days published
    and the unfinished one unpublished."""
    table = TABLES[table_name]
    pieces = _days_of(_range_batches(conn, table, first, last, chunk_rows))
    pending = next(pieces, None)
    day = first
    while day <= last:
        def rows_of_day(current: dt.date = day) -> Iterator[pl.DataFrame]:
            nonlocal pending
            while pending is not None and pending[0] == current:
                yield pending[1]
                pending = next(pieces, None)

        yield _publish(lake, table, day.isoformat(), run_id, rows_of_day(), preview_rows=preview_rows)
        day += dt.timedelta(days=1)
    if pending is not None:  # never silently: rows the day-ordered walk did not take would be lost
        raise RuntimeError(f"extract {table_name}: the source returned rows of {pending[0]} out of day order "
                           f"(or outside {first}..{last}); they were not published")


def current_file(lake: Lake, table_name: str, date: str | None = None) -> str | None:
    """The lake path of the published raw file of a partition (or the newest snapshot), if any."""
    if date is None:
        manifest = lake.read_json(snapshot_pointer(table_name))
    else:
        manifest = lake.read_json(manifest_path(table_name, date))
    if manifest is None:
        return None
    return f"{raw_dir(table_name, manifest['date'])}/{manifest['file']}"


def changed_since(engine: sa.Engine, table_name: str, since: str | None) -> dict[str, str]:
    """Days (or the snapshot, keyed "") whose rows were updated after `since`, with their newest `updated_at`.

    Used by change capture: one grouped query over the `updated_at` index.
    """
    table = TABLES[table_name]
    t = sql_metadata().tables[table_name]
    newest = sa.func.max(t.c.updated_at).label("newest")
    if table.partitioned:
        query = sa.select(t.c.year, t.c.month, t.c.day, newest).group_by(t.c.year, t.c.month, t.c.day)
    else:
        query = sa.select(newest)
    if since is not None:
        query = query.where(t.c.updated_at > dt.datetime.fromisoformat(since))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    out: dict[str, str] = {}
    for row in rows:
        if row.newest is None:
            continue
        ts = _utc(row.newest).isoformat()
        key = f"{row.year:04d}-{row.month:02d}-{row.day:02d}" if table.partitioned else ""
        out[key] = ts
    return out


def _utc(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
