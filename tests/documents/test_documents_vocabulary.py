"""The index's own words read a query's words that no chunk holds: acronyms, shortenings; plain words stay."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pipelines.documents.search import SearchIndex, _stem, query_terms, words
from pipelines.documents.vocabulary import Vocabulary

CHUNKS = [
    "generator control unit number 1 found inoperative",
    "generator control unit number 2 tripped",
    "hydraulic reservoir quantity low, reservoir serviced",
    "elevator hinge bracket cracked at the lug",
    "found left aileron trim tab loose",
    "fuel boost pump noisy, pump replaced",
]


@pytest.fixture
def vocabulary() -> Vocabulary:
    return Vocabulary([words(c) for c in CHUNKS], _stem)


@pytest.mark.parametrize(("word", "capitals", "reading"), [
    ("gcu", False, {"generator": 1.0, "control": 1.0, "unit": 1.0}),  # three letters: an acronym
    ("brkt", False, {"bracket": 1.0}),  # no vowel after the first letter: a shortening
    ("rsvr", False, {"reservoir": 1.0}),
    ("quant", False, {"quantity": 1.0}),  # the word's beginning
    ("bst", False, {"boost": 1.0}),
    ("flat", True, {"found": 1.0, "left": 1.0, "aileron": 1.0, "trim": 1.0}),  # "FLAT", in capitals
])
def test_a_word_no_chunk_holds_is_read_from_the_indexs_words(vocabulary: Vocabulary, word: str, capitals: bool,
                                                              reading: dict[str, float]) -> None:
    assert vocabulary.readings(word, capitals=capitals) == reading


@pytest.mark.parametrize("word", ["flat", "flow", "tank", "pump", "unit", "zzz", "ab", "n1",
                                  "elev"])  # "elev" is the stem of "elevator": known, so read as itself
def test_plain_known_short_and_unmatched_words_are_not_read_as_anything_else(vocabulary: Vocabulary,
                                                                             word: str) -> None:
    # "flat" in lower case is a word, not "found left aileron trim"; "flow" is not a shortening of "following"
    assert vocabulary.readings(word) == {}


def test_a_query_in_shorthand_finds_what_its_words_stand_for() -> None:
    texts = pl.DataFrame({"text_id": [f"t{i}" for i in range(len(CHUNKS))]})
    chunks = pl.DataFrame({"text_id": texts["text_id"], "chunk": [0] * len(CHUNKS), "chunk_text": CHUNKS})
    index = SearchIndex(np.zeros((len(CHUNKS), 384), np.float32), chunks, texts)
    # "trip" is the stem of "tripped"; "gcu" is no chunk's word: read as the acronym of "generator control unit"
    assert query_terms("GCU #2 trip", index.vocabulary) == {"generat": 1.0, "control": 1.0, "unit": 1.0,
                                                             "number2": 1.0, "trip": 1.0}
    assert index.top_k(np.zeros(384, np.float32), 1, text="elev hinge brkt crk")[0][0] == "t3"
    assert index.top_k(np.zeros(384, np.float32), 1, text="hyd rsvr qty low")[0][0] == "t2"
