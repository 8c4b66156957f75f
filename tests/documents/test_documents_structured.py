"""JSON and XML flattened into one typed table; evolved schemas add columns; broken documents are refused."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from deltalake import DeltaTable

from pipelines.synthetic.documents import billion_laughs, external_entity
from pipelines.documents.safety import Refused
from pipelines.documents.structured import EVENT_COLUMNS, Source, flatten, flatten_json, flatten_xml
from pipelines.documents.tables import upsert
from pipelines.core.lake import Lake

V1 = {"record_id": "MR-1", "schema_version": 1, "tailnum": "N14228", "reported_at": "2013-03-14T08:15:00Z",
      "station": "EWR", "ata_chapter": 32, "finding": {"description": "Fluid leak", "severity": "minor"},
      "actions": [{"description": "Replaced seal", "mechanic": "J. ALVAREZ", "labor_hours": 3}]}
V2 = {**V1, "record_id": "MR-2", "schema_version": 2, "aircraft_hours": 23456.5,
      "actions": [{"description": "Replaced seal", "mechanic": "M. CHEN", "labor_hours": 2.5}]}
V3 = {**V2, "record_id": "MR-3", "schema_version": 3, "ata_chapter": "32-41",
      "inspector": {"name": "S. NOVAK", "license": "QA-221"}}
V4 = {**V3, "record_id": "MR-4", "schema_version": 4, "weather": {"temp_c": -3, "wet": True}}
OPTIONALS = {**V1, "record_id": "MR-5", "actions": [], "parts": [{"part_number": "65-44761-3", "quantity": 2}],
             "deferral": {"mel_item": "32-41-01", "category": "C", "due": "2013-03-24"}}

XML = b"""<?xml version="1.0"?>
<inspectionReport id="IR-1" version="2">
  <aircraft tailnum="N14228"/>
  <performed station="JFK" at="2013-06-01T22:10:00Z" type="A-check"/>
  <inspector name="T. BRENNAN" license="QA-660"/>
  <aircraftHours>31000.5</aircraftHours>
  <findings>
    <finding ata="32" severity="minor"><description>Brake wear</description>
      <action hours="1.5" mechanic="M. CHEN">Replaced brake</action></finding>
    <finding ata="33" severity="major"><description>Landing light inoperative</description></finding>
  </findings>
