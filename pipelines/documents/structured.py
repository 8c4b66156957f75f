"""JSON maintenance records and XML inspection reports flattened into one typed table of maintenance events.

One row per finding: a JSON record is one finding, an XML report holds one or more. Known fields have one
declared type (`EVENT_COLUMNS`), the widest any schema version used, so a widened field (integer labor hours
that became decimals, an integer ATA chapter that became "chapter-section") never changes a column's type.
Columns that only later versions carry (`EVOLVED_COLUMNS`) appear in a batch only when its documents have
them, and Delta's schema merge adds them to the table without rewriting the older files. A field no version
declares lands as a text column `x_<path>` rather than being dropped.

A document that does not parse, or lacks what makes it an event (record id, tail number, time, description),
is refused with its rule and reason; the rest of the batch goes on.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final
from xml.etree.ElementTree import Element

import polars as pl

from pipelines.documents.safety import (
    RULE_BAD_VALUE,
    RULE_INVALID_JSON,
    RULE_MISSING_FIELD,
    RULE_UNSUPPORTED,
    Refused,
    parse_xml,
)

EVENT_COLUMNS: Final[dict[str, pl.DataType]] = {
    "event_id": pl.String(),
    "doc_id": pl.String(),
    "doc_sha256": pl.String(),
    "source_format": pl.String(),
    "schema_version": pl.Int32(),
    "record_type": pl.String(),
    "tailnum": pl.String(),
    "event_ts": pl.Datetime("us", "UTC"),
    "event_date": pl.Date(),
    "station": pl.String(),
    "ata_chapter": pl.String(),
    "ata_code": pl.String(),
    "description": pl.String(),
    "severity": pl.String(),
    "action": pl.String(),
    "mechanic": pl.String(),
    "labor_hours": pl.Float64(),
    "parts_count": pl.Int32(),
    "part_numbers": pl.List(pl.String()),
    "deferred": pl.Boolean(),
    "mel_item": pl.String(),
    "deferral_category": pl.String(),
    "deferral_due": pl.Date(),
    "run_id": pl.String(),
}
"""Every event has these (null where a document has no value)."""

EVOLVED_COLUMNS: Final[dict[str, pl.DataType]] = {
    "aircraft_hours": pl.Float64(),  # JSON v2, XML v2
    "inspector_name": pl.String(),  # JSON v3, XML
    "inspector_license": pl.String(),
    "check_type": pl.String(),  # XML
}
"""Columns that appear when the first document carrying them arrives."""

_KNOWN_JSON = {"record_id", "schema_version", "tailnum", "reported_at", "station", "ata_chapter", "finding",
               "actions", "parts", "deferral", "aircraft_hours", "inspector"}


@dataclass(frozen=True)
class Source:
    """A landed document to flatten."""

    doc_id: str
    sha256: str
    kind: str
    body: bytes


@dataclass(frozen=True)
class Rejected:
    doc_id: str
    sha256: str
    rule: str
    reason: str


def _timestamp(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str) or not value:
        raise Refused(RULE_MISSING_FIELD if value in (None, "") else RULE_BAD_VALUE, f"{field} is missing or not text")
    try:
        ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Refused(RULE_BAD_VALUE, f"{field} {value[:40]!r} is not an ISO 8601 time") from None
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)


def _date(value: Any, field: str) -> dt.date | None:
    if value in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise Refused(RULE_BAD_VALUE, f"{field} {str(value)[:40]!r} is not a date") from None


def _number(value: Any, field: str) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        raise Refused(RULE_BAD_VALUE, f"{field} is a boolean, not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Refused(RULE_BAD_VALUE, f"{field} {str(value)[:40]!r} is not a number") from None


def _required(value: Any, field: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise Refused(RULE_MISSING_FIELD, f"{field} is missing")
    if not isinstance(value, str):
        raise Refused(RULE_BAD_VALUE, f"{field} is a {type(value).__name__}, not text")
    return value.strip()


def _ata(value: Any) -> tuple[str | None, str | None]:
    """(chapter, full code) from an integer chapter (v1, v2) or a "chapter-section" string (v3)."""
    if value in (None, ""):
        return None, None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise Refused(RULE_BAD_VALUE, f"ata_chapter {value!r} is neither a chapter number nor 'NN-NN'")
    code = f"{value:02d}" if isinstance(value, int) else value.strip()
    chapter = code.split("-", 1)[0]
    if not chapter.isdigit():
        raise Refused(RULE_BAD_VALUE, f"ata_chapter {code[:20]!r} does not start with a chapter number")
    return chapter.zfill(2), code


def _extras(record: dict, known: set[str], prefix: str = "x") -> dict[str, str]:
    """Fields no schema version declares, flattened to text columns `x_<path>` (nested objects walked)."""
    out: dict[str, str] = {}
    for key, value in record.items():
        if key in known:
            continue
        name = f"{prefix}_{''.join(c if c.isalnum() else '_' for c in str(key)).lower()}"
        if isinstance(value, dict):
            out.update(_extras(value, set(), name))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value)
    return out


def flatten_json(body: bytes) -> list[dict]:
    """The event of one JSON maintenance record (a list of one), or Refused."""
    try:
        record = json.loads(body.decode("utf-8-sig"))  # JSON is UTF-8 (RFC 8259); json.loads would guess
    except UnicodeDecodeError:
        raise Refused(RULE_INVALID_JSON, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise Refused(RULE_INVALID_JSON, f"{exc.msg} at line {exc.lineno} column {exc.colno} "
                                         f"(document is {len(body):,} bytes)") from None
    if not isinstance(record, dict):
        raise Refused(RULE_BAD_VALUE, f"the document is a JSON {type(record).__name__}, not an object")
    finding = record.get("finding") or {}
    if not isinstance(finding, dict):
        raise Refused(RULE_BAD_VALUE, "finding is not an object")
    version = record.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int):
        raise Refused(RULE_BAD_VALUE, f"schema_version {version!r} is not an integer")
    at = _timestamp(record.get("reported_at"), "reported_at")
    chapter, code = _ata(record.get("ata_chapter"))
    actions = record.get("actions") or []
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise Refused(RULE_BAD_VALUE, "actions is not a list of objects")
    hours = [h for a in actions if (h := _number(a.get("labor_hours"), "actions.labor_hours")) is not None]
    parts = record.get("parts") or []
    if not isinstance(parts, list):
        raise Refused(RULE_BAD_VALUE, "parts is not a list")
    deferral = record.get("deferral") or {}
    row: dict[str, Any] = {
        "event_id": _required(record.get("record_id"), "record_id"),
        "source_format": "json",
        "schema_version": version,
        "record_type": "maintenance",
        "tailnum": _required(record.get("tailnum"), "tailnum"),
        "event_ts": at,
        "event_date": at.date(),
        "station": record.get("station"),
        "ata_chapter": chapter,
        "ata_code": code,
        "description": _required(finding.get("description"), "finding.description"),
        "severity": finding.get("severity"),
        "action": "; ".join(str(a.get("description", "")) for a in actions) or None,
        "mechanic": "; ".join(sorted({str(a["mechanic"]) for a in actions if a.get("mechanic")})) or None,
        "labor_hours": sum(hours) if hours else None,
        "parts_count": len(parts),
        "part_numbers": [str(p.get("part_number")) for p in parts if isinstance(p, dict) and p.get("part_number")],
        "deferred": bool(deferral),
        "mel_item": deferral.get("mel_item"),
        "deferral_category": deferral.get("category"),
        "deferral_due": _date(deferral.get("due"), "deferral.due"),
    }
    if "aircraft_hours" in record:
        row["aircraft_hours"] = _number(record["aircraft_hours"], "aircraft_hours")
    inspector = record.get("inspector")
    if isinstance(inspector, dict):
        row["inspector_name"] = inspector.get("name")
        row["inspector_license"] = inspector.get("license")
    row.update(_extras({k: v for k, v in finding.items() if k not in ("description", "severity")}, set(), "x_finding"))
    row.update(_extras(record, _KNOWN_JSON))
    return [row]


def _text(element: Element | None) -> str | None:
    return None if element is None or element.text is None else element.text.strip() or None


def flatten_xml(body: bytes) -> list[dict]:
    """The events (one per finding) of one XML inspection report, or Refused."""
    root = parse_xml(body)
    if root.tag != "inspectionReport":
        raise Refused(RULE_BAD_VALUE, f"root element is <{root.tag[:40]}>, not <inspectionReport>")
    report_id = _required(root.get("id"), "inspectionReport@id")
    aircraft = root.find("aircraft")
    tailnum = _required(None if aircraft is None else aircraft.get("tailnum"), "aircraft@tailnum")
    performed = root.find("performed")
    at = _timestamp(None if performed is None else performed.get("at"), "performed@at")
    inspector = root.find("inspector")
    findings = root.findall("findings/finding")
    if not findings:
        raise Refused(RULE_MISSING_FIELD, "the report has no findings/finding")
    version_text = root.get("version", "1")
    if not version_text.isdigit():
        raise Refused(RULE_BAD_VALUE, f"version {version_text[:20]!r} is not an integer")
    hours_text = _text(root.find("aircraftHours"))
    rows = []
    for n, finding in enumerate(findings, 1):
        action = finding.find("action")
        chapter, code = _ata(finding.get("ata"))
        row: dict[str, Any] = {
            "event_id": f"{report_id}/{n}",
            "source_format": "xml",
            "schema_version": int(version_text),
            "record_type": "inspection",
            "tailnum": tailnum,
            "event_ts": at,
            "event_date": at.date(),
            "station": performed.get("station") if performed is not None else None,
            "ata_chapter": chapter,
            "ata_code": code,
            "description": _required(_text(finding.find("description")), f"finding {n} description"),
            "severity": finding.get("severity"),
            "action": _text(action),
            "mechanic": None if action is None else action.get("mechanic"),
            "labor_hours": None if action is None else _number(action.get("hours"), f"finding {n} action@hours"),
            "parts_count": 0,
            "part_numbers": [],
            "deferred": action is None,
            "mel_item": None,
            "deferral_category": None,
            "deferral_due": None,
            "check_type": performed.get("type") if performed is not None else None,
            "inspector_name": None if inspector is None else inspector.get("name"),
            "inspector_license": None if inspector is None else inspector.get("license"),
        }
        if hours_text is not None:
            row["aircraft_hours"] = _number(hours_text, "aircraftHours")
        if finding.get("ref"):
            row["x_finding_ref"] = finding.get("ref")
        rows.append(row)
    return rows


def flatten(sources: Iterable[Source], *, run_id: str) -> tuple[pl.DataFrame, list[Rejected]]:
    """The events of a batch of documents as one typed frame, and the documents refused with their reasons."""
    rows: list[dict] = []
    rejected: list[Rejected] = []
    for src in sources:
        try:
            if src.kind == "maintenance_record":
                events = flatten_json(src.body)
            elif src.kind == "inspection_report":
                events = flatten_xml(src.body)
            else:
                raise Refused(RULE_UNSUPPORTED, f"{src.kind} is not a structured document")
        except Refused as exc:
            rejected.append(Rejected(src.doc_id, src.sha256, exc.rule, exc.reason))
            continue
        for event in events:
            event.update(doc_id=src.doc_id, doc_sha256=src.sha256, run_id=run_id)
        rows.extend(events)
    return to_frame(rows), rejected


def to_frame(rows: list[dict]) -> pl.DataFrame:
    """Rows as a frame with the declared types: base columns always, evolved and extra columns when present."""
    present: list[str] = []
    for row in rows:
        present.extend(k for k in row if k not in present)
    schema = dict(EVENT_COLUMNS)
    for name in present:
        if name not in schema:
            schema[name] = EVOLVED_COLUMNS.get(name, pl.String())
    if not rows:
        return pl.DataFrame(schema=schema)
    data = {name: [row.get(name) for row in rows] for name in schema}
    return pl.DataFrame(data, schema=schema, strict=False)
