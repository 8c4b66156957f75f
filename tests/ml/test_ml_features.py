"""Features, split, baseline and drift as pure functions: no leak, the time split, clear errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipelines.ml import drift, features as feat
from pipelines.ml.baseline import fit_baseline
from pipelines.ml.data import DIM_AIRPORT, DIM_DATE, DIM_PLANE, FACT
from pipelines.ml.features import (
    FEATURES,
    KNOWN_AT_SCHEDULING,
    LABEL,
    MEASURED_AFTER_DEPARTURE,
    TABLE_COLUMNS,
    LeakError,
    assert_no_leak,
    changed_by_later_outcomes,
    model_inputs,
)
from pipelines.ml.metrics import score
from pipelines.ml.split import EmptyWindowError, TimeSplit, split

KNOWN_WHEN_SCHEDULED = {
    # The schedule and the route.
    "carrier", "origin", "dest", "sched_dep_hour", "sched_dep_minutes", "sched_arr_minutes", "weekday",
    "is_weekend", "is_holiday", "distance", "sched_block_minutes", "dest_lat", "dest_lon",
    "origin_hour_departures", "origin_day_departures",
    # The aircraft.
    "plane_type", "plane_manufacturer", "plane_engine", "plane_age", "plane_seats", "plane_engines",
    # The origin's weather in the scheduled hour.
    "origin_temp", "origin_dewp", "origin_humid", "origin_wind_dir", "origin_wind_speed", "origin_wind_gust",
    "origin_precip", "origin_pressure", "origin_visib",
    # Outcomes of earlier days.
    "hist_late_rate_carrier", "hist_late_rate_route", "hist_late_rate_origin_hour",
    "hist_late_rate_carrier_origin_hour", "hist_late_rate_tailnum", "hist_late_rate_flight",
    "recent_late_rate_origin_7d", "recent_late_rate_carrier_7d", "late_rate_origin_prev_day",
}
"""Written out here, not imported: the test holds the list a reviewer checks by eye."""


def test_every_model_input_is_known_when_the_flight_is_scheduled(features: pl.DataFrame) -> None:
    assert tuple(features.columns) == TABLE_COLUMNS
    inputs = model_inputs(features.columns)
    assert set(inputs) == KNOWN_WHEN_SCHEDULED == set(KNOWN_AT_SCHEDULING)
    assert not set(inputs) & MEASURED_AFTER_DEPARTURE
    assert not {"dep_delay", "arr_delay", "air_time", "dep_utc", "arr_utc", "cancelled", "month", "year"} & set(inputs)


@pytest.mark.parametrize("leak", ["dep_delay", "arr_delay", "air_time", "dep_utc", "block_minutes", "delay_class"])
def test_a_leaky_column_added_to_the_features_fails_the_check(features: pl.DataFrame, leak: str) -> None:
    leaky = features.head(100).with_columns(pl.lit(1).alias(leak))
    with pytest.raises(LeakError, match=rf"not known at scheduling time: {leak} \({leak} measured after departure\)"):
        model_inputs(leaky.columns)


def test_an_unlisted_column_is_refused_too() -> None:
    with pytest.raises(LeakError, match="not known at scheduling time: gate_number$"):
        assert_no_leak([*FEATURES, "gate_number"])


def test_the_label_is_never_an_input() -> None:
    assert LABEL not in model_inputs(TABLE_COLUMNS)
    with pytest.raises(LeakError, match="is_late"):
        assert_no_leak([LABEL])


def test_features_of_a_day_ignore_that_day_and_later_outcomes(warehouse_tables: dict) -> None:
    fact = warehouse_tables[FACT].filter(pl.col("month") <= 3)
    dims = {"planes": warehouse_tables[DIM_PLANE], "airports": warehouse_tables[DIM_AIRPORT],
            "dates": warehouse_tables[DIM_DATE]}
    assert changed_by_later_outcomes(fact, **dims, day=dt.date(2013, 2, 15)) == []


def test_the_causality_check_catches_a_rate_that_counts_the_same_day(
    warehouse_tables: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: a rate that includes the flight's own day is caught."""

    def same_day_rate(flights: pl.LazyFrame, keys: list[str], name: str):
        daily = feat._daily(flights, keys).sort(*keys, "flight_date")
        rate = pl.col("late").cum_sum().over(keys) / pl.col("n").cum_sum().over(keys)
        return keys, daily.select(*keys, "flight_date", rate.alias(name))

    monkeypatch.setattr(feat, "_prior_rate", same_day_rate)
    fact = warehouse_tables[FACT].filter(pl.col("month") == 2)
    changed = changed_by_later_outcomes(fact, planes=warehouse_tables[DIM_PLANE],
                                        airports=warehouse_tables[DIM_AIRPORT], dates=warehouse_tables[DIM_DATE],
                                        day=dt.date(2013, 2, 15))
    assert "hist_late_rate_carrier" in changed


def test_historical_rates_are_smoothed_prior_day_rates() -> None:
    days = [dt.date(2013, 1, 1)] * 4 + [dt.date(2013, 1, 2)] * 2
    fact = pl.DataFrame({
        "flight_id": [f"f{i}" for i in range(6)], "flight_date": days, "year": [2013] * 6,
        "carrier": ["AA", "AA", "AA", "UA", "AA", "UA"], "flight": [1, 2, 3, 4, 1, 4],
        "tailnum": ["N1", "N2", "N3", "N4", "N1", "N4"], "origin": ["JFK"] * 6, "dest": ["LAX"] * 6,
        "sched_dep_local": [dt.datetime.combine(d, dt.time(8)) for d in days],
        "sched_arr_local": [dt.datetime.combine(d, dt.time(11)) for d in days],
        "distance": [2475] * 6, "sched_block_minutes": [360] * 6,
        "is_late": [True, False, False, True, False, None],
        **{c: [None] * 6 for c in feat.WEATHER_FEATURES},
    }, schema_overrides={c: pl.Float64 for c in feat.WEATHER_FEATURES})
    out = feat.build_features(
        fact, planes=pl.DataFrame(schema={"tailnum": pl.String, "year": pl.Int32, "type": pl.String,
                                          "manufacturer": pl.String, "engine": pl.String, "seats": pl.Int32,
                                          "engines": pl.Int32}),
        airports=pl.DataFrame({"faa": ["LAX"], "lat": [33.9], "lon": [-118.4]}),
        dates=pl.DataFrame({"date": [dt.date(2013, 1, 1), dt.date(2013, 1, 2)], "weekday": [2, 3],
                            "is_weekend": [False, False], "is_holiday": [True, False]}),
    )
    first, second = out.filter(pl.col("flight_date") == dt.date(2013, 1, 1)), out.filter(
        pl.col("flight_date") == dt.date(2013, 1, 2))
    assert first["hist_late_rate_carrier"].null_count() == 4  # no earlier day: unknown, not 0
    aa = second.filter(pl.col("carrier") == "AA")["hist_late_rate_carrier"][0]
    overall = 2 / 4
    assert aa == pytest.approx((1 + feat.PRIOR_WEIGHT * overall) / (3 + feat.PRIOR_WEIGHT))
    assert second["late_rate_origin_prev_day"].to_list() == [0.5, 0.5]
    assert second.filter(pl.col("carrier") == "AA")["is_holiday"][0] == 0.0
    assert first["origin_hour_departures"].to_list() == [4.0] * 4


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
