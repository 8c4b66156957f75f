"""What a document must pass before anything parses or decodes it. A refused document goes to quarantine
with its rule and a one-line reason, and the run goes on.

- files larger than `max_document_bytes` are not copied at all;
- XML goes through defusedxml: entity declarations (billion laughs) and external entities (XXE) are refused;
- images must be PNG or JPEG, and their size is read from the header before a pixel is decoded, so a
  decompression bomb (a small file declaring billions of pixels) is refused without allocating it;
- `tributary docs ocr` also reads TIFF, BMP, GIF and WebP images and PDF pages (`open_pages`), under the
  same pixel limit: a PDF page is rendered at 200 dpi, or smaller if that would pass the limit.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import fromstring
import pypdfium2
from PIL import Image

RULE_OVERSIZE: Final = "oversize"
RULE_UNSUPPORTED: Final = "unsupported_type"
RULE_INVALID_JSON: Final = "invalid_json"
RULE_INVALID_XML: Final = "invalid_xml"
RULE_XML_FORBIDDEN: Final = "xml_forbidden"
RULE_MISSING_FIELD: Final = "missing_field"
RULE_BAD_VALUE: Final = "bad_value"
RULE_IMAGE_TOO_LARGE: Final = "image_too_large"
RULE_UNREADABLE_IMAGE: Final = "unreadable_image"
RULE_INVALID_EMAIL: Final = "invalid_email"


@dataclass(frozen=True)
class Limits:
    """How much a single document may cost; the defaults suit scanned forms and emails."""

    max_document_bytes: int = 10 * 2**20
    max_image_pixels: int = 40_000_000
    max_attachments: int = 10


class Refused(Exception):
    """A document refused by a rule; `reason` is one line for the quarantine table."""

    def __init__(self, rule: str, reason: str) -> None:
        super().__init__(f"{rule}: {reason}")
        self.rule = rule
        self.reason = reason


def check_size(size: int, limits: Limits) -> None:
    if size > limits.max_document_bytes:
        raise Refused(RULE_OVERSIZE, f"{size:,} bytes is over the limit of {limits.max_document_bytes:,} bytes")


def parse_xml(data: bytes) -> Element:
    """Parse XML with entity declarations, external references and DTD tricks refused."""
    try:
        return fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except EntitiesForbidden as exc:
        kind = "external entity" if exc.sysid or exc.pubid else "entity declaration"
        raise Refused(RULE_XML_FORBIDDEN,
                      f"{kind} {exc.name!r} refused (entity expansion and XXE are not allowed)") from None
    except (ExternalReferenceForbidden, DTDForbidden) as exc:
        raise Refused(RULE_XML_FORBIDDEN, f"external reference refused: {exc}") from None
    except DefusedXmlException as exc:
        raise Refused(RULE_XML_FORBIDDEN, str(exc)) from None
    except ParseError as exc:
        raise Refused(RULE_INVALID_XML, f"not well-formed XML: {exc}") from None


_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG"}


def open_image(data: bytes, limits: Limits) -> Image.Image:
    """A decoded PNG or JPEG, or Refused: wrong format, too many pixels (checked before decoding), corrupt."""
    if not any(data.startswith(magic) for magic in _MAGIC):
        raise Refused(RULE_UNSUPPORTED, "not a PNG or JPEG image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > limits.max_image_pixels:
                raise Refused(
                    RULE_IMAGE_TOO_LARGE,
                    f"{width:,} x {height:,} px is over the limit of {limits.max_image_pixels:,} px "
                    "(a decompression bomb is refused before decoding)",
                )
            image.load()
    except Refused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Refused(RULE_IMAGE_TOO_LARGE, f"{str(exc).splitlines()[0].rstrip('.')}; the limit here is "
                                            f"{limits.max_image_pixels:,} px (refused before decoding)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise Refused(RULE_UNREADABLE_IMAGE, f"corrupt or truncated image: {str(exc).splitlines()[0]}") from None
    return image


PAGE_FORMATS: Final = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP")
"""The image formats `open_pages` reads, besides PDF."""
PDF_DPI: Final = 200


def open_pages(data: bytes, limits: Limits, *, dpi: int = PDF_DPI) -> list[Image.Image]:
    """Every page of a PDF or every frame of an image file (a TIFF may hold several), as RGB images; or Refused."""
    check_size(len(data), limits)
    if data.startswith(b"%PDF-"):
        return _pdf_pages(data, limits, dpi)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in PAGE_FORMATS:
                raise Refused(RULE_UNSUPPORTED, f"{image.format} images are not read (only PDF, {', '.join(PAGE_FORMATS)})")
            _check_pixels(*image.size, limits)
            frames = []
            for i in range(getattr(image, "n_frames", 1)):
                image.seek(i)
                frames.append(image.convert("RGB"))
            return frames
    except Refused:
        raise
    except Image.UnidentifiedImageError:
        raise Refused(RULE_UNSUPPORTED, f"not an image or a PDF (only PDF, {', '.join(PAGE_FORMATS)})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, OSError, SyntaxError, ValueError) as exc:
        raise Refused(RULE_UNREADABLE_IMAGE, f"corrupt or truncated image: {str(exc).splitlines()[0]}") from None


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_image_pixels:
        raise Refused(RULE_IMAGE_TOO_LARGE, f"{width:,} x {height:,} px is over the limit of "
                                            f"{limits.max_image_pixels:,} px (refused before decoding)")


def _pdf_pages(data: bytes, limits: Limits, dpi: int) -> list[Image.Image]:
    """Each page rendered at `dpi`, scaled down where that would pass the pixel limit."""
    try:
        pdf = pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        raise Refused(RULE_UNREADABLE_IMAGE, f"unreadable PDF: {exc}") from None
    try:
        pages = []
        for page in pdf:
            width, height = page.get_size()  # points, 1/72 inch
            scale = min(dpi / 72, (limits.max_image_pixels / max(width * height, 1.0)) ** 0.5)
            pages.append(page.render(scale=scale).to_pil().convert("RGB"))
        return pages
    finally:
        pdf.close()
