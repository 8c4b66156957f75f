"""OCR of the generated scans, scored against their true text: character error rate at most 5 %."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.synthetic.documents import generate
from pipelines.documents.ocr import (
    character_error_rate,
    levenshtein,
    normalize,
    quarter_turns,
    reading_order,
    receipt_cer,
    restore_spaces,
    upside_down,
    word_scores,
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
    ("text", "cols", "expected"),
    [
        # A column is 1/6 of the line's height: 10 columns apart is 1.7 heights, more than a space.
        ("Tailnumber", [0, 2, 4, 6, 16, 18, 20, 22, 24, 26], "Tail number"),
        ("Tailnumber", [0, 2, 4, 6, 8, 10, 12, 14, 16, 18], "Tailnumber"),
        # Proportional type: a narrow "i" beside a wide "W" moves the pitch, not the gap between words.
        ("Will Wait", [0, 4, 5, 6, 16, 20, 22, 23], "Will Wait"),
        ("WillWait", [0, 4, 5, 6, 16, 20, 22, 23], "Will Wait"),
        ("ab cd", [0, 2, 4, 6], "ab cd"),  # the model's own space is kept, not doubled
        ("abc", [0, 2, 4], "abc"),
        ("", [], ""),
        ("a b", [0], "a b"),  # columns that do not fit the text: the text is kept as read
    ],
)
def test_spaces_come_back_from_gaps_measured_in_line_heights(text: str, cols: list[int], expected: str) -> None:
    assert restore_spaces(text, cols) == expected


def _probs(length: int, spaces: dict[int, float]) -> list[float]:
    return [spaces.get(i, 0.001) for i in range(length)]


@pytest.mark.parametrize(
    ("text", "cols", "spaces", "expected"),
    [
        # "TEL : 07" printed with air around the colon: the model's best reading is "TEL:07", but it gives a
        # space a fair chance (0.05 or more) in the columns on each side of the colon.
        ("TEL:07", [0, 2, 4, 7, 10, 12], {6: 0.1, 8: 0.3}, "TEL : 07"),
        ("TEL:07", [0, 2, 4, 7, 10, 12], {6: 0.04, 8: 0.01}, "TEL:07"),  # too little doubt: as read
        ("ADJUSTMENT", [0, 2, 4, 6, 8, 10, 12, 14, 16, 18], {9: 0.9}, "ADJUSTMENT"),  # 2 columns: one glyph
        ("32.", [0, 2, 5], {4: 0.5}, "32."),  # a period closes the word before it
    ],
)
def test_spaces_come_back_where_the_model_gives_a_space_a_fair_chance(
    text: str, cols: list[int], spaces: dict[int, float], expected: str
) -> None:
    assert restore_spaces(text, cols, _probs(cols[-1] + 1, spaces)) == expected


def _box(x: float, y: float, w: float = 200, h: float = 30, degrees: float = 0.0) -> np.ndarray:
    angle = np.deg2rad(degrees)
    pts = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float32)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=np.float32)
    return pts @ rot.T


def test_reading_order_undoes_the_skew() -> None:
    items = [
        (_box(600, 40, degrees=2), "Date: 2013"),
        (_box(40, 40, degrees=2), "Tail: N1"),
        (_box(40, 82, degrees=2), "ATA: 32"),
        (_box(300, 40, degrees=2), "Station: EWR"),
    ]
    assert reading_order(items) == "Tail: N1 Station: EWR Date: 2013\nATA: 32"


def test_two_columns_of_prose_are_read_one_after_the_other() -> None:
    title = [(_box(40, 0, w=900), "Engine inspection report for the fleet")]
    left = [(_box(40, 50 + 40 * i, w=400), f"left column line {i} of text") for i in range(5)]
    right = [(_box(540, 50 + 40 * i, w=400), f"right column line {i} of text") for i in range(5)]
    footer = [(_box(40, 300, w=900), "signed by the inspector on duty")]
    text = reading_order(title + right + footer + left)  # the detector's order does not matter
    assert text.splitlines() == ([title[0][1]] + [t for _, t in left] + [t for _, t in right] + [footer[0][1]])


def test_labels_and_their_values_stay_on_one_line() -> None:
    """A receipt's label column and value column are not prose: each line is read across."""
    rows = [
        ("TOTAL SALES (EXCLUDING GST) :", "80.91"),
        ("DISCOUNT :", "0.00"),
        ("TOTAL GST :", "0.00"),
        ("ROUNDING", "-0.01"),
        ("CASH :", "100.00"),
    ]
    items = [(_box(40, 40 * i, w=300), label) for i, (label, _) in enumerate(rows)]
    items += [(_box(600, 40 * i, w=80), value) for i, (_, value) in enumerate(rows)]
    assert reading_order(items).splitlines() == [f"{label} {value}" for label, value in rows]


def test_page_orientation_is_decided_by_most_lines() -> None:
    assert upside_down(["180", "180", "0"]) and not upside_down(["180", "0", "0"]) and not upside_down([])
    tall = np.stack([_box(0, 0, w=30, h=300)] * 3 + [_box(0, 0, w=300, h=30)])
    assert quarter_turns(tall) and not quarter_turns(tall[::-1][:2]) and not quarter_turns(np.zeros((0, 4, 2)))


@pytest.mark.parametrize(
    ("predicted", "truth", "scores"),
    [
        ("TOTAL 10.00\ncash 10.00", "TOTAL : 10.00\nCASH 10.00", (4, 4, 5)),
        ("", "A B", (0, 0, 2)),
    ],
)
def test_word_scores_are_bags_of_upper_case_words(predicted: str, truth: str, scores: tuple) -> None:
    assert word_scores(predicted, truth) == scores


def test_receipt_cer_ignores_case_and_line_breaks() -> None:
    assert receipt_cer("total\n10.00", "TOTAL 10.00") == (0, 11)
    assert receipt_cer("TOTAL 1O.00", "TOTAL 10.00") == (1, 11)
