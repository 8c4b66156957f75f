"""OCR with the PP-OCRv6 models that ship inside the `rapidocr` wheel (3.x: detection, recognition, and the
mobile orientation classifier), read from the installed package by path: nothing is downloaded at run time.

What is added to the library's own pipeline, because real scans and typed forms need it:

- orientation, once per page: a page whose text boxes stand upright is turned a quarter (`quarter_turns`),
  and a page whose lines the classifier mostly reads as upside down is turned a half (`upright`); the
  classifier alone flips the odd line of a noisy upright page;
- spaces: the recognizer drops some spaces between words: its best reading of the columns between two
  characters is "nothing" even where it gives a space a fair chance. A space is put back where the model gives
  one at least `SPACE_PROB` in a column between two characters at least `SPACE_MIN_GAP` line heights apart,
  or where the characters lie more than `SPACE_GAP` line heights apart. Each recognized character comes with
  its column in the recognizer's output, whose unit is a fixed share of the line's height (the crop is scaled
  to 48 px high, a column is 8 px), so gaps hold for proportional and monospace fonts alike
  (`restore_spaces`);
- reading order: the page's skew is estimated from the boxes and undone; boxes that overlap vertically form a
  line; a blank vertical gutter running down a block of prose splits it into columns read one after the
  other (`reading_order`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import itertools
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

MODEL_FILES = {
    "det": "PP-OCRv6_det_small.onnx",
    "rec": "PP-OCRv6_rec_small.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}
"""The three models inside the rapidocr wheel (`rapidocr/models/`), named so rapidocr never looks them up."""
COLUMN = 8 / 48
"""One column of the recognizer's output, in line heights (a line is scaled to 48 px high, a column is 8 px)."""
SPACE_GAP = 1.5
"""Characters whose columns lie more than this many line heights apart have a space between them."""
SPACE_PROB = 0.05
"""...as have two characters at least `SPACE_MIN_GAP` apart when a column between them gives a space this much."""
SPACE_MIN_GAP = 0.5
"""(line heights) Closer characters are not split however the model hesitates: one glyph can span 3 columns."""
NO_SPACE_BEFORE = ".,"
"""A period or comma closes the word before it: the model's hesitation is not enough to set it apart."""
DET_SIDE = 1600
"""The detector reads a page scaled down to this longest side (never up)."""
GUTTER = 1.5
"""A blank vertical band at least this many line heights wide, down a block of prose, separates two columns."""
MIN_ROWS = 4
"""...and it must run beside at least this many lines with text on both sides."""
PROSE_WORDS = 3
"""...and the boxes on each side must hold at least this many words (median): prose, not a label and its value."""


@dataclass(frozen=True)
class OcrResult:
    text: str
    confidence: float
    lines: int
    seconds: float


def engine_name() -> str:
    try:
        version = importlib.metadata.version("rapidocr")
    except importlib.metadata.PackageNotFoundError:
        version = "missing"
    return f"rapidocr {version} (PP-OCRv6 small det + rec, mobile v2 cls)"


