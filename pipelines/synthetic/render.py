"""Render a work order as a scanned page: monospace text, paper tone, noise, specks, blur and a slight rotation.

The font is DejaVu Sans Mono as shipped inside the matplotlib wheel (found on disk, matplotlib is not imported):
typewritten forms are monospace, and a space as wide as a letter is what lets the OCR put the spaces back
(PP-OCR's recognizer drops most spaces between English words set in a proportional font). Without matplotlib
the renderer falls back on Pillow's own scalable font, which OCR reads with fewer spaces.
"""

from __future__ import annotations

import functools
import importlib.util
import io
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_SIZE = 24
LINE_HEIGHT = 42
MARGIN = 36
PAGE_WIDTH = 1100


@functools.cache
def font_path() -> Path | None:
    """DejaVu Sans Mono from the matplotlib package's data, when installed."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSansMono.ttf"
    return path if path.exists() else None


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = font_path()
    if path is not None:
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def render_page(
    lines: list[str],
    rng: np.random.Generator,
    *,
    fmt: Literal["PNG", "JPEG"] = "JPEG",
    rotation: float | None = None,
    noise: float | None = None,
) -> bytes:
    """The lines as an encoded page image, with scanner noise drawn from `rng` (same rng state, same bytes)."""
    font = _font(FONT_SIZE)
    height = 2 * MARGIN + LINE_HEIGHT * len(lines)
    paper = int(rng.integers(232, 252))
    ink = int(rng.integers(15, 70))
    page = Image.new("L", (PAGE_WIDTH, height), paper)
    draw = ImageDraw.Draw(page)
    draw.rectangle((10, 10, PAGE_WIDTH - 11, height - 11), outline=ink + 60, width=2)
    for i, line in enumerate(lines):
        draw.text((MARGIN, MARGIN + i * LINE_HEIGHT), line, fill=ink, font=font)
    sigma = float(rng.uniform(6.0, 18.0)) if noise is None else noise
    pixels = np.asarray(page, dtype=np.float32) + rng.normal(0.0, sigma, (height, PAGE_WIDTH)).astype(np.float32)
    specks = rng.random((height, PAGE_WIDTH)) < float(rng.uniform(0.0005, 0.002))
    pixels[specks] = rng.integers(0, 120, int(specks.sum()))
    page = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    blur = float(rng.uniform(0.0, 0.6))
    if blur > 0.2:
        page = page.filter(ImageFilter.GaussianBlur(blur))
    angle = float(rng.uniform(-2.0, 2.0)) if rotation is None else rotation
    page = page.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=paper)
    out = io.BytesIO()
    if fmt == "JPEG":
        page.save(out, "JPEG", quality=int(rng.integers(60, 90)))
    else:
        page.save(out, "PNG", optimize=False)
    return out.getvalue()
