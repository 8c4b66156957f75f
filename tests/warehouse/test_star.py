"""The warehouse builders: the star schema over standardized frames, the calendar, and the KPIs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from pipelines.standardize import transforms as st
from pipelines.warehouse import star as wh
from pipelines.extract.source import TABLES

RUN = "run-7"
UPDATED = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def raw(table: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = TABLES[table].columns
    filled = [
        dict.fromkeys(schema) | ({"id": n} if "id" in schema else {}) | {"updated_at": UPDATED} | row
        for n, row in enumerate(rows, start=1)
    ]
    return pl.DataFrame(filled, schema=schema)


def flight(**changes: Any) -> dict[str, Any]:
    row = {
        "year": 2013, "month": 1, "day": 1, "dep_time": 600, "sched_dep_time": 600, "dep_delay": 0,
        "arr_time": 800, "sched_arr_time": 800, "arr_delay": 0, "carrier": "UA", "flight": 1, "tailnum": "N1",
        "origin": "EWR", "dest": "ORD", "air_time": 120, "distance": 719, "hour": 6, "minute": 0,
        "time_hour": dt.datetime(2013, 1, 1, 11, tzinfo=dt.UTC),
    }
    return row | changes


@pytest.fixture(scope="module")
def standardized() -> pl.DataFrame:
    """Standardized flights: EWR->ORD on two days, one cancelled, one late, one to an airport the reference
    lacks (BQN), one with an unknown plane."""
    airports = raw("airports", [
        {"faa": "EWR", "name": "Newark", "lat": 40.69, "lon": -74.17, "alt": 18, "tz": -5, "dst": "A",
         "tzone": "America/New_York"},
        {"faa": "ORD", "name": "Chicago O'Hare", "lat": 41.98, "lon": -87.9, "alt": 668, "tz": -6, "dst": "A",
         "tzone": "America/Chicago"},
    ])
    rows = [
        flight(),
        flight(flight=2, sched_dep_time=900, dep_time=930, dep_delay=30, sched_arr_time=1100, arr_time=1145,
               arr_delay=45),
        flight(flight=3, dep_time=None, dep_delay=None, arr_time=None, arr_delay=None, air_time=None),
        flight(flight=4, day=2, tailnum="N404"),
        flight(flight=5, dest="BQN", sched_arr_time=1000, arr_time=1000, air_time=200, distance=1576),
    ]
    return st.standardize_flights(
        raw("flights", rows),
        airports=st.standardize_airports(airports, run_id=RUN).good,
        planes=st.standardize_planes(raw("planes", [{"tailnum": "N1", "year": 2001, "seats": 150}]), run_id=RUN).good,
        weather=st.standardize_weather(raw("weather", []), run_id=RUN).good,
        airlines=st.standardize_airlines(raw("airlines", [{"carrier": "UA", "name": "United"}]), run_id=RUN).good,
        run_id=RUN,
    ).good


def test_fact_flights_has_one_row_per_flight_with_keys_and_measures(standardized: pl.DataFrame) -> None:
    fact = wh.fact_flights(standardized).sort("flight")
    assert fact.columns == list(wh.FACT_FLIGHTS_COLUMNS)
    assert fact.height == standardized.height == 5
    assert fact["flight_id"].n_unique() == fact.height
    first = fact.row(0, named=True)
    assert (first["carrier"], first["origin"], first["dest"], first["tailnum"]) == ("UA", "EWR", "ORD", "N1")
    assert (first["flight_date"], first["dep_delay"], first["arr_delay"]) == (dt.date(2013, 1, 1), 0, 0)
    assert (first["block_minutes"], first["sched_block_minutes"]) == (180, 180)  # 06:00 EST to 08:00 CST
    cancelled = fact.filter(pl.col("cancelled")).row(0, named=True)
    assert (cancelled["flight"], cancelled["block_minutes"], cancelled["sched_block_minutes"]) == (3, None, 180)
    assert fact.filter(pl.col("dest") == "BQN")["block_minutes"].to_list() == [None]  # BQN has no zone


def test_fact_flights_stays_lazy(standardized: pl.DataFrame) -> None:
    lazy = wh.fact_flights(standardized.lazy())
    assert isinstance(lazy, pl.LazyFrame)
    assert lazy.collect().equals(wh.fact_flights(standardized))


def test_dim_airport_adds_unknown_members_for_codes_the_flights_use(standardized: pl.DataFrame) -> None:
    airports = pl.DataFrame(
        {"faa": ["EWR", "ORD"], "name": ["Newark", "O'Hare"], "lat": [40.69, 41.98], "lon": [-74.17, -87.9],
         "alt": [18, 668], "tz": [-5.0, -6.0], "dst": ["A", "A"], "tzone": ["America/New_York", "America/Chicago"],
         "source_updated_at": [UPDATED, UPDATED]}
    )
    plain = wh.dim_airport(airports)
    assert plain.columns == list(wh.AIRPORT_DIM_COLUMNS)
    assert plain["known"].to_list() == [True, True]
    fact = wh.fact_flights(standardized)
    dim = wh.dim_airport(airports, include_codes=pl.concat([fact["origin"], fact["dest"]]))
    assert dim.select("faa", "known").rows() == [("BQN", False), ("EWR", True), ("ORD", True)]
    assert dim.filter(pl.col("faa") == "BQN")["name"].to_list() == [None]
    assert fact.join(dim, left_on="dest", right_on="faa", how="inner").height == fact.height


def test_dim_plane_and_dim_carrier() -> None:
    planes = st.standardize_planes(
        raw("planes", [{"tailnum": "N1", "year": 2001, "manufacturer": "BOEING", "seats": 150}]), run_id=RUN
    ).good
    dim = wh.dim_plane(planes, include_tailnums=["N1", "N404", None])
    assert dim.columns == list(wh.PLANE_DIM_COLUMNS)
    assert dim.select("tailnum", "year", "known").rows() == [("N1", 2001, True), ("N404", None, False)]
    airlines = st.standardize_airlines(raw("airlines", [{"carrier": "UA", "name": "United"},
                                                        {"carrier": "AA", "name": "American"}]), run_id=RUN).good
    assert wh.dim_carrier(airlines).rows() == [("AA", "American"), ("UA", "United")]


def test_dim_date_covers_the_range_with_calendar_attributes() -> None:
    dim = wh.dim_date("2013-01-01", dt.date(2013, 12, 31))
    assert dim.height == 365
    assert dim["date"].is_sorted() and dim["date"].n_unique() == 365
    jan5 = dim.filter(pl.col("date") == dt.date(2013, 1, 5)).row(0, named=True)
    assert (jan5["weekday"], jan5["weekday_name"], jan5["is_weekend"], jan5["quarter"]) == (6, "Saturday", True, 1)
    assert dim["is_weekend"].sum() == 104
    assert dim.filter(pl.col("date") == dt.date(2013, 12, 31))["day_of_year"].to_list() == [365]
    assert dim.schema["year"] == pl.Int32


def test_dim_date_marks_the_2013_federal_holidays() -> None:
    holidays = wh.dim_date("2013-01-01", "2013-12-31").filter("is_holiday")
    assert holidays["date"].to_list() == [
        dt.date(2013, 1, 1), dt.date(2013, 1, 21), dt.date(2013, 2, 18), dt.date(2013, 5, 27),
        dt.date(2013, 7, 4), dt.date(2013, 9, 2), dt.date(2013, 10, 14), dt.date(2013, 11, 11),
        dt.date(2013, 11, 28), dt.date(2013, 12, 25),
    ]
    assert holidays.filter(pl.col("date") == dt.date(2013, 11, 28))["holiday"].to_list() == ["Thanksgiving Day"]


@pytest.mark.parametrize(
    ("day", "holiday"),
    [
        (dt.date(2015, 7, 3), "Independence Day (observed)"),  # July 4th 2015 was a Saturday
        (dt.date(2015, 7, 4), "Independence Day"),
        (dt.date(2021, 12, 31), "New Year's Day (observed)"),  # 2022-01-01 was a Saturday
        (dt.date(2017, 1, 2), "New Year's Day (observed)"),  # 2017-01-01 was a Sunday
        (dt.date(2022, 6, 20), "Juneteenth National Independence Day (observed)"),
        (dt.date(2020, 6, 19), None),  # before Juneteenth became a federal holiday
        (dt.date(2013, 5, 20), None),  # a Monday in May, but not the last
        (dt.date(2018, 11, 12), "Veterans Day (observed)"),
    ],
)
def test_dim_date_observed_holidays(day: dt.date, holiday: str | None) -> None:
    # A one-day range: the observed rule must still see the neighbouring holiday.
    row = wh.dim_date(day, day).row(0, named=True)
    assert (row["holiday"], row["is_holiday"]) == (holiday, holiday is not None)


def test_dim_date_rejects_an_inverted_range() -> None:
    with pytest.raises(ValueError, match="before start"):
        wh.dim_date("2013-02-01", "2013-01-31")


def fact_rows() -> pl.DataFrame:
    """A hand-made fact: EWR->ORD on Jan 1 with four flights (one cancelled), JFK->LAX on Jan 1 and Feb 1."""
    rows = [
        ("EWR", "ORD", dt.date(2013, 1, 1), "UA", 5, 10, False),
        ("EWR", "ORD", dt.date(2013, 1, 1), "UA", 15, 20, False),
        ("EWR", "ORD", dt.date(2013, 1, 1), "UA", 60, 70, False),
        ("EWR", "ORD", dt.date(2013, 1, 1), "UA", None, None, True),
        ("JFK", "LAX", dt.date(2013, 1, 1), "AA", -5, -10, False),
        ("JFK", "LAX", dt.date(2013, 2, 1), "AA", 0, None, False),  # departed, arrival delay unknown
    ]
    frame = pl.DataFrame(
        rows, schema=["origin", "dest", "flight_date", "carrier", "dep_delay", "arr_delay", "cancelled"], orient="row"
    )
    arr = pl.col("arr_delay")
    return frame.with_columns(
        year=pl.col("flight_date").dt.year().cast(pl.Int32),
        month=pl.col("flight_date").dt.month().cast(pl.Int32),
        is_late=arr > st.ON_TIME_MAX_MINUTES,
        delay_class=pl.when("cancelled").then(pl.lit("cancelled"))
        .when(arr <= st.ON_TIME_MAX_MINUTES).then(pl.lit("on_time"))
        .when(arr <= st.MINOR_DELAY_MAX_MINUTES).then(pl.lit("minor"))
        .when(arr.is_not_null()).then(pl.lit("major")),
    )


def test_route_daily_kpis() -> None:
    kpis = wh.route_daily_kpis(fact_rows())
    assert kpis.select("flight_date", "origin", "dest").rows() == [
        (dt.date(2013, 1, 1), "EWR", "ORD"), (dt.date(2013, 1, 1), "JFK", "LAX"), (dt.date(2013, 2, 1), "JFK", "LAX"),
    ]
    ewr = kpis.row(0, named=True)
    assert (ewr["flights"], ewr["cancelled"]) == (4, 1)
    assert ewr["mean_dep_delay"] == pytest.approx(80 / 3)
    assert ewr["mean_arr_delay"] == pytest.approx(100 / 3)
    assert ewr["late_share"] == pytest.approx(2 / 3)  # of the three with a known arrival delay
    assert ewr["p90_arr_delay"] == pytest.approx(60.0)  # 20 + 0.8 * (70 - 20)
    unknown = kpis.row(2, named=True)
    assert (unknown["flights"], unknown["late_share"], unknown["p90_arr_delay"]) == (1, None, None)
    assert kpis.schema["flights"] == kpis.schema["cancelled"] == pl.Int64


def test_carrier_monthly_kpis() -> None:
    kpis = wh.carrier_monthly_kpis(fact_rows().lazy())
    assert isinstance(kpis, pl.LazyFrame)
    rows = {(r["carrier"], r["year"], r["month"]): r for r in kpis.collect().iter_rows(named=True)}
    assert set(rows) == {("AA", 2013, 1), ("AA", 2013, 2), ("UA", 2013, 1)}
    ua = rows[("UA", 2013, 1)]
    assert (ua["flights"], ua["cancelled"]) == (4, 1)
    assert ua["on_time_share"] == pytest.approx(1 / 4)  # the cancelled flight counts as not on time
    assert ua["mean_arr_delay"] == pytest.approx(100 / 3)
    assert rows[("AA", 2013, 1)]["on_time_share"] == 1.0
    assert rows[("AA", 2013, 2)]["on_time_share"] == 0.0


def test_kpis_from_standardized_flights(standardized: pl.DataFrame) -> None:
    kpis = wh.route_daily_kpis(wh.fact_flights(standardized))
    day_one = kpis.filter((pl.col("flight_date") == dt.date(2013, 1, 1)) & (pl.col("dest") == "ORD")).row(0, named=True)
    assert (day_one["flights"], day_one["cancelled"], day_one["late_share"]) == (3, 1, 0.5)
    assert kpis["flights"].sum() == standardized.height


@pytest.mark.parametrize(
    ("good", "quarantined", "share"),
    [(0, 0, 0.0), (100, 0, 0.0), (90, 10, 0.1), (0, 5, 1.0), (336_776, 0, 0.0)],
)
def test_quarantine_share(good: int, quarantined: int, share: float) -> None:
    assert wh.quarantine_share(good, quarantined) == pytest.approx(share)


def test_quarantine_share_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match="negative"):
        wh.quarantine_share(-1, 3)
