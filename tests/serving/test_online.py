"""Predict by flight (issue 20.1): the endpoint builds a flight's features from the online table, as the offline
feature table has them, says which fields fell back, and still takes the features themselves."""

from __future__ import annotations

import datetime as dt

import httpx
import orjson
import polars as pl
import pytest

from pipelines.ml.features import FEATURES, HISTORY_FEATURES, WEATHER_FEATURES
from pipelines.ml.data import FACT
from pipelines.serving.online import OnlineFeatures, build_online_features
from pipelines.serving.parsing import MAX_ROWS
from pipelines.standardize import WEATHER
from pipelines.warehouse import DIM_AIRPORT, DIM_DATE, DIM_PLANE
from tests.serving.conftest import Models, OnlineCase, Server, publish_online, spec_features


def _flight(key: dict) -> tuple:
    from pipelines.serving.parsing import decode

    return decode(orjson.dumps({"flights": [key]}), "json").value[1][0]


def test_the_online_features_of_flights_equal_the_offline_features(
        warehouse_tables: dict[str, pl.DataFrame], features: pl.DataFrame) -> None:
    """Every flight leaving at one instant (so one table as of their prediction instant), every feature equal."""
    day = features.filter(pl.col("flight_date") == dt.date(2013, 12, 20))
    instant = day.group_by("predict_at").len().sort("len", "predict_at", descending=True)["predict_at"][0]
    offline = day.filter(pl.col("predict_at") == instant)
    assert offline.height >= 2
    tables = warehouse_tables
    online = OnlineFeatures(build_online_features(
        tables[FACT], weather=tables[WEATHER], planes=tables[DIM_PLANE], airports=tables[DIM_AIRPORT],
        dates=tables[DIM_DATE], as_of=instant))
    fact = tables[FACT].filter(pl.col("flight_id").is_in(offline["flight_id"].implode()))
    compared = 0
    for flight in fact.iter_rows(named=True):
        expected = offline.filter(pl.col("flight_id") == flight["flight_id"]).row(0, named=True)
        values, fallbacks = online.features(_flight({
            "carrier": flight["carrier"], "flight": flight["flight"], "origin": flight["origin"],
            "dest": flight["dest"], "sched_dep": flight["sched_dep_local"].isoformat(), "tailnum": flight["tailnum"]}))
        assert {f: values[f] for f in FEATURES} == {f: expected[f] for f in FEATURES}, flight["flight_id"]
        assert "schedule" not in fallbacks and "weather" not in fallbacks
        compared += 1
    assert compared == offline.height


def test_unknown_keys_fall_back_as_the_offline_features_and_say_so(online_case: OnlineCase) -> None:
    online = OnlineFeatures(online_case.table)
    known, known_fallbacks = online.features(_flight(online_case.key))
    assert known_fallbacks == []
    key = {**online_case.key, "carrier": "ZZ", "flight": 99999, "dest": "XYZ", "tailnum": "N0NE"}
    values, fallbacks = online.features(_flight(key))
    for field in ("schedule", "route", "dest_airport", "plane", "hist_late_rate_carrier", "hist_late_rate_route",
                  "hist_late_rate_tailnum", "hist_late_rate_flight", "hist_late_rate_carrier_origin_hour",
                  "recent_late_rate_carrier_7d"):
        assert field in fallbacks, field
    # Known origin and hour: their rates are the origin's, not a fallback.
    assert "hist_late_rate_origin_hour" not in fallbacks and "weather" not in fallbacks
    assert values["hist_late_rate_origin_hour"] == known["hist_late_rate_origin_hour"]
    # A smoothed rate of a key with no outcome is the overall late rate, as the offline table gives it; recent
    # rates are null; plane and destination fields are null; the arrival is unknown without a route.
    overall = online.unknown_rate["hist_late_rate_carrier"]
    assert 0.05 < overall < 0.5
    for name in ("hist_late_rate_carrier", "hist_late_rate_route", "hist_late_rate_tailnum", "hist_late_rate_flight",
                 "hist_late_rate_carrier_origin_hour"):
        assert values[name] == pytest.approx(overall, rel=1e-12)
    assert values["recent_late_rate_carrier_7d"] is None
    assert all(values[f] is None for f in ("plane_type", "plane_seats", "plane_age", "dest_lat", "distance",
                                           "sched_arr_minutes"))
    assert values["carrier"] == "ZZ" and values["sched_dep_minutes"] == known["sched_dep_minutes"]
    # Weather older than the limit at the prediction instant: null, and said.
    later = dict(online_case.key, sched_dep="2014-02-01T08:00")
    values, fallbacks = online.features(_flight(later))
    assert {"weather", "calendar", "departures"} <= set(fallbacks)
    assert all(values[f] is None for f in WEATHER_FEATURES)
    assert all(name in online.rates for name in HISTORY_FEATURES)


