"""`tributary docs ocr`: a scan and the same scan as a PDF page read by the documents' engine; bad files are
one `error:` line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from pipelines.documents.cli import docs
from pipelines.documents.ocr import character_error_rate
from pipelines.synthetic.documents import generate


@pytest.fixture(scope="module")
def scan() -> tuple[bytes, str]:
    corpus = generate(seed=5, records=0, reports=0, scans=1, emails=0)
    page = corpus.files[0]
    return page.body, corpus.truths()[page.doc_id]


def test_an_image_and_a_pdf_page_give_the_scans_text(ocr_engine, scan: tuple[bytes, str], tmp_path: Path) -> None:
    body, truth = scan
    image = tmp_path / "scan.png"
    image.write_bytes(body)
    pdf = tmp_path / "scan.pdf"
    buffer = io.BytesIO()
    Image.open(io.BytesIO(body)).convert("RGB").save(buffer, format="PDF", resolution=150)
    pdf.write_bytes(buffer.getvalue())
    result = CliRunner().invoke(docs, ["ocr", str(image), str(pdf), "--format", "json"])
    assert result.exit_code == 0, result.output
    pages = json.loads(result.output)
    assert [(p["file"], p["page"]) for p in pages] == [(str(image), 1), (str(pdf), 1)]
    for page in pages:
        assert character_error_rate(page["text"], truth) < 0.05, page["text"]
    text = CliRunner().invoke(docs, ["ocr", str(image)])
    assert text.exit_code == 0 and text.output.strip() == pages[0]["text"]


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("missing.png", None, "error: no such file: "),
        ("notes.txt", b"not a scan", "not an image or a PDF"),
        ("broken.pdf", b"%PDF-1.4 truncated", "unreadable PDF"),
        ("icon.ico", None, "ICO images are not read"),
    ],
)
def test_a_bad_file_is_one_error_line(name: str, body: bytes | None, message: str, tmp_path: Path) -> None:
    path = tmp_path / name
    if name.endswith(".ico"):
        Image.new("RGB", (16, 16)).save(path, format="ICO")
    elif body is not None:
        path.write_bytes(body)
    result = CliRunner().invoke(docs, ["ocr", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
