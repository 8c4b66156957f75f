"""The text of every landed document, one row per text: OCR of scans and email attachments, email bodies,
and a readable rendering of JSON and XML records (so search covers all of them).

Images are checked (`safety.open_image`) and decoded a chunk of documents at a time, then read by one OCR
engine loaded once; a refused image or email goes to quarantine and the rest of the chunk goes on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import polars as pl

from pipelines.documents.emails import parse_email
from pipelines.documents.ocr import OcrEngine, engine_name
from pipelines.documents.safety import RULE_UNSUPPORTED, Limits, Refused, open_image
from pipelines.documents.structured import Rejected, Source, flatten_json, flatten_xml

TEXT_COLUMNS: Final[dict[str, pl.DataType]] = {
    "text_id": pl.String(),
    "doc_id": pl.String(),
    "doc_sha256": pl.String(),
    "kind": pl.String(),
    "method": pl.String(),
    "title": pl.String(),
    "tailnum": pl.String(),
    "doc_date": pl.Date(),
    "text": pl.String(),
    "chars": pl.Int32(),
    "text_sha256": pl.String(),
    "ocr_confidence": pl.Float64(),
    "ocr_seconds": pl.Float64(),
    "engine": pl.String(),
    "run_id": pl.String(),
}

_TAIL = re.compile(r"\bN[0-9][0-9A-Z]{1,5}\b")
_DATE = re.compile(r"\b(20\d\d-[01]\d-[0-3]\d)\b")


@dataclass
class TextStats:
    ocr_images: int = 0
    ocr_seconds: float = 0.0
    documents: int = 0

    @property
    def ocr_docs_per_s(self) -> float:
        return self.ocr_images / self.ocr_seconds if self.ocr_seconds else 0.0


@dataclass
class _Pending:
    """A text waiting for OCR."""

    row: dict
    image: object = field(repr=False)


def find_tail(text: str, known: set[str] | None) -> str | None:
    """The first tail number in a text, preferring one the planes table knows (OCR may misread one)."""
    found = _TAIL.findall(text)
    if known:
        for tail in found:
            if tail in known:
                return tail
    return found[0] if found else None


def find_date(text: str) -> dt.date | None:
    for match in _DATE.findall(text):
        try:
            return dt.date.fromisoformat(match)
        except ValueError:
            continue
    return None


def structured_text(kind: str, body: bytes) -> tuple[str, str, str | None, dt.date | None]:
    """(title, text, tail number, date) of a JSON record or XML report, as a person would read it."""
    events = flatten_json(body) if kind == "maintenance_record" else flatten_xml(body)
    first = events[0]
    title = (f"Maintenance record {first['event_id']}" if kind == "maintenance_record"
             else f"Inspection report {first['event_id'].split('/')[0]} ({first.get('check_type') or 'inspection'})")
    lines = [f"{title}: {first['tailnum']} at {first.get('station') or 'unknown station'} on {first['event_date']}."]
    for e in events:
        lines.append(f"Finding: {e['description']}.")
        if e.get("action"):
            lines.append(f"Action: {e['action']}.")
    return title, "\n".join(lines), first["tailnum"], first["event_date"]


def _row(src: Source, text_id: str, kind: str, method: str, title: str, text: str, tail, date, run_id: str,
         *, confidence: float | None = None, seconds: float | None = None, engine: str | None = None) -> dict:
    return {
        "text_id": text_id, "doc_id": src.doc_id, "doc_sha256": src.sha256, "kind": kind, "method": method,
        "title": title, "tailnum": tail, "doc_date": date, "text": text, "chars": len(text),
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(), "ocr_confidence": confidence,
        "ocr_seconds": seconds, "engine": engine, "run_id": run_id,
    }


def extract_texts(
    sources: Iterable[Source],
    *,
    ocr: OcrEngine | Callable[[], OcrEngine],
    run_id: str,
    limits: Limits | None = None,
    known_tails: set[str] | None = None,
    chunk: int = 32,
) -> tuple[pl.DataFrame, list[Rejected], TextStats]:
    """Texts of a batch of documents, the documents refused, and OCR throughput. `ocr` may be a factory, so
    a batch without images never loads the models."""
    limits = limits or Limits()
    rows: list[dict] = []
    rejected: list[Rejected] = []
    stats = TextStats()
    batch: list[Source] = []
    engine: list[OcrEngine] = []

    def get_engine() -> OcrEngine:
        if not engine:
            engine.append(ocr() if callable(ocr) and not isinstance(ocr, OcrEngine) else ocr)  # type: ignore[arg-type]
        return engine[0]

    def flush() -> None:
        pending: list[_Pending] = []
        for src in batch:
            try:
                rows_of, pending_of = _one(src, run_id, limits, known_tails)
            except Refused as exc:
                rejected.append(Rejected(src.doc_id, src.sha256, exc.rule, exc.reason))
                continue
            rows.extend(rows_of)
            pending.extend(pending_of)
            stats.documents += 1
        if pending:
            eng = get_engine()
            started = time.perf_counter()
            for p in pending:
                result = eng.read(p.image)  # type: ignore[arg-type]
                text = result.text
                p.row.update(text=text, chars=len(text), text_sha256=hashlib.sha256(text.encode()).hexdigest(),
                             ocr_confidence=result.confidence, ocr_seconds=result.seconds, engine=engine_name(),
                             tailnum=p.row["tailnum"] or find_tail(text, known_tails),
                             doc_date=p.row["doc_date"] or find_date(text),
                             title=p.row["title"] or (text.splitlines()[0] if text else ""))
                rows.append(p.row)
            stats.ocr_images += len(pending)
            stats.ocr_seconds += time.perf_counter() - started
        batch.clear()

    for src in sources:
        batch.append(src)
        if len(batch) >= chunk:
            flush()
    flush()
    frame = pl.DataFrame(rows, schema=TEXT_COLUMNS) if rows else pl.DataFrame(schema=TEXT_COLUMNS)
    return frame, rejected, stats


def _one(src: Source, run_id: str, limits: Limits, known: set[str] | None) -> tuple[list[dict], list[_Pending]]:
    """Rows ready now, and rows waiting for OCR, of one document; Refused if the document is refused."""
    if src.kind in ("maintenance_record", "inspection_report"):
        title, text, tail, date = structured_text(src.kind, src.body)
        return [_row(src, src.doc_id, src.kind, "structured", title, text, tail, date, run_id)], []
    if src.kind == "work_order_scan":
        image = open_image(src.body, limits)
        return [], [_Pending(_row(src, src.doc_id, src.kind, "ocr", "", "", None, None, run_id), image)]
    if src.kind == "email":
        mail = parse_email(src.body, limits)
        date = mail.sent_at.date() if mail.sent_at else find_date(mail.text)
        tail = find_tail(mail.text, known)
        rows = [_row(src, src.doc_id, "email", "email_body", mail.subject, mail.text, tail, date, run_id)]
        pending = []
        for n, att in enumerate(mail.attachments, 1):
            image = open_image(att.data, limits)  # one bad attachment refuses the email: its text would be partial
            row = _row(src, f"{src.doc_id}/attachment-{n}", "email_attachment", "ocr", att.filename, "", tail, date,
                       run_id)
            pending.append(_Pending(row, image))
        return rows, pending
    raise Refused(RULE_UNSUPPORTED, f"no text reader for {src.kind}")