@pytest.mark.parametrize("body, words", [
    ({"flights": [{"carrier": "UA", "flight": 1545, "origin": "EWR", "dest": "IAH"}]}, "missing sched_dep"),
    ({"flights": [{"carrier": "UA", "flight": "x", "origin": "EWR", "dest": "IAH", "sched_dep": "2013-12-31T05:15"}]},
     "flight must be a flight number"),
    ({"flights": [{"carrier": "UA", "flight": 1, "origin": "EWR", "dest": "IAH", "sched_dep": "yesterday"}]},
     "sched_dep must be an ISO 8601"),
    ({"flights": [{"carrier": "UA", "flight": 1, "origin": "EWR", "dest": "IAH", "sched_dep": "2013-12-31T05:15",
                   "gate": "C1"}]}, "unknown field(s) gate"),
    ({"flights": [{"carrier": "UA", "flight": 1, "origin": "ZZZ", "dest": "IAH", "sched_dep": "2013-12-31T05:15"}]},
     "time zone of origin 'ZZZ' is unknown"),
    ({"flights": "UA1545"}, "flights must be a list"),
    ({"flights": []}, "no flights"),
    ({"flights": [], "return_features": "yes"}, "return_features must be true or false"),
])
def test_a_bad_flight_is_refused_with_400_and_the_reason(online_server: Server, body: dict, words: str) -> None:
    response = httpx.post(f"{online_server.url}/invocations", content=orjson.dumps(body),
                          headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.headers["x-amzn-errortype"] == "ValidationError"
    assert words in response.json()["message"]


def test_more_flights_than_the_row_limit_are_refused(online_server: Server, online_case: OnlineCase) -> None:
    body = orjson.dumps({"flights": [online_case.key] * (MAX_ROWS + 1)})
    response = httpx.post(f"{online_server.url}/invocations", content=body,
                          headers={"content-type": "application/json"})
    assert response.status_code == 413 and "over the limit" in response.json()["message"]


@pytest.fixture(scope="module")
def online_server(server: Server, online_case: OnlineCase) -> Server:
    publish_online(server, online_case.table)
    return server


def test_a_flight_key_is_answered_with_the_prediction_of_its_offline_features(
        online_server: Server, online_case: OnlineCase, serving_models: Models) -> None:
    features = spec_features(serving_models, serving_models.champion)
    headers = {"content-type": "application/json", "X-Amzn-SageMaker-Target-Variant": "champion"}
    unknown = {**online_case.key, "tailnum": None, "flight": 99999}
    response = httpx.post(f"{online_server.url}/invocations", headers=headers, content=orjson.dumps(
        {"flights": [online_case.key, unknown], "return_features": True}))
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["variant"] == "champion" and response.headers["x-amzn-invoked-production-variant"] == "champion"
    assert doc["features_as_of"] == online_case.row["predict_at"].isoformat()
    assert doc["fallbacks"][0] == []
    assert {"plane", "schedule", "hist_late_rate_tailnum", "hist_late_rate_flight"} <= set(doc["fallbacks"][1])
    assert list(doc["features"][0]) == features
    assert doc["features"][0] == {f: online_case.row[f] for f in features}
    # The raw-feature path still answers, and gives the same prediction for the offline row's features.
    raw = httpx.post(f"{online_server.url}/invocations", headers=headers, content=orjson.dumps(
        {"dataframe_records": [{f: online_case.row[f] for f in features}, doc["features"][1]]}))
    assert raw.status_code == 200, raw.text
    assert raw.json() == {"predictions": doc["predictions"]}
    # Without return_features the features stay out of the answer.
    short = httpx.post(f"{online_server.url}/invocations", headers=headers,
                       content=orjson.dumps({"flights": [online_case.key]})).json()
    assert "features" not in short and short["predictions"] == doc["predictions"][:1]


def test_a_new_online_table_is_picked_up_without_a_restart(online_server: Server, online_case: OnlineCase) -> None:
    later = online_case.table.with_columns(
        as_of=pl.when(pl.col("part") == "meta").then(pl.col("as_of") + dt.timedelta(hours=1)).otherwise("as_of"))
    try:
        as_of = publish_online(online_server, later)
        doc = httpx.post(f"{online_server.url}/invocations", headers={"content-type": "application/json"},
                         content=orjson.dumps({"flights": [online_case.key]})).json()
        assert doc["features_as_of"] == as_of
    finally:
        publish_online(online_server, online_case.table)
