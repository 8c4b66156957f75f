"""OCR of the generated scans, scored against their true text: character error rate at most 5 %."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.synthetic.documents import generate
from pipelines.documents.ocr import (
    character_error_rate,
    levenshtein,
    normalize,
    reading_order,
    restore_spaces,
)
from pipelines.documents.safety import Limits, open_image

CER_MAX = 0.05


def test_ocr_character_error_rate_on_generated_scans(ocr_engine) -> None:
    corpus = generate(seed=21, records=0, reports=0, scans=6, emails=4, attach_share=1.0)
    truths = corpus.truths()
    images = {f.doc_id: f.body for f in corpus.files if f.kind == "work_order_scan"}
    from email import policy
    from email.parser import BytesParser

    for f in corpus.files:
        if f.kind == "email":
            attachment = next(BytesParser(policy=policy.default).parsebytes(f.body).iter_attachments())
            images[f.attachments[0][0]] = attachment.get_payload(decode=True)
    assert len(images) == len(truths) == 10
    errors = chars = 0
    per_document = {}
    for text_id, data in images.items():
        result = ocr_engine.read(open_image(data, Limits()))
        truth = normalize(truths[text_id])
        errors += levenshtein(normalize(result.text), truth)
        chars += len(truth)
        per_document[text_id] = character_error_rate(result.text, truths[text_id])
        assert result.confidence > 0.8
    cer = errors / chars
    print(f"OCR CER over {len(images)} scans: {cer:.4f}; worst {max(per_document.values()):.4f}")
    assert cer <= CER_MAX, per_document
    assert max(per_document.values()) <= 2 * CER_MAX, per_document


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("", "", 0), ("abc", "", 3), ("kitten", "sitting", 3), ("WORK ORDER", "WORK 0RDER", 1), ("ab", "ba", 2)],
)
def test_levenshtein(a: str, b: str, distance: int) -> None:
    assert levenshtein(a, b) == levenshtein(b, a) == distance


def test_cer_normalizes_whitespace_only() -> None:
    assert character_error_rate("Tail:  N1\n\n  Station: EWR ", "Tail: N1\nStation: EWR") == 0.0
    assert character_error_rate("tail: n1", "Tail: N1") == pytest.approx(2 / 8)


@pytest.mark.parametrize(
    ("chars", "cols", "expected"),
    [
        (list("Tailnumber"), [0, 2, 4, 6, 10, 12, 14, 16, 18, 20], "Tail number"),
        (list("ab cd"), [0, 2, 4, 6, 8], "ab cd"),  # the model's own space is kept, not doubled
        (list("abc"), [0, 2, 4], "abc"),
        ([], [], ""),
    ],
)
def test_spaces_come_back_from_wide_gaps(chars: list[str], cols: list[int], expected: str) -> None:
    assert restore_spaces(chars, cols) == expected


def test_reading_order_undoes_the_skew() -> None:
    angle = np.deg2rad(2.0)

    def box(x: float, y: float, w: float = 200, h: float = 30) -> np.ndarray:
        pts = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float32)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=np.float32)
        return pts @ rot.T

    items = [(box(600, 40), "Date: 2013"), (box(40, 40), "Tail: N1"), (box(40, 82), "ATA: 32"),
             (box(300, 40), "Station: EWR")]
    assert reading_order(items) == "Tail: N1 Station: EWR Date: 2013\nATA: 32"