</inspectionReport>"""


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (V1, {"schema_version": 1, "labor_hours": 3.0, "ata_chapter": "32", "ata_code": "32"}),
        (V2, {"schema_version": 2, "labor_hours": 2.5, "aircraft_hours": 23456.5}),
        (V3, {"ata_chapter": "32", "ata_code": "32-41", "inspector_name": "S. NOVAK", "inspector_license": "QA-221"}),
        (V4, {"schema_version": 4, "x_weather_temp_c": "-3", "x_weather_wet": "true"}),
        (OPTIONALS, {"action": None, "labor_hours": None, "parts_count": 1, "part_numbers": ["65-44761-3"],
                     "deferred": True, "mel_item": "32-41-01", "deferral_due": dt.date(2013, 3, 24)}),
    ],
    ids=["v1", "v2-widened-hours-new-field", "v3-widened-ata-nested-inspector", "v4-unknown-fields", "optionals"],
)
def test_evolved_json_flattens_to_the_declared_types(record: dict, expected: dict) -> None:
    [row] = flatten_json(json.dumps(record).encode())
    for key, value in expected.items():
        assert row[key] == value, key
    frame, rejected = flatten([Source("d", "h", "maintenance_record", json.dumps(record).encode())], run_id="r")
    assert not rejected
    assert all(frame.schema[c] == t for c, t in EVENT_COLUMNS.items())
    assert frame["event_ts"][0] == dt.datetime(2013, 3, 14, 8, 15, tzinfo=dt.UTC)


def test_xml_report_is_one_row_per_finding() -> None:
    rows = flatten_xml(XML)
    assert [r["event_id"] for r in rows] == ["IR-1/1", "IR-1/2"]
    assert rows[0]["labor_hours"] == 1.5 and rows[0]["check_type"] == "A-check" and rows[0]["aircraft_hours"] == 31000.5
    assert rows[1]["deferred"] is True and rows[1]["action"] is None


def _cut(record: dict) -> bytes:
    text = json.dumps(record).encode()
    return text[: len(text) // 2]


@pytest.mark.parametrize(
    ("kind", "body", "rule", "reason"),
    [
        ("maintenance_record", _cut(V1), "invalid_json", "Unterminated string"),
        ("maintenance_record", b"\xff\xfe{}", "invalid_json", "not UTF-8"),
        ("maintenance_record", b"[1, 2]", "bad_value", "a JSON list, not an object"),
        ("maintenance_record", json.dumps({k: v for k, v in V1.items() if k != "tailnum"}).encode(),
         "missing_field", "tailnum is missing"),
        ("maintenance_record", json.dumps({**V1, "reported_at": "yesterday"}).encode(), "bad_value", "not an ISO 8601"),
        ("maintenance_record", json.dumps({**V1, "ata_chapter": [32]}).encode(), "bad_value", "ata_chapter"),
        ("maintenance_record", json.dumps({**V1, "actions": [{"labor_hours": "three"}]}).encode(), "bad_value",
         "is not a number"),
        ("maintenance_record", json.dumps({**V1, "schema_version": "2"}).encode(), "bad_value", "schema_version"),
        ("inspection_report", billion_laughs(), "xml_forbidden", "entity declaration"),
        ("inspection_report", external_entity(), "xml_forbidden", "external entity 'xxe'"),
        ("inspection_report", b"<inspectionReport id='x'><aircraft", "invalid_xml", "not well-formed"),
        ("inspection_report", b"<report/>", "bad_value", "not <inspectionReport>"),
        ("inspection_report", XML.replace(b"<findings>", b"<nothing>").replace(b"</findings>", b"</nothing>"),
         "missing_field", "no findings"),
    ],
    ids=["truncated-json", "not-utf8", "json-list", "no-tail", "bad-time", "bad-ata", "hours-text", "version-text",
         "billion-laughs", "external-entity", "truncated-xml", "wrong-root", "no-findings"],
)
def test_broken_documents_are_refused_with_a_reason(kind: str, body: bytes, rule: str, reason: str) -> None:
    frame, rejected = flatten([Source("bad", "h", kind, body), Source("good", "h", "maintenance_record",
                                                                     json.dumps(V1).encode())], run_id="r")
    assert frame["doc_id"].to_list() == ["good"]  # the batch goes on
    [r] = rejected
    assert (r.doc_id, r.rule) == ("bad", rule)
    assert reason in r.reason


def test_refused_raises_for_direct_callers() -> None:
    with pytest.raises(Refused, match="invalid_json"):
        flatten_json(b"{")


def test_schema_evolution_adds_columns_without_rewriting_history(tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    rel = "standardized/maintenance_events"
    batches = [[V1], [V2], [V3, V4]]
    files_by_version: list[set[str]] = []
    for i, batch in enumerate(batches):
        frame, _ = flatten([Source(r["record_id"].lower(), "h", "maintenance_record", json.dumps(r).encode())
                            for r in batch], run_id=f"r{i}")
        upsert(lake, rel, frame, keys=["event_id"])
        files_by_version.append(set(DeltaTable(lake.uri(rel)).file_uris()))
    assert files_by_version[0] <= files_by_version[1] <= files_by_version[2]  # old files stay, untouched
    table = pl.read_delta(lake.uri(rel))
    assert {"aircraft_hours", "inspector_name", "x_weather_temp_c"} <= set(table.columns)
    assert table.schema["labor_hours"] == pl.Float64 and table.schema["ata_code"] == pl.String
    first = table.filter(pl.col("event_id") == "MR-1")
    assert first["aircraft_hours"][0] is None and first["labor_hours"][0] == 3.0

    again, _ = flatten([Source("mr-1", "h", "maintenance_record", json.dumps(V1).encode())], run_id="again")
    upsert(lake, rel, again, keys=["event_id"], replace=("doc_id", ["mr-1"]))
    assert pl.read_delta(lake.uri(rel)).height == 4  # a re-read replaces, never appends