def model_paths() -> dict[str, Path]:
    """The shipped model files, or RuntimeError: rapidocr would otherwise try to download missing ones."""
    try:
        import rapidocr  # noqa: PLC0415 - start-up: rapidocr/onnxruntime/cv2 ~0.5 s, only when OCR runs
    except ImportError as exc:
        raise RuntimeError(f"OCR needs the rapidocr package: {exc}") from None
    folder = Path(rapidocr.__file__).parent / "models"
    paths = {task: folder / name for task, name in MODEL_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise RuntimeError(f"the rapidocr wheel lacks its models ({', '.join(missing)}); reinstall rapidocr 3.x")
    return paths


class OcrEngine:
    """The OCR models, loaded once (about 1 s) and reused for every image of a run."""

    def __init__(self, *, threads: int | None = None, min_confidence: float = 0.5) -> None:
        paths = model_paths()
        from rapidocr import RapidOCR  # noqa: PLC0415 - start-up, as above
        from rapidocr.inference_engine.onnxruntime.main import OrtInferSession  # noqa: PLC0415 - start-up

        threads = threads or max(1, min(4, os.cpu_count() or 1))
        self.threads = threads
        self.min_confidence = min_confidence
        # onnxruntime's worker threads spin while they wait; on a busy 2-core machine (another step, another
        # test worker) that spinning doubled the CPU per page and the wall time. Off for the sessions made here.
        original = OrtInferSession._init_sess_opts

        def no_spinning(config):
            options = original(config)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            return options

        OrtInferSession._init_sess_opts = staticmethod(no_spinning)
        try:
            ocr = RapidOCR(
                params={
                    "Global.log_level": "critical",
                    "Global.model_root_dir": str(paths["det"].parent),
                    "Det.model_path": str(paths["det"]),
                    "Cls.model_path": str(paths["cls"]),
                    "Rec.model_path": str(paths["rec"]),
                    "Det.limit_type": "max",
                    "Det.limit_side_len": DET_SIDE,
                    "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                }
            )
            # The three stages, loaded now rather than on the first page; they are called one by one so the
            # page-level decisions above sit between them.
            self._det, self._cls, self._rec = ocr._load_det_model(), ocr._load_cls_model(), ocr._load_rec_model()
        finally:
            OrtInferSession._init_sess_opts = staticmethod(original)
        self._rec.postprocess_op = _KeepSpaceProbs(self._rec.postprocess_op)

    def read(self, image: Image.Image) -> OcrResult:
        started = time.perf_counter()
        lines = self.lines(np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1]))
        text = reading_order([(box, text) for box, text, _ in lines])
        confidence = float(np.mean([c for _, _, c in lines])) if lines else 0.0
        return OcrResult(text, confidence, text.count("\n") + bool(text), time.perf_counter() - started)

    def _detect(self, bgr: np.ndarray) -> np.ndarray:
        boxes = self._det(bgr).boxes
        return np.zeros((0, 4, 2), np.float32) if boxes is None else np.asarray(boxes, dtype=np.float32)

    def lines(self, bgr: np.ndarray) -> list[tuple[np.ndarray, str, float]]:
        """(box, text, confidence) of every text line on an upright copy of the page, in the detector's order."""
        from rapidocr.ch_ppocr_rec import TextRecInput  # noqa: PLC0415 - loaded with the engine already
        from rapidocr.utils.process_img import get_rotate_crop_image  # noqa: PLC0415 - likewise

        boxes = self._detect(bgr)
        if quarter_turns(boxes):
            bgr = np.ascontiguousarray(np.rot90(bgr))
            boxes = self._detect(bgr)
        if not len(boxes):
            return []
        crops = [get_rotate_crop_image(bgr, box.copy()) for box in boxes]
        if upside_down([label for label, score in self._cls(crops).cls_res if score > 0.9]):
            height, width = bgr.shape[:2]
            boxes = np.roll(np.stack([width - boxes[..., 0], height - boxes[..., 1]], axis=-1), 2, axis=1)
            crops = [np.ascontiguousarray(np.rot90(c, 2)) for c in crops]
        out = self._rec(TextRecInput(img=crops, return_word_box=True))
        lines = []
        for box, text, confidence, info in zip(boxes, out.txts, out.scores, out.word_results, strict=True):
            if confidence < self.min_confidence or not text.strip():
                continue
            cols = [c for word in info.word_cols for c in word]
            lines.append((box, restore_spaces(text, cols, info.space_probs), float(confidence)))
        return lines


class _KeepSpaceProbs:
    """rapidocr's CTC decoder, which also keeps each line's probability of a space in every output column
    (`space_probs` on the line's word info): the decoder itself keeps only the best reading of each column."""

    def __init__(self, decoder) -> None:
        if decoder.character[-1] != " ":
            raise RuntimeError("the recognizer's last class is not a space: an unexpected rapidocr version")
        self.decoder = decoder

    def __call__(self, preds: np.ndarray, return_word_box: bool = False, **kwargs):
        line_results, word_results = self.decoder(preds, return_word_box, **kwargs)
        for info, probs in zip(word_results, preds[:, :, -1], strict=False):
            info.space_probs = np.asarray(probs, dtype=np.float32)
        return line_results, word_results


