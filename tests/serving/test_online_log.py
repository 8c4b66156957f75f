"""The invocation log of flight-key requests (issue 20.1): each row carries its flight's warehouse key, from the
local service's spool and from SageMaker's captured requests alike, with no custom attributes."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
import polars as pl

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.serving import online
from pipelines.serving.invocations import TABLE, land
from tests.serving.conftest import Models, OnlineCase, Server, publish_online

NEW_YORK = ZoneInfo("America/New_York")


def _keys(case: OnlineCase) -> tuple[list[dict], list[str]]:
    """The case's flight sent as local time and again in UTC, and a flight the table does not know; the
    warehouse keys the log must hold for them."""
    local = dt.datetime.fromisoformat(case.key["sched_dep"])
    in_utc = local.replace(tzinfo=NEW_YORK).astimezone(dt.UTC).isoformat()
    unknown = {**case.key, "flight": 98765, "tailnum": None}
    expected_unknown = f"{local:%Y-%m-%d}/{case.key['carrier']}/98765/{case.key['origin']}/{local:%H%M}"
    return ([case.key, {**case.key, "sched_dep": in_utc}, unknown],
            [case.row["flight_id"], case.row["flight_id"], expected_unknown])


def test_the_spooled_log_of_a_flight_key_request_has_each_flights_key(
        server: Server, serving_models: Models, online_case: OnlineCase, tmp_path: Path) -> None:
    assert online_case.key["origin"] in ("EWR", "JFK", "LGA")
    publish_online(server, online_case.table)
    server.publish(serving_models.config(shadow=1.0))
    try:
        flights, expected = _keys(online_case)
        response = httpx.post(f"{server.url}/invocations", headers={"content-type": "application/json"},
                              content=orjson.dumps({"flights": flights}))
        assert response.status_code == 200, response.text
        lake = Lake(str(tmp_path / "lake"))
        deadline = time.monotonic() + 30
        logged = pl.DataFrame()
        while time.monotonic() < deadline:  # the segment closes after a second (TRIBUTARY_SERVE_SEGMENT_SECONDS)
            land(lake, server.spool, stale_seconds=3600)
            if delta.version(lake, TABLE) is not None:
                logged = delta.scan(lake, TABLE).filter(pl.col("flight_id").is_in(expected)).collect()
                if logged.height == 2 * len(flights):
                    break
            time.sleep(0.2)
        assert logged.height == 2 * len(flights), logged  # every row, answered and shadow
        for shadow in (False, True):
            rows = logged.filter(pl.col("shadow") == shadow).sort("row")
            assert rows["flight_id"].to_list() == expected
            assert rows["flight_date"].to_list() == [dt.date.fromisoformat(e[:10]) for e in expected]
            assert rows["custom_attributes"].to_list() == [None] * len(flights)
            assert rows["request_id"].n_unique() == 1
    finally:
        server.publish(serving_models.config())


def _captured_flights(event: str, flights: list[dict], answer: dict) -> bytes:
    """One line as SageMaker Data Capture writes it for a flight-key request."""
    return json.dumps({"captureData": {
        "endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "encoding": "JSON",
                          "data": json.dumps({"flights": flights, "return_features": True})},
        "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT", "encoding": "JSON",
                           "data": json.dumps(answer)}},
        "eventMetadata": {"eventId": event, "inferenceTime": "2026-12-04T10:15:00Z"}, "eventVersion": "0"}).encode()


def test_captured_flight_key_requests_land_with_each_flights_key(online_case: OnlineCase, tmp_path: Path) -> None:
    from pipelines.serving.capture import CAPTURE_PREFIX, land_capture

    lake = Lake(str(tmp_path / "lake"))
    delta.overwrite(lake, online.TABLE, online_case.table)  # where the landing finds the origins' time zones
    flights, expected = _keys(online_case)
    features = [{"carrier": f["carrier"], "distance": 1000.0 + i} for i, f in enumerate(flights)]
    answer = {"predictions": [0.1, 0.2, 0.3], "variant": "champion", "features_as_of": "x",
              "fallbacks": [[], [], ["schedule"]], "features": features}
    endpoint = "tributary-delay"
    lake.publish_bytes(f"{CAPTURE_PREFIX}/{endpoint}/champion/2026/12/04/10/15-00-000-a.jsonl",
                       _captured_flights("e1", flights, answer) + b"\n")
    landed = land_capture(lake, endpoint)
    assert landed.rows == 3
    table = delta.scan(lake, TABLE).sort("row").collect()
    assert table["flight_id"].to_list() == expected
    assert table["flight_date"].to_list() == [dt.date.fromisoformat(e[:10]) for e in expected]
    assert table["prediction"].to_list() == [0.1, 0.2, 0.3]
    assert [json.loads(f) for f in table["features"]] == features


def test_a_flight_key_in_utc_at_an_unknown_origin_has_no_key_rather_than_a_wrong_one() -> None:
    flight = online.Flight("UA", 1545, "ZZZ", "IAH", dt.datetime(2013, 1, 1, 10, 15, tzinfo=dt.UTC), None)
    assert online.flight_key_of(flight, None) == (None, None)
    assert online.flight_key_of(flight, NEW_YORK) == ("2013-01-01/UA/1545/ZZZ/0515", "2013-01-01")
    naive = flight._replace(sched_dep=dt.datetime(2013, 1, 1, 5, 15))
    assert online.flight_key_of(naive, None) == ("2013-01-01/UA/1545/ZZZ/0515", "2013-01-01")
