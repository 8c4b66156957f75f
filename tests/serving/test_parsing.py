"""Request bodies to rows: every accepted shape gives the same rows; every refusal names what was expected."""

from __future__ import annotations

import orjson
import pytest

from pipelines.serving.parsing import MAX_BODY_BYTES, BadInput, Schema, ignored_report, parse

SCHEMA = Schema(["carrier", "distance", "origin", "temp"], ["carrier", "origin"])
ROWS = [["AA", 1089.0, "JFK", None], ["B6", 200.5, None, -3.0]]
RECORDS = [dict(zip(SCHEMA.features, r, strict=True)) for r in ROWS]


def _json(doc) -> bytes:
    return orjson.dumps(doc)


@pytest.mark.parametrize("body, content_type", [
    (b"AA,1089,JFK,\nB6,200.5,,-3\n", "text/csv"),
    (b"carrier,distance,origin,temp\nAA,1089,JFK,\nB6,200.5,,-3", "text/csv; charset=utf-8"),
    (_json({"dataframe_split": {"columns": SCHEMA.features, "data": ROWS}}), "application/json"),
    (_json({"dataframe_split": {"columns": ["temp", "origin", "distance", "carrier"],
                                "data": [r[::-1] for r in ROWS]}}), "application/json"),
    (_json({"dataframe_records": RECORDS}), "application/json"),
    (_json({"instances": RECORDS}), "application/json"),
    (_json({"instances": ROWS}), "application/json"),
    (_json({"inputs": {k: [r[k] for r in RECORDS] for k in SCHEMA.features}}), "application/json"),
    (_json({"inputs": RECORDS}), "application/json"),
    (_json({"dataframe_records": [{**RECORDS[0], "distance": "1089"}, RECORDS[1]]}), "application/json"),
])
def test_every_shape_gives_the_same_rows(body: bytes, content_type: str) -> None:
    assert parse(body, content_type, SCHEMA) == ROWS


def test_a_byte_order_mark_is_not_part_of_the_first_value() -> None:
    assert parse(b"\xef\xbb\xbfAA,1089,JFK,\nB6,200.5,,-3\n", "text/csv", SCHEMA) == ROWS
    assert parse(b"\xef\xbb\xbfcarrier,distance,origin,temp\nAA,1089,JFK,\nB6,200.5,,-3", "text/csv", SCHEMA) == ROWS
    assert parse(b"\xef\xbb\xbf" + _json({"instances": ROWS}), "application/json", SCHEMA) == ROWS


