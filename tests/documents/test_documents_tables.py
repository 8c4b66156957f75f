"""Delta helpers of the documents stage: quarantine once per item, delete by key, todo lists what is new."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.documents.landing import CATALOG_SCHEMA
from pipelines.documents.structured import Rejected
from pipelines.documents.tables import delete_rows, quarantine, read, todo, upsert
from pipelines.core.lake import Lake


def test_quarantine_is_once_per_item_with_the_latest_reason(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    quarantine(lake, "quarantine/t", [Rejected("a", "h1", "invalid_json", "first")], run_id="r1",
               items={"a": "raw/a.json"})
    quarantine(lake, "quarantine/t", [Rejected("a", "h1", "invalid_json", "second")], run_id="r2",
               items={"a": "raw/a.json"})
    quarantine(lake, "quarantine/t", [{"item": "landing/b.eml", "doc_id": "b", "rule": "oversize", "reason": "big"}],
               run_id="r2")
    table = read(lake, "quarantine/t").sort("item")
    assert table.select("item", "reason", "run_id").rows() == [("landing/b.eml", "big", "r2"),
                                                              ("raw/a.json", "second", "r2")]


def test_delete_rows_and_todo(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    upsert(lake, "t", pl.DataFrame({"doc_id": ["a", "b", "c"], "doc_sha256": ["1", "2", "3"]}), keys=["doc_id"])
    delete_rows(lake, "t", "doc_id", ["b", "it's"])
    assert read(lake, "t")["doc_id"].sort().to_list() == ["a", "c"]

    catalog = pl.DataFrame(
        [{"doc_id": d, "kind": "maintenance_record", "content_type": "application/json", "source": "store",
          "source_key": d, "raw_path": f"raw/{d}", "size": 1, "sha256": h, "arrived_at": "t", "tailnum_hint": None,
          "batch_id": "b"} for d, h in [("a", "1"), ("c", "new"), ("d", "4"), ("e", "5")]], schema=CATALOG_SCHEMA)
    quarantine(lake, "q", [Rejected("e", "5", "invalid_json", "x")], run_id="r", items={"e": "raw/e"})
    pending = todo(lake, catalog, kinds=["maintenance_record"], target="t", quarantine_rel="q")
    assert pending["doc_id"].to_list() == ["c", "d"]  # a is done, c changed, d is new, e is quarantined as is
    assert todo(lake, catalog, kinds=["maintenance_record"], target="t", quarantine_rel="q",
                reprocess=True).height == 4
    assert todo(lake, catalog, kinds=["email"], target="t", quarantine_rel="q").is_empty()
