"""Emails (.eml, RFC 5322/MIME): headers, the plain-text body, and image attachments for OCR."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

from pipelines.documents.safety import RULE_INVALID_EMAIL, Limits, Refused


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ParsedEmail:
    subject: str
    sender: str
    sent_at: dt.datetime | None
    body: str
    attachments: tuple[Attachment, ...]
    skipped: tuple[str, ...]  # attachments that are not images, by name and type

    @property
    def text(self) -> str:
        """What is searched: the subject, then the body."""
        return f"{self.subject}\n{self.body}".strip()


def parse_email(data: bytes, limits: Limits) -> ParsedEmail:
    """An email's parts, or Refused when it has neither headers nor a body, or too many attachments."""
    msg = BytesParser(policy=policy.default).parsebytes(data)
    if not isinstance(msg, EmailMessage) or (not msg.keys() and not msg.get_payload()):
        raise Refused(RULE_INVALID_EMAIL, "no headers and no body: not an RFC 5322 message")
    if not msg.keys():
        raise Refused(RULE_INVALID_EMAIL, "no headers: not an RFC 5322 message")
    try:
        part = msg.get_body(preferencelist=("plain", "html"))
        body = part.get_content() if part is not None else ""
    except (LookupError, ValueError) as exc:
        raise Refused(RULE_INVALID_EMAIL, f"unreadable body: {exc}") from None
    sent_at = None
    if msg["Date"]:
        try:
            sent_at = parsedate_to_datetime(str(msg["Date"]))
        except (TypeError, ValueError):
            sent_at = None
    attachments, skipped = [], []
    for item in msg.iter_attachments():
        name = item.get_filename() or "attachment"
        ctype = item.get_content_type()
        if ctype in ("image/png", "image/jpeg"):
            attachments.append(Attachment(name, ctype, item.get_payload(decode=True) or b""))
        else:
            skipped.append(f"{name} ({ctype})")
    if len(attachments) > limits.max_attachments:
        raise Refused(RULE_INVALID_EMAIL, f"{len(attachments)} image attachments is over the limit of "
                                          f"{limits.max_attachments}")
    return ParsedEmail(str(msg["Subject"] or ""), str(msg["From"] or ""), sent_at, body.strip(),
                       tuple(attachments), tuple(skipped))