@pytest.mark.parametrize("body, content_type, status, words", [
    (b"AA,1089,JFK", "text/csv", 400, "CSV line 1 has 3 values; expected 4 columns in this order: carrier, distance"),
    (b'AA,"10', "text/csv", 400, "malformed CSV"),
    (b"AA,far,JFK,1", "text/csv", 400, "column 'distance' (row 1) expects a number, got 'far'"),
    (b"{", "application/json", 400, "malformed JSON"),
    (b"[1, 2]", "application/json", 400, "exactly one of dataframe_split"),
    (_json({"data": ROWS}), "application/json", 400, "found none of them"),
    (_json({"instances": ROWS, "inputs": ROWS}), "application/json", 400, "found instances, inputs"),
    (_json({"dataframe_split": {"columns": ["carrier", "distance", "origin"], "data": [["AA", 1, "JFK"]]}}),
     "application/json", 400, "missing temp"),
    (_json({"dataframe_records": [{"carrier": "AA", "distance": 1, "wind": 3}]}), "application/json", 400,
     "missing origin, temp; besides wind, which it ignores"),
    (b"carrier,distance,origin,temp,wind\nAA,1089,JFK,", "text/csv", 400,
     "CSV line 2 has 4 values; expected 5 (one per header column)"),
    (_json({"dataframe_records": [RECORDS[0], {**RECORDS[1], "temp": [1]}]}), "application/json", 400,
     "column 'temp' (row 2) expects a number"),
    (_json({"dataframe_records": [{**RECORDS[0], "carrier": {"a": 1}}]}), "application/json", 400,
     "column 'carrier' (row 1) expects a string"),
    (_json({"instances": [[1, 2]]}), "application/json", 400, "instances row 1 has 2 values; expected 4"),
    (_json({"inputs": {"carrier": ["AA"], "distance": [1, 2], "origin": ["JFK"], "temp": [1]}}), "application/json",
     400, "different lengths"),
    (_json({"instances": []}), "application/json", 400, "holds no rows"),
    (b"x", "text/plain", 415, "unsupported content type 'text/plain'"),
    (b"x", None, 415, "(none)"),
    (b"AA,1_089,JFK,1", "text/csv", 400, "column 'distance' (row 1) expects a number, got '1_089' (write plain ASCII"),
    (b"AA,\xd9\xa1\xd9\xa2,JFK,1", "text/csv", 400, "column 'distance' (row 1) expects a number, got '\u0661\u0662'"),
    (_json({"instances": [["AA", True, "JFK", 1]]}), "application/json", 400,
     "column 'distance' (row 1) expects a number, got true"),
    (_json({"dataframe_records": [{**RECORDS[0], "temp": "1_0"}]}), "application/json", 400,
     "column 'temp' (row 1) expects a number, got '1_0'"),
    (b'{"instances": [[' + b"[" * 1000 + b"]" * 1000 + b', 1, "JFK", 1]]}', "application/json", 400,
     "column 'carrier' (row 1) expects a string, got a list of 1 value(s)"),
    (b'{"instances": [[' + b"[" * 1100 + b"]" * 1100 + b', 1, "JFK", 1]]}', "application/json", 400,
     "malformed JSON: depth limit exceeded"),
    (_json({"dataframe_split": {"columns": [[[["carrier"]]], "distance", "origin", "temp"], "data": [ROWS[0]]}}),
     "application/json", 400, "column names must be strings, got a list of 1 value(s)"),
    (_json({"dataframe_records": [{"carrier": "AA", **{f"x{i}": 1 for i in range(100)}}]}), "application/json", 400,
     "besides x0, x1, x2, x3, x4, x5, x6, x7 and 92 more, which it ignores"),
    (_json({"instances": [["A" * 1000, 1, "JFK", 1], ["AA", "A" * 1000, "JFK", 1]]}), "application/json", 400,
     "column 'distance' (row 2) expects a number, got 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'..."),
    (b"A" * (MAX_BODY_BYTES + 1), "text/csv", 413, "over the limit"),
])
def test_refusals_say_what_was_expected(body: bytes, content_type: str | None, status: int, words: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse(body, content_type, SCHEMA)
    assert caught.value.status == status
    assert words in str(caught.value)


@pytest.mark.parametrize("body, content_type", [
    (_json({"dataframe_records": [{**r, "flight_id": "x", "late": 1} for r in RECORDS]}), "application/json"),
    (_json({"instances": [{"late": 0, **r, "flight_id": None} for r in RECORDS]}), "application/json"),
    (_json({"dataframe_split": {"columns": ["flight_id", *SCHEMA.features, "late"],
                                "data": [["x", *r, 1] for r in ROWS]}}), "application/json"),
    (_json({"inputs": {"late": [1, 0], "flight_id": ["x"], **{k: [r[k] for r in RECORDS] for k in SCHEMA.features}}}),
     "application/json"),
    (b"late,temp,carrier,flight_id,origin,distance\n1,,AA,x,JFK,1089\n0,-3,B6,y,,200.5\n", "text/csv"),
])
def test_columns_the_model_does_not_read_are_ignored_and_reported(body: bytes, content_type: str) -> None:
    """A row of ml/delay_features (ids and label beside the features) is answered, and the extras are named
    (issue 22.2)."""
    ignored: set[str] = set()
    assert parse(body, content_type, SCHEMA, ignored=ignored) == ROWS
    assert ignored == {"flight_id", "late"}


def test_the_ignored_report_is_bounded() -> None:
    report = ignored_report({"b" * 100, *(f"x{i:03d}" for i in range(30))})
    assert report["ignored_column_count"] == 31
    assert len(report["ignored_columns"]) == 20
    assert report["ignored_columns"][-1] == "x018"  # sorted: the long name first
    assert all(len(n) <= 40 for n in report["ignored_columns"])
