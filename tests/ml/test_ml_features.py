"""Features, split, baseline and drift as pure functions: no leak at the horizon, the time split, clear errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from assets.ml import no_leak_result
from pipelines.ml import drift, features as feat
from pipelines.ml.baseline import fit_baseline
from pipelines.ml.data import DIM_AIRPORT, DIM_DATE, DIM_PLANE, FACT, WEATHER
from pipelines.ml.features import (
    AVAILABILITY,
    FEATURES,
    KNOWN_AT_SCHEDULING,
    LABEL,
    MEASURED_AFTER_DEPARTURE,
    TABLE_COLUMNS,
    LeakError,
    assert_no_leak,
    changed_by_later_outcomes,
    horizon_of,
    late_features,
    model_inputs,
)
from pipelines.ml.metrics import score
from pipelines.ml.split import EmptyWindowError, TimeSplit, split
from pipelines.synthetic.warehouse_2013 import features_2013

KNOWN_WHEN_SCHEDULED = {
    # The schedule and the route.
    "carrier", "origin", "dest", "sched_dep_hour", "sched_dep_minutes", "sched_arr_minutes", "weekday",
    "is_weekend", "is_holiday", "distance", "sched_block_minutes", "dest_lat", "dest_lon",
    "origin_hour_departures", "origin_day_departures",
    # The aircraft.
    "plane_type", "plane_manufacturer", "plane_engine", "plane_age", "plane_seats", "plane_engines",
    # The origin's weather, the newest observation reported by the horizon.
    "origin_temp", "origin_dewp", "origin_humid", "origin_wind_dir", "origin_wind_speed", "origin_wind_gust",
    "origin_precip", "origin_pressure", "origin_visib", "origin_precip_6h", "origin_visib_min_6h",
    "origin_pressure_change_3h",
    # Outcomes of earlier days, landed by the horizon.
    "hist_late_rate_carrier", "hist_late_rate_route", "hist_late_rate_origin_hour",
    "hist_late_rate_carrier_origin_hour", "hist_late_rate_tailnum", "hist_late_rate_flight",
    "recent_late_rate_origin_7d", "recent_late_rate_carrier_7d", "recent_late_rate_origin_24h",
}
"""Written out here, not imported: the test holds the list a reviewer checks by eye."""


def test_every_model_input_is_known_when_the_flight_is_scheduled(features: pl.DataFrame) -> None:
    assert tuple(features.columns) == TABLE_COLUMNS
    inputs = model_inputs(features.columns)
    assert set(inputs) == KNOWN_WHEN_SCHEDULED == set(KNOWN_AT_SCHEDULING) == set(AVAILABILITY)
    assert not set(inputs) & MEASURED_AFTER_DEPARTURE
    assert not {"dep_delay", "arr_delay", "air_time", "dep_utc", "arr_utc", "cancelled", "month", "year"} & set(inputs)


@pytest.mark.parametrize("leak", ["dep_delay", "arr_delay", "air_time", "dep_utc", "block_minutes", "delay_class"])
def test_a_leaky_column_added_to_the_features_fails_the_check(features: pl.DataFrame, leak: str) -> None:
    leaky = features.head(100).with_columns(pl.lit(1).alias(leak))
    with pytest.raises(LeakError, match=rf"no declared availability: {leak} \({leak} measured after departure\)"):
        model_inputs(leaky.columns)
    assert late_features(leaky, 3) == {leak: 100}  # the row-by-row check counts an undeclared column too


def test_an_unlisted_column_is_refused_too() -> None:
    with pytest.raises(LeakError, match="no declared availability: gate_number$"):
        assert_no_leak([*FEATURES, "gate_number"])


def test_the_real_table_is_known_at_its_horizon_row_by_row(features: pl.DataFrame) -> None:
    """The `no_leak` check on the 2013 table built at the default 3 h: every declared instant is early enough."""
    assert horizon_of(features) == 3.0
    cutoff = features["sched_dep_utc"] - dt.timedelta(hours=3)
    assert (features["predict_at"] == cutoff).all()
    assert late_features(features, 3) == {}
    check = no_leak_result(features, 3)
    assert check.passed and check.description.startswith(f"42 model inputs on {features.height:,} rows")
    # The weather is the newest report at or before the cutoff, never older than the limit.
    known = features.filter(pl.col("weather_known_at").is_not_null())
    age = known["predict_at"] - known["weather_known_at"]
    assert age.min() >= dt.timedelta(0) and age.max() <= feat.WEATHER_MAX_AGE
    assert (age < dt.timedelta(hours=1)).mean() > 0.95  # an hourly record: nearly always the last hour's report
    # History: the newest outcome any rate counts became known by the cutoff.
    assert (features["history_known_at"] <= features["predict_at"]).all()


def test_the_check_fails_on_a_column_not_known_at_the_horizon(
    warehouse_tables: dict, features: pl.DataFrame
) -> None:
    """Negative control: the weather of the scheduled hour (what the model read before issue 18), declared with
    its true reporting instant, is not known 3 h ahead: the check fails on it, and on nothing else."""
    weather = warehouse_tables[WEATHER].select(
        "origin", at_hour=pl.col("time_hour"), origin_temp_at_departure=pl.col("temp"),
        departure_weather_known_at=pl.col("time_hour") + feat.WEATHER_REPORT_DELAY)
    leaky = features.with_columns(at_hour=pl.col("sched_dep_utc").dt.truncate("1h")).join(
        weather, on=["origin", "at_hour"], how="left").drop("at_hour")
    declared = {**AVAILABILITY, "origin_temp_at_departure": "departure_weather_known_at"}
    check = no_leak_result(leaky, 3, availability=declared)
    assert not check.passed
    late = check.metadata["late_rows"].value
    assert list(late) == ["origin_temp_at_departure"] and late["origin_temp_at_departure"] > 0.99 * features.height
    assert check.description.startswith("not known 3 h before departure: origin_temp_at_departure (")


def test_a_table_built_for_a_shorter_horizon_fails_the_check(warehouse_tables: dict) -> None:
    """Negative control: features built at 0 h are checked against 3 h: the weather and the history leak."""
    march = {**warehouse_tables, FACT: warehouse_tables[FACT].filter(pl.col("month") == 3)}
    at_zero = features_2013(march, horizon_hours=0)
    assert late_features(at_zero, 0) == {}
    late = late_features(at_zero, 3)
    assert set(late) == {*feat.WEATHER_FEATURES, *feat.HISTORY_FEATURES}
    assert late["origin_temp"] > 0.9 * at_zero.height


def test_the_label_is_never_an_input() -> None:
    assert LABEL not in model_inputs(TABLE_COLUMNS)
    with pytest.raises(LeakError, match="is_late"):
        assert_no_leak([LABEL])


def _dims(tables: dict) -> dict:
    return {"weather": tables[WEATHER], "planes": tables[DIM_PLANE], "airports": tables[DIM_AIRPORT],
            "dates": tables[DIM_DATE]}


def test_features_of_a_day_ignore_that_day_and_later_outcomes(warehouse_tables: dict) -> None:
    fact = warehouse_tables[FACT].filter(pl.col("month") <= 3)
    for horizon in (0, 24):
        assert changed_by_later_outcomes(fact, **_dims(warehouse_tables), day=dt.date(2013, 2, 15),
                                         horizon_hours=horizon) == []


def test_the_causality_check_catches_a_rate_that_counts_the_same_day(
    warehouse_tables: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: outcomes counted from their landing alone (not from the end of their day) let
    the same day's earlier flights into the rates, and that is caught."""
    monkeypatch.setattr(feat, "_day_end", lambda zones: pl.col("sched_dep_utc"))  # the day never waits
    fact = warehouse_tables[FACT].filter(pl.col("month") == 2)
    changed = changed_by_later_outcomes(fact, **_dims(warehouse_tables), day=dt.date(2013, 2, 15))
    assert "hist_late_rate_carrier" in changed and "recent_late_rate_origin_24h" in changed


