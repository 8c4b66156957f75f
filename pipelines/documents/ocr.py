"""OCR with the PP-OCRv4 models that ship inside `rapidocr-onnxruntime` (detection, orientation, recognition).

Three things are added to the library's own pipeline, because typed forms need them:

- spaces: the recognizer was trained mostly on Chinese and drops many spaces between English words. Each
  recognized character comes with its column in the recognizer's output; a gap much wider than the line's
  usual character pitch is a space (`restore_spaces`). This is why scans are set in a monospace font;
- orientation: decided once per page, not per line (`upright`);
- reading order: boxes on one line of a slightly rotated page are grouped after undoing the page's skew,
  estimated from the boxes themselves (`reading_order`).

Recognition runs line by line: on this 2-core CPU, batches of lines were slower (each batch pads every line
to its widest), so the batching that pays is the engine loaded once and reused over all documents of a run.
"""

from __future__ import annotations

import functools
import importlib.metadata
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

SPACE_GAP = 1.6
"""A gap of more than this many times the line's median character pitch is a space."""


@dataclass(frozen=True)
class OcrResult:
    text: str
    confidence: float
    lines: int
    seconds: float


def engine_name() -> str:
    try:
        version = importlib.metadata.version("rapidocr-onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        version = "missing"
    return f"rapidocr-onnxruntime {version} (PP-OCRv4 det + rec, mobile v2 cls)"


class OcrEngine:
    """The OCR models, loaded once (about 0.5 s) and reused for every image of a run."""

    def __init__(self, *, threads: int | None = None, min_confidence: float = 0.5) -> None:
        try:
            from rapidocr_onnxruntime import RapidOCR  # noqa: PLC0415 - start-up: rapidocr/onnxruntime ~0.4 s
            from rapidocr_onnxruntime.utils import infer_engine  # noqa: PLC0415 - start-up: rapidocr/onnxruntime ~0.4 s
        except ImportError as exc:
            raise RuntimeError(f"OCR needs the rapidocr-onnxruntime package: {exc}") from None
        threads = threads or max(1, min(4, os.cpu_count() or 1))
        self.threads = threads
        self.min_confidence = min_confidence
        # onnxruntime's worker threads spin while they wait; on a busy 2-core machine (another step, another
        # test worker) that spinning doubled the CPU per page and the wall time. Off for the sessions made here.
        original = infer_engine.OrtInferSession._init_sess_opts

        def no_spinning(config):
            options = original(config)
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            return options

        infer_engine.OrtInferSession._init_sess_opts = staticmethod(no_spinning)
        try:
            self._engine = RapidOCR(
                det_limit_type="max",  # read the page at its own resolution; the default upscales it
                det_limit_side_len=1600,
                rec_batch_num=1,
                intra_op_num_threads=threads,
                inter_op_num_threads=1,
            )
        finally:
            infer_engine.OrtInferSession._init_sess_opts = staticmethod(original)

    def read(self, image: Image.Image) -> OcrResult:
        started = time.perf_counter()
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        eng = self._engine
        img, _, _ = eng.preprocess(bgr)
        img, _ = eng.maybe_add_letterbox(img, {})
        boxes, _ = eng.auto_text_det(img)
        if boxes is None:
            return OcrResult("", 0.0, 0, time.perf_counter() - started)
        crops = upright(eng, eng.get_crop_img_list(img, boxes))
        recognized, _ = eng.text_rec(crops, True)
        items, confidences = [], []
        for box, (text, confidence, info) in zip(boxes, recognized, strict=True):
            if confidence < self.min_confidence or not text.strip():
                continue
            _, words, columns, _, _ = info
            chars = [c for word in words for c in word]
            cols = [c for word in columns for c in word]
            items.append((np.asarray(box, dtype=np.float32), restore_spaces(chars, cols)))
            confidences.append(float(confidence))
        text = reading_order(items)
        return OcrResult(text, float(np.mean(confidences)) if confidences else 0.0, text.count("\n") + bool(text),
                         time.perf_counter() - started)


def upright(eng, crops: list[np.ndarray]) -> list[np.ndarray]:
    """Turn the page's lines upright, deciding once for the page: the orientation classifier is right about
    most lines of an upside-down page, but on a noisy upright page it flips the odd line on its own."""
    _, labels, _ = eng.text_cls([c.copy() for c in crops])
    flipped = sum(1 for label, score in labels if label == "180" and score > 0.9)
    if flipped * 2 > len(crops):
        return [np.ascontiguousarray(np.rot90(c, 2)) for c in crops]
    return crops


@functools.cache
def shared_engine(threads: int = 0) -> OcrEngine:
    """One engine per process (and thread count): assets, tests and the benchmark share it."""
    return OcrEngine(threads=threads or None)


def restore_spaces(chars: Sequence[str], cols: Sequence[int], *, gap: float = SPACE_GAP) -> str:
    """Join recognized characters, putting a space where the column gap is much wider than the usual pitch."""
    if not chars:
        return ""
    steps = np.diff(np.asarray(cols, dtype=np.float64))
    pitch = float(np.median(steps)) if steps.size else 0.0
    out = [chars[0]]
    for i in range(1, len(chars)):
        if chars[i] != " " and chars[i - 1] != " " and pitch > 0 and steps[i - 1] > gap * pitch:
            out.append(" ")
        out.append(chars[i])
    return " ".join("".join(out).split())


def reading_order(items: Sequence[tuple[np.ndarray, str]]) -> str:
    """Text boxes (4 corner points each) as lines top to bottom, left to right, after undoing the page skew."""
    if not items:
        return ""
    angles = [math.atan2(b[1][1] - b[0][1], b[1][0] - b[0][0]) for b, _ in items]
    angle = float(np.median(angles))
    cos, sin = math.cos(-angle), math.sin(-angle)
    placed = []
    for box, text in items:
        cx, cy = box[:, 0].mean(), box[:, 1].mean()
        x, y = cx * cos - cy * sin, cx * sin + cy * cos
        height = max(float(np.linalg.norm(box[3] - box[0])), 1.0)
        placed.append((y, x, height, text))
    placed.sort()
    lines: list[list[tuple[float, str]]] = []
    line_y, line_h = None, 0.0
    for y, x, height, text in placed:
        if line_y is None or abs(y - line_y) > 0.5 * max(height, line_h):
            lines.append([])
            line_y, line_h = y, height
        lines[-1].append((x, text))
    return "\n".join(" ".join(t for _, t in sorted(line)) for line in lines)


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