def quarter_turns(boxes: np.ndarray) -> bool:
    """True when most text boxes stand upright (taller than wide): the page lies on its side."""
    if not len(boxes):
        return False
    widths = np.linalg.norm(boxes[:, 1] - boxes[:, 0], axis=1)
    heights = np.linalg.norm(boxes[:, 3] - boxes[:, 0], axis=1)
    return int(np.sum(heights > 1.5 * widths)) * 2 > len(boxes)


def upside_down(labels: Sequence[str]) -> bool:
    """The page's orientation from its lines' confident labels: the classifier is right about most lines of an
    upside-down page, but on a noisy upright page it flips the odd line on its own."""
    return sum(1 for label in labels if label == "180") * 2 > max(len(labels), 1)


@functools.cache
def shared_engine(threads: int = 0) -> OcrEngine:
    """One engine per process (and thread count): assets, tests and the benchmark share it."""
    return OcrEngine(threads=threads or None)


def restore_spaces(
    text: str, cols: Sequence[int], space_probs: Sequence[float] | None = None, *, gap: float = SPACE_GAP
) -> str:
    """The recognized line with a space put back between two characters where the model gives a space at least
    `SPACE_PROB` in a column between them (if they lie at least `SPACE_MIN_GAP` line heights apart and the
    second is not in `NO_SPACE_BEFORE`), or where they lie more than `gap` line heights apart.

    `cols` holds the recognizer's column of each non-space character of `text`, `space_probs` the probability
    of a space in each column of its output; the model's own spaces stay. Gaps are measured in line heights,
    not in the line's usual character pitch, so they hold for a proportional font (where an "i" and a "W" have
    different pitches) as for a monospace one.
    """
    chars = [c for c in text if not c.isspace()]
    if len(chars) != len(cols):  # not the recognizer's own output: keep the text as it is
        return " ".join(text.split())
    probs = np.zeros(0, np.float32) if space_probs is None else np.asarray(space_probs, dtype=np.float32)
    out: list[str] = []
    i = 0
    for c in text:
        if c.isspace():
            out.append(" ")
            continue
        if i and out[-1] != " ":
            apart = (cols[i] - cols[i - 1]) * COLUMN
            between = probs[cols[i - 1] + 1 : cols[i]]
            hesitant = (
                len(between)
                and float(between.max()) >= SPACE_PROB
                and apart >= SPACE_MIN_GAP - 1e-9
                and c not in NO_SPACE_BEFORE
            )
            if apart > gap or hesitant:
                out.append(" ")
        out.append(c)
        i += 1
    return " ".join("".join(out).split())


@dataclass(frozen=True)
class _Box:
    x0: float
    x1: float
    y0: float
    y1: float
    text: str

    @property
    def y(self) -> float:
        return (self.y0 + self.y1) / 2

    @property
    def height(self) -> float:
        return self.y1 - self.y0


def _deskewed(items: Sequence[tuple[np.ndarray, str]]) -> list[_Box]:
    """The boxes' extents after rotating the page by minus its skew (the median angle of the boxes' tops)."""
    angle = float(np.median([math.atan2(b[1][1] - b[0][1], b[1][0] - b[0][0]) for b, _ in items]))
    rotation = np.array([[math.cos(-angle), -math.sin(-angle)], [math.sin(-angle), math.cos(-angle)]])
    out = []
    for box, text in items:
        pts = np.asarray(box, dtype=np.float64) @ rotation.T
        out.append(_Box(pts[:, 0].min(), pts[:, 0].max(), pts[:, 1].min(), pts[:, 1].max(), text))
    return out


def _rows(boxes: Sequence[_Box]) -> list[list[_Box]]:
    """Boxes grouped into lines, top to bottom, each line left to right: a box joins the line whose centre is
    within half a height of its own."""
    rows: list[list[_Box]] = []
    row_y = row_h = 0.0
    for box in sorted(boxes, key=lambda b: (b.y, b.x0)):
        if not rows or abs(box.y - row_y) > 0.5 * max(box.height, row_h):
            rows.append([])
            row_y, row_h = box.y, box.height
        rows[-1].append(box)
    return [sorted(row, key=lambda b: b.x0) for row in rows]


