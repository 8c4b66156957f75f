"""The OCR engine on a few real scanned receipts (SROIE), when they are on this machine (docs/sroie.md).

Set TRIBUTARY_SROIE_DIR to a folder with `img/` and `box/`; without it the test skips. The full figures come
from `benchmarks/ocr_real.py` over all odd receipts (README); this test reads five odd ones as a guard.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pipelines.documents.ocr import word_scores
from pipelines.documents.safety import Limits, open_image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from ocr_real import receipts, truth_text  # noqa: E402

SROIE = os.environ.get("TRIBUTARY_SROIE_DIR", "")


@pytest.mark.skipif(not SROIE or not Path(SROIE).is_dir(),
                    reason="TRIBUTARY_SROIE_DIR is not set to the SROIE receipts (docs/sroie.md says how to get them)")
def test_five_odd_receipts_are_read_with_word_f1_above_080(ocr_engine) -> None:
    chosen = receipts(Path(SROIE), "odd", None, None)[:5]
    assert len(chosen) == 5
    matched = predicted = true = 0
    for _, image, box in chosen:
        m, p, t = word_scores(ocr_engine.read(open_image(image.read_bytes(), Limits())).text, truth_text(box))
        matched, predicted, true = matched + m, predicted + p, true + t
    f1 = 2 * matched / (predicted + true)
    assert f1 >= 0.80, f1
