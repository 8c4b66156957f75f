"""Delta writes of the documents stage: upsert with stale rows of re-read documents removed, and quarantine.

Built on `pipelines.core.delta`: a table is created by its first write and MERGEd after, with schema merge on,
so a batch with a new column adds it without rewriting the files already there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from pipelines.core import delta
from pipelines.documents.structured import Rejected
from pipelines.core.lake import Lake

QUARANTINE_COLUMNS: Final[dict[str, pl.DataType]] = {
    "item": pl.String(),  # the raw path, or the source key of a document refused at landing
    "doc_id": pl.String(),
    "doc_sha256": pl.String(),
    "rule": pl.String(),
    "reason": pl.String(),
    "run_id": pl.String(),
    "quarantined_at": pl.Datetime("us", "UTC"),
}


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def read(lake: Lake, rel: str, columns: Sequence[str] | None = None) -> pl.DataFrame | None:
    """A Delta table (or some of its columns) in memory, or None when it does not exist yet."""
    if delta.open_table(lake, rel) is None:
        return None
    frame = delta.scan(lake, rel)
    if columns is not None:
        frame = frame.select(columns)
    return frame.collect()


def align(df: pl.DataFrame, lake: Lake, rel: str) -> pl.DataFrame:
    """Give a batch the target's columns it lacks, as typed nulls, so MERGE sees one schema (new ones stay)."""
    if delta.open_table(lake, rel) is None:
        return df
    schema = delta.scan(lake, rel).collect_schema()
    missing = [pl.lit(None, dtype=dtype).alias(name) for name, dtype in schema.items() if name not in df.columns]
    return df.with_columns(missing) if missing else df


def upsert(lake: Lake, rel: str, df: pl.DataFrame, *, keys: Sequence[str],
           replace: tuple[str, Sequence[str]] | None = None) -> int | None:
    """MERGE `df` on `keys` in one commit; with `replace=(column, values)`, target rows of those values that the
    batch no longer has are deleted in the same commit (a corrected document with fewer findings)."""
    if df.is_empty() and not (replace and replace[1]):
        return delta.version(lake, rel)
    target = delta.open_table(lake, rel)
    df = align(df, lake, rel)
    if target is None or not replace or not replace[1]:
        return delta.merge(lake, rel, df, keys=keys)
    column, values = replace
    predicate = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    stale = f"t.{column} IN ({', '.join(_quote(v) for v in values)})"
    (
        target.merge(df.to_arrow(), predicate=predicate, source_alias="s", target_alias="t", merge_schema=True)
        .when_matched_update_all()
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete(predicate=stale)
        .execute()
    )
    return delta.version(lake, rel)


def delete_rows(lake: Lake, rel: str, column: str, values: Sequence[str]) -> int | None:
    """Delete the rows whose `column` is one of `values`, in one commit."""
    table = delta.open_table(lake, rel)
    if table is None or not values:
        return None if table is None else table.version()
    table.delete(f"{column} IN ({', '.join(_quote(v) for v in values)})")
    return delta.version(lake, rel)


def quarantine(lake: Lake, rel: str, rows: Sequence[dict] | Sequence[Rejected], *, run_id: str,
               items: dict[str, str] | None = None) -> int | None:
    """Record refused documents (with their rule and reason) in a quarantine table, once per item."""
    if not rows:
        return delta.version(lake, rel)
    now = dt.datetime.now(dt.UTC)
    records = []
    for r in rows:
        if isinstance(r, Rejected):
            item = (items or {}).get(r.doc_id, r.doc_id)
            records.append({"item": item, "doc_id": r.doc_id, "doc_sha256": r.sha256, "rule": r.rule,
                            "reason": r.reason, "run_id": run_id, "quarantined_at": now})
        else:
            records.append({"item": r["item"], "doc_id": r["doc_id"], "doc_sha256": r.get("doc_sha256"),
                            "rule": r["rule"], "reason": r["reason"], "run_id": run_id, "quarantined_at": now})
    frame = pl.DataFrame(records, schema=QUARANTINE_COLUMNS).unique("item", keep="last")
    return upsert(lake, rel, frame, keys=["item"])


def todo(lake: Lake, catalog: pl.DataFrame, *, kinds: Sequence[str], target: str, quarantine_rel: str,
         reprocess: bool = False) -> pl.DataFrame:
    """Landed documents of these kinds that the target has not read in this version (doc_id, sha256) and that
    were not quarantined in this version; all of them with `reprocess`."""
    docs = catalog.filter(pl.col("kind").is_in(list(kinds)))
    if reprocess or docs.is_empty():
        return docs
    done = read(lake, target, ["doc_id", "doc_sha256"])
    if done is not None:
        docs = docs.join(done.unique(), left_on=["doc_id", "sha256"], right_on=["doc_id", "doc_sha256"], how="anti")
    refused = read(lake, quarantine_rel, ["item", "doc_sha256"])
    if refused is not None:
        docs = docs.join(refused.unique(), left_on=["raw_path", "sha256"], right_on=["item", "doc_sha256"], how="anti")
    return docs


def read_bodies(lake: Lake, paths: Sequence[str], *, threads: int = 8) -> list[bytes]:
    """Raw files in order; on S3 several requests are in flight at once."""
    if lake.scheme == "file" or len(paths) < 2:
        return [lake.read_bytes(p) for p in paths]

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(lake.read_bytes, paths))
