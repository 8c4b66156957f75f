"""Rolling windows, the online detector against the baseline, and the incremental analytics tables."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from pipelines.core.lake import Lake
from pipelines.stream import analytics
from pipelines.stream.anomaly import OnlineDetector, baseline
from pipelines.stream.evaluate import offline_run, prf, score_detection, score_landing
from pipelines.stream.landing import STANDARDIZED, land_next
from pipelines.stream.transports import Spool
from pipelines.stream.windows import rolling_windows
from tests.stream.conftest import send

UTC = dt.timezone.utc


def _events(hours: list[int], **columns: list) -> pl.DataFrame:
    base = {"station": ["EWR"] * len(hours),
            "event_time": [dt.datetime(2013, 1, 1, tzinfo=UTC) + dt.timedelta(hours=h) for h in hours],
            "temp": [50.0] * len(hours), "dewp": [40.0] * len(hours), "humid": [60.0] * len(hours),
            "pressure": [1010.0] * len(hours), "wind_speed": [10.0] * len(hours), "wind_dir": [180.0] * len(hours)}
    base.update(columns)
    return pl.DataFrame(base).with_columns(pl.col("event_time").dt.cast_time_unit("us"))


def test_windows_count_mean_min_max_over_the_hours_before_each_event() -> None:
    events = _events([0, 1, 2, 5], temp=[10.0, 20.0, 30.0, 40.0])
    w = rolling_windows(events).filter(pl.col("window") == "3h")
    assert w["count"].to_list() == [1, 2, 3, 1]  # (t-3h, t]: hour 5 sees neither 2 nor the missing 3, 4
    assert w["temp_mean"].to_list() == [10.0, 15.0, 20.0, 40.0]
    assert w.select("temp_min", "temp_max").row(2) == (10.0, 30.0)
    assert rolling_windows(events).filter(pl.col("window") == "1h")["count"].to_list() == [1, 1, 1, 1]


@pytest.mark.parametrize(
    ("directions", "speeds", "mean_dir", "mean_speed"),
    [
        ([350.0, 10.0], [10.0, 10.0], 0.0, 9.848),  # around north, not south
        ([90.0, 270.0], [10.0, 10.0], None, 0.0),  # opposite winds cancel: no direction
        ([180.0, None], [10.0, 0.0], 180.0, 5.0),  # a calm counts as a zero vector
    ],
)
def test_wind_is_averaged_as_vectors(directions, speeds, mean_dir, mean_speed) -> None:
    w = rolling_windows(_events([0, 1], wind_dir=directions, wind_speed=speeds)).filter(pl.col("window") == "3h")
    speed, direction = w.select("wind_vector_speed", "wind_vector_dir").row(1)
    assert speed == pytest.approx(mean_speed, abs=1e-3)
    assert direction == (None if mean_dir is None else pytest.approx(mean_dir, abs=1e-6))


def test_windows_are_complete_once_the_watermark_passes_them() -> None:
    w = rolling_windows(_events([0, 1, 2]), watermarks={"EWR": dt.datetime(2013, 1, 1, 1, tzinfo=UTC)})
    assert w.filter(pl.col("window") == "1h")["complete"].to_list() == [True, True, False]


@pytest.fixture(scope="module")
def year(weather: pl.DataFrame):
    """The whole year replayed with seed 7, landed and scored in memory."""
    return offline_run(weather, seed=7)


def test_the_online_detector_beats_the_fixed_threshold_baseline(year) -> None:
    scores = score_detection(year.truth, year.detector, year.baseline)
    f1 = {(r["fault"], r["method"]): r["f1"] for r in scores.iter_rows(named=True)}
    # The numbers of seed 7 over the 26,115 observations of 2013 (131 spikes, 96 stuck, 25 gaps labelled).
    assert f1["spike", "detector"] == pytest.approx(0.901, abs=0.005)
    assert f1["stuck", "detector"] == pytest.approx(0.927, abs=0.005)
    assert f1["gap", "detector"] == pytest.approx(0.980, abs=0.005)
    assert f1["any", "detector"] == pytest.approx(0.918, abs=0.005)
    assert f1["spike", "baseline"] == pytest.approx(0.127, abs=0.005)
    assert f1["any", "baseline"] == pytest.approx(0.093, abs=0.005)
    for fault in ("spike", "stuck", "gap", "any"):
        assert f1[fault, "detector"] > f1[fault, "baseline"] + 0.5


def test_the_landing_handles_every_delivery_fault(year) -> None:
    raw_ids = year.records["payload"].cast(pl.String).str.extract(r'"event_id":"([^"]*)"').alias("event_id")
    scores = score_landing(year.truth, landed=year.landed, quarantine=year.quarantine, raw_ids=raw_ids)
    assert scores["f1"].to_list() == [1.0, 1.0, 1.0]  # malformed, out_of_order, duplicate


def test_prf_counts() -> None:
    assert prf({"a", "b", "c"}, {"b", "c", "d"}) == (2, 1, 1, 2 / 3, 2 / 3, 2 / 3)
    assert prf({"a"}, set()) == (0, 0, 1, 0.0, 0.0, 0.0)


def test_the_detector_is_online_its_state_survives_a_pickle(year) -> None:
    events = year.landed.sort("event_time", "station")
    half = events.height // 2
    first = OnlineDetector()
    a = first.score(events.head(half))
    resumed = OnlineDetector.loads(first.dumps())
    b = resumed.score(events.tail(events.height - half), flush=True)
    one_pass = OnlineDetector().score(events, flush=True)
    assert pl.concat([a, b]).sort("event_time", "station").equals(one_pass)


def test_the_detector_refuses_events_out_of_order() -> None:
    detector = OnlineDetector()
    detector.update("EWR", "e2", dt.datetime(2013, 1, 1, 2, tzinfo=UTC), {"temp": 1.0})
    with pytest.raises(ValueError, match="not after"):
        detector.update("EWR", "e1", dt.datetime(2013, 1, 1, 1, tzinfo=UTC), {"temp": 1.0})


def test_the_baseline_flags_readings_outside_fixed_bounds() -> None:
    flags = baseline(_events([0, 1, 2], temp=[50.0, 99.0, None]).with_columns(event_id=pl.lit("x")))
    assert flags["flag"].to_list() == [False, True, False]


def test_incremental_analytics_equal_one_pass_over_the_table(spool: Spool, replay, tmp_path: Path) -> None:
    send(spool, replay)
    lake = Lake(str(tmp_path / "lake"))
    while land_next(lake, spool, run_id="r", max_records=300) is not None:
        assert not analytics.update_windows(lake).skipped
        assert not analytics.update_anomalies(lake).skipped
    assert analytics.update_windows(lake).skipped and analytics.update_anomalies(lake).skipped

    events = pl.read_delta(lake.uri(STANDARDIZED))
    windows = pl.read_delta(lake.uri(analytics.WINDOWS_TABLE)).sort("station", "window", "window_end")
    full = rolling_windows(events).sort("station", "window", "window_end")
    assert windows.height == full.height
    assert (windows["temp_mean"] - full["temp_mean"]).abs().max() < 1e-9
    assert windows["count"].equals(full["count"])

    scored = pl.read_delta(lake.uri(analytics.ANOMALIES_TABLE)).sort("event_time", "station")
    one_pass = OnlineDetector().score(events)  # the same events, one pass: the same verdicts
    joined = scored.join(one_pass, on="event_id", suffix="_one")
    assert joined.height == scored.height == scored["event_id"].n_unique()
    assert joined["flag"].equals(joined["flag_one"], check_names=False)
    # What waits, per station: the 3 hours at or above the watermark (newest - 2 h) and the event whose verdict
    # needs its successor.
    assert events.height - scored.height == 3 * (3 + 1)