def _tiny_fact() -> pl.DataFrame:
    """Six flights JFK-LAX at 08:00 New York time (13:00 UTC) on 1 and 2 January; UA 4 lands late on 2 January."""
    days = [dt.date(2013, 1, 1)] * 4 + [dt.date(2013, 1, 2)] * 2
    utc = [dt.datetime.combine(d, dt.time(13), dt.UTC) for d in days]
    arrivals = [t + dt.timedelta(hours=6) for t in utc]
    arrivals[3] = dt.datetime(2013, 1, 2, 12, tzinfo=dt.UTC)  # after the 2 January flights' 3 h cutoff (10:00)
    return pl.DataFrame({
        "flight_id": [f"f{i}" for i in range(6)], "flight_date": days, "year": [2013] * 6,
        "carrier": ["AA", "AA", "AA", "UA", "AA", "UA"], "flight": [1, 2, 3, 4, 1, 4],
        "tailnum": ["N1", "N2", "N3", "N4", "N1", "N4"], "origin": ["JFK"] * 6, "dest": ["LAX"] * 6,
        "sched_dep_local": [dt.datetime.combine(d, dt.time(8)) for d in days],
        "sched_arr_local": [dt.datetime.combine(d, dt.time(11)) for d in days],
        "sched_dep_utc": utc, "dep_utc": utc, "arr_utc": arrivals,
        "distance": [2475] * 6, "sched_block_minutes": [360] * 6,
        "is_late": [True, False, False, True, False, None],
    })