def _gaps(row: Sequence[_Box], width: float) -> list[tuple[float, float]]:
    """The blank stretches between a line's boxes at least `width` wide."""
    return [(a.x1, b.x0) for a, b in itertools.pairwise(row) if b.x0 - a.x1 >= width]


def _common(gaps: list[tuple[float, float]], row: Sequence[_Box], width: float) -> list[tuple[float, float]]:
    """The parts of `gaps` that no box of `row` covers and that stay at least `width` wide."""
    out = []
    for g0, g1 in gaps:
        for box in row:
            if box.x0 < g1 and box.x1 > g0:  # the box cuts into the gap: keep the wider side
                g0, g1 = max((g0, box.x0), (box.x1, g1), key=lambda g: g[1] - g[0])
        if g1 - g0 >= width:
            out.append((g0, g1))
    return out


def _is_prose(boxes: Sequence[_Box]) -> bool:
    return bool(boxes) and float(np.median([len(b.text.split()) for b in boxes])) >= PROSE_WORDS


def _column_block(rows: list[list[_Box]], width: float) -> tuple[int, int, float] | None:
    """(first row, end row, x of the gutter) of the first run of lines split by a blank gutter into prose columns."""
    for start, row in enumerate(rows):
        gaps, end, both = _gaps(row, width), start + 1, 1
        while gaps and end < len(rows):
            narrowed = _common(gaps, rows[end], width)
            if not narrowed:
                break
            gaps, end = narrowed, end + 1
            both += bool(_gaps(rows[end - 1], width))
        if gaps and both >= MIN_ROWS:
            cut = (gaps[0][0] + gaps[0][1]) / 2
            block = [b for r in rows[start:end] for b in r]
            if _is_prose([b for b in block if b.x1 <= cut]) and _is_prose([b for b in block if b.x0 >= cut]):
                return start, end, cut
    return None


def _read(boxes: Sequence[_Box], width: float) -> list[str]:
    """Lines in reading order: row by row, except a block of prose columns, read column by column."""
    rows = _rows(boxes)
    block = _column_block(rows, width)
    if block is None:
        return [" ".join(b.text for b in row) for row in rows]
    start, end, cut = block
    inside = [b for r in rows[start:end] for b in r]
    before = [" ".join(b.text for b in row) for row in rows[:start]]
    after = _read([b for r in rows[end:] for b in r], width)
    return (
        before
        + _read([b for b in inside if b.x1 <= cut], width)
        + _read([b for b in inside if b.x0 >= cut], width)
        + after
    )


def reading_order(items: Sequence[tuple[np.ndarray, str]]) -> str:
    """Text boxes (4 corner points each) as lines in reading order, after undoing the page's skew."""
    if not items:
        return ""
    boxes = _deskewed(items)
    width = GUTTER * float(np.median([b.height for b in boxes]))
    return "\n".join(_read(boxes, width))


def normalize(text: str) -> str:
    """Whitespace as OCR can know it: one space between words, one newline between non-empty lines."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines() if line.strip())


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions), in O(len(a) * len(b)) time and O(len(b)) memory."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        append = current.append
        for j, cb in enumerate(b, 1):
            append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def character_error_rate(predicted: str, truth: str) -> float:
    """Edit distance over the length of the truth, both normalized (`normalize`); case and punctuation count."""
    truth_n = normalize(truth)
    if not truth_n:
        return 0.0 if not normalize(predicted) else 1.0
    return levenshtein(normalize(predicted), truth_n) / len(truth_n)


def word_scores(predicted: str, truth: str) -> tuple[int, int, int]:
    """(matched, predicted, true) word counts: bags of whitespace-separated words, upper case, exact match."""
    said = Counter(predicted.upper().split())
    true = Counter(truth.upper().split())
    return sum((said & true).values()), sum(said.values()), sum(true.values())


def receipt_cer(predicted: str, truth: str) -> tuple[int, int]:
    """(edits, characters) of the truth: upper case, every run of whitespace (line breaks too) one space."""
    truth_n = " ".join(truth.upper().split())
    return levenshtein(" ".join(predicted.upper().split()), truth_n), len(truth_n)
