"""Fixtures of the documents tests: small seeded corpora, and the two models loaded once per worker."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipelines.synthetic.documents import Corpus, generate
from pipelines.documents.structured import Source

OVERSIZE_LIMIT = 2**20
"""The tests' size limit: the hostile oversize email is a little over it (the default limit is 10 MiB)."""


@pytest.fixture(scope="session")
def hostile_corpus() -> Corpus:
    """A few of every kind, plus every hostile input; small enough to OCR in seconds."""
    return generate(seed=13, records=12, reports=3, scans=2, emails=3, hostile=True,
                    oversize_bytes=OVERSIZE_LIMIT + 1)


@pytest.fixture(scope="session")
def ocr_engine():
    from pipelines.documents.ocr import shared_engine

    return shared_engine()


@pytest.fixture(scope="session")
def embedder():
    from pipelines.documents.embed import shared_embedder

    return shared_embedder()


def sources(corpus: Corpus) -> list[Source]:
    return [Source(f.doc_id, hashlib.sha256(f.body).hexdigest(), f.kind, f.body) for f in corpus.files]


@pytest.fixture
def lake_root(tmp_path: Path) -> str:
    return str(tmp_path / "lake")