def test_history_and_weather_are_taken_as_of_the_horizon() -> None:
    weather = pl.DataFrame({
        "origin": ["JFK"] * 3,
        "time_hour": [dt.datetime(2013, 1, 2, h, tzinfo=dt.UTC) for h in (8, 9, 10)],
        **{m: [30.0, 31.0, 99.0] for m in feat.WEATHER_MEASURES},
    })
    out = feat.build_features(
        _tiny_fact(), weather=weather,
        planes=pl.DataFrame(schema={"tailnum": pl.String, "year": pl.Int32, "type": pl.String,
                                    "manufacturer": pl.String, "engine": pl.String, "seats": pl.Int32,
                                    "engines": pl.Int32}),
        airports=pl.DataFrame({"faa": ["JFK", "LAX"], "lat": [40.6, 33.9], "lon": [-73.8, -118.4],
                               "tzone": ["America/New_York", "America/Los_Angeles"]}),
        dates=pl.DataFrame({"date": [dt.date(2013, 1, 1), dt.date(2013, 1, 2)], "weekday": [2, 3],
                            "is_weekend": [False, False], "is_holiday": [True, False]}),
    )
    first, second = out.filter(pl.col("flight_date") == dt.date(2013, 1, 1)), out.filter(
        pl.col("flight_date") == dt.date(2013, 1, 2))
    assert first["hist_late_rate_carrier"].null_count() == 4  # no earlier day: unknown, not 0
    assert first["origin_temp"].null_count() == 4  # no report yet
    # 2 January, predicted at 10:00 UTC: 1 January's flights count from the day's end (05:00 UTC), but UA 4,
    # landing at 12:00, is not known yet; the report of 09:00 (in the record at 10:00) is the newest.
    overall = 1 / 3
    aa = second.filter(pl.col("carrier") == "AA").row(0, named=True)
    ua = second.filter(pl.col("carrier") == "UA").row(0, named=True)
    assert aa["hist_late_rate_carrier"] == pytest.approx((1 + feat.PRIOR_WEIGHT * overall) / (3 + feat.PRIOR_WEIGHT))
    assert ua["hist_late_rate_carrier"] == pytest.approx(overall)  # no UA outcome known: the prior
    assert second["recent_late_rate_origin_24h"].to_list() == pytest.approx([overall] * 2)
    assert second["origin_temp"].to_list() == [31.0, 31.0]
    # The trends end at that report too: the 10:00 report (99) is in none of them.
    assert (aa["origin_precip_6h"], aa["origin_visib_min_6h"], aa["origin_pressure_change_3h"]) == (61.0, 30.0, None)
    assert aa["weather_known_at"] == dt.datetime(2013, 1, 2, 10, tzinfo=dt.UTC)
    assert aa["history_known_at"] == dt.datetime(2013, 1, 2, 5, tzinfo=dt.UTC)
    assert aa["is_holiday"] == 0.0
    assert first["origin_hour_departures"].to_list() == [4.0] * 4
    assert late_features(out, 3) == {}


