"""What is refused before parsing or decoding: oversize files, image bombs, corrupt images, hostile email."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pipelines.documents.emails import parse_email
from pipelines.synthetic.documents import png_bomb
from pipelines.synthetic.render import render_page
from pipelines.documents.safety import Limits, Refused, check_size, open_image


@pytest.mark.parametrize(
    ("data", "rule", "reason"),
    [
        (png_bomb(20_000, 20_000), "image_too_large", "refused before decoding"),  # past Pillow's own bomb limit
        (png_bomb(8_000, 6_000), "image_too_large", "8,000 x 6,000 px is over the limit of 40,000,000 px"),
        (render_page(["cut"], np.random.default_rng(0))[:400], "unreadable_image", "truncated"),
        (b"GIF89a" + b"\0" * 32, "unsupported_type", "not a PNG or JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "unreadable_image", "corrupt"),
    ],
    ids=["bomb", "over-our-limit", "truncated-jpeg", "gif", "garbage-png"],
)
def test_images_are_refused_before_they_cost_memory(data: bytes, rule: str, reason: str) -> None:
    with pytest.raises(Refused) as caught:
        open_image(data, Limits())
    assert caught.value.rule == rule
    assert reason in caught.value.reason


def test_a_real_scan_opens() -> None:
    image = open_image(render_page(["WORK ORDER"], np.random.default_rng(1), fmt="PNG"), Limits())
    assert image.size[0] > 1000


def test_size_limit() -> None:
    check_size(10, Limits(max_document_bytes=10))
    with pytest.raises(Refused, match="11 bytes is over the limit of 10 bytes"):
        check_size(11, Limits(max_document_bytes=10))


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (8, 8), 255).save(out, "PNG")
    return out.getvalue()


def test_email_attachments_and_limits() -> None:
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["Subject"] = "N14228 brake wear"
    msg["From"] = "a@b.example"
    msg["Date"] = "Thu, 14 Mar 2013 08:15:00 +0000"
    msg.set_content("Brakes worn beyond limits.")
    for _ in range(3):
        msg.add_attachment(_png(), maintype="image", subtype="png", filename="scan.png")
    msg.add_attachment(b"%PDF", maintype="application", subtype="pdf", filename="x.pdf")
    parsed = parse_email(msg.as_bytes(), Limits())
    assert parsed.subject == "N14228 brake wear" and "worn" in parsed.body
    assert len(parsed.attachments) == 3 and parsed.skipped == ("x.pdf (application/pdf)",)
    assert parsed.sent_at is not None and parsed.sent_at.year == 2013
    with pytest.raises(Refused, match="3 image attachments is over the limit of 2"):
        parse_email(msg.as_bytes(), Limits(max_attachments=2))
    with pytest.raises(Refused, match="invalid_email"):
        parse_email(b"", Limits())