def test_the_split_is_january_august_september_october_november_december(features: pl.DataFrame) -> None:
    s = TimeSplit.latest(features["flight_date"])
    assert s == TimeSplit.for_year(2013)
    assert s.train == (dt.date(2013, 1, 1), dt.date(2013, 8, 31))
    assert s.validate == (dt.date(2013, 9, 1), dt.date(2013, 10, 31))
    assert s.holdout == (dt.date(2013, 11, 1), dt.date(2013, 12, 31))
    parts = split(features, s)
    months = {name: sorted(getattr(parts, name)["flight_date"].dt.month().unique().to_list())
              for name in ("train", "validate", "holdout")}
    assert months == {"train": list(range(1, 9)), "validate": [9, 10], "holdout": [11, 12]}
    labelled = features.filter(pl.col(LABEL).is_not_null()).height
    assert parts.train.height + parts.validate.height + parts.holdout.height == labelled
    assert parts.train["flight_date"].max() < parts.validate["flight_date"].min()
    assert parts.validate["flight_date"].max() < parts.holdout["flight_date"].min()


def test_earlier_years_all_train() -> None:
    dates = pl.Series([dt.date(2013, 3, 1), dt.date(2015, 12, 31)])
    assert TimeSplit.latest(dates) == TimeSplit(
        train=(dt.date(2013, 3, 1), dt.date(2015, 8, 31)), validate=(dt.date(2015, 9, 1), dt.date(2015, 10, 31)),
        holdout=(dt.date(2015, 11, 1), dt.date(2015, 12, 31)))


def test_an_empty_training_window_says_which(features: pl.DataFrame) -> None:
    late_year = features.filter(pl.col("flight_date") >= dt.date(2013, 9, 1))
    with pytest.raises(EmptyWindowError, match=r"^no labelled flight in the train window 2013-01-01\.\.2013-08-31$"):
        split(late_year, TimeSplit.for_year(2013))
    with pytest.raises(EmptyWindowError, match="the feature table is empty"):
        TimeSplit.latest(pl.Series([], dtype=pl.Date))


def test_the_baseline_is_the_training_late_rate_by_carrier_origin_hour(features: pl.DataFrame) -> None:
    parts = split(features)
    baseline = fit_baseline(parts.train)
    cell = parts.train.filter((pl.col("carrier") == "UA") & (pl.col("origin") == "EWR") & (pl.col("sched_dep_hour") == 17))
    p = baseline.predict(cell.head(1))[0]
    assert p == pytest.approx(cell[LABEL].mean(), abs=0.01)  # a big cell: smoothing barely moves it
    holdout = score(parts.holdout[LABEL].to_numpy(), baseline.predict(parts.holdout))
    assert 0.58 < holdout["roc_auc"] < 0.66
    unseen = parts.holdout.head(1).with_columns(carrier=pl.lit("ZZ"))
    assert baseline.predict(unseen)[0] == pytest.approx(baseline.overall)


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(50, 10, 20_000)
    assert drift.psi_numeric(ref, rng.normal(50, 10, 5_000)) < 0.02
    assert drift.psi_numeric(ref, rng.normal(30, 10, 5_000)) > 1.0
    with_missing = np.where(rng.random(5_000) < 0.5, np.nan, rng.normal(50, 10, 5_000))
    assert drift.psi_numeric(ref, with_missing) > 0.25  # half the values missing is a shift too
    assert drift.psi_categorical(pl.Series("c", ["a", "b"] * 500), pl.Series("c", ["a", "b"] * 100)) < 1e-9
    assert drift.psi_categorical(pl.Series("c", ["a"] * 900 + ["b"] * 100), pl.Series("c", ["b"] * 900 + [None] * 100)) > 1
    stat, p = drift.ks(ref, rng.normal(60, 10, 5_000))
    assert stat > 0.3 and p < 1e-6


def test_a_winter_month_against_summer_training_data_is_drift(features: pl.DataFrame) -> None:
    summer = features.filter(pl.col("flight_date").is_between(dt.date(2013, 7, 1), dt.date(2013, 8, 31)))
    reference = drift.reference_sample(summer)
    winter = drift.assess(reference, drift.recent_window(features), reference_id="r")
    assert "origin_temp" in winter.drifted and winter.worst[0] == "origin_temp" and winter.worst[1] > 1
    row = winter.table.filter(pl.col("feature") == "origin_temp").row(0, named=True)
    assert row["kind"] == "continuous" and row["ks_statistic"] > 0.5 and row["window_end"] == dt.date(2013, 12, 31)
    same = drift.assess(reference, drift.recent_window(summer, days=62))
    assert same.drifted == [] and same.worst[1] < 0.05
    assert same.summary().startswith("no feature shifted")
