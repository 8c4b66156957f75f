"""The replay: deterministic for a seed, every fault labelled, labels never in the stream, malformed records broken."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from pipelines.stream.events import FAULTS, FIELDS, MALFORMED_KINDS
from pipelines.synthetic.telemetry import encode, observations, plan_replay, send_offsets

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_observations_are_the_three_stations_in_event_time_order(weather: pl.DataFrame) -> None:
    obs = observations(weather)
    assert obs.height == 26_115 and set(obs["station"].unique()) == {"EWR", "JFK", "LGA"}
    assert obs["event_time"].is_sorted() and obs["event_id"].n_unique() == obs.height
    assert obs["event_id"][0] == "EWR-2013010106"


def test_the_plan_is_deterministic_for_a_seed(weather: pl.DataFrame) -> None:
    obs = observations(weather, limit=3000)
    a, b, c = plan_replay(obs, seed=5), plan_replay(obs, seed=5), plan_replay(obs, seed=6)
    assert a.deliveries.equals(b.deliveries) and a.truth.equals(b.truth)
    assert not a.truth.equals(c.truth)


def test_every_fault_is_injected_and_labelled(replay) -> None:
    counts = dict(replay.truth.group_by("fault").len().iter_rows())
    assert set(counts) == set(FAULTS)
    assert replay.truth.filter(pl.col("origin") == "injected")["fault"].n_unique() == len(FAULTS)
    delivered = replay.deliveries
    assert delivered.filter(pl.col("copy") == 1).height == counts["duplicate"]
    assert delivered.filter(pl.col("malformed").is_not_null()).height == counts["malformed"]


def test_out_of_order_events_arrive_after_later_ones(replay) -> None:
    late = set(replay.truth.filter(pl.col("fault") == "out_of_order")["event_id"])
    order = replay.deliveries.filter(pl.col("copy") == 0).with_row_index("i")
    newest_before = order.with_columns(seen=pl.col("event_time").cum_max().shift(1).over("station", order_by="i"))
    arrived_late = set(newest_before.filter(pl.col("event_time") < pl.col("seen"))["event_id"])
    assert late == arrived_late


def test_a_stuck_sensor_repeats_its_last_reading(replay) -> None:
    stuck = replay.truth.filter(pl.col("fault") == "stuck")
    frozen_at = stuck["detail"][0].removeprefix("frozen at ")
    rows = replay.deliveries.filter(pl.col("copy") == 0)
    reading = rows.filter(pl.col("event_id") == frozen_at).select("temp", "dewp", "pressure").row(0)
    first = rows.filter(pl.col("event_id") == stuck["event_id"][0]).select("temp", "dewp", "pressure").row(0)
    assert first == reading


def test_gap_labels_sit_on_the_event_after_the_silence(replay) -> None:
    gaps = replay.truth.filter(pl.col("fault") == "gap")
    assert gaps.height >= 1
    sent = replay.deliveries.filter(pl.col("copy") == 0).sort("station", "event_time")
    hours = sent.with_columns(h=pl.col("event_time").diff().dt.total_hours().over("station"))
    assert set(hours.filter(pl.col("h") >= 3)["event_id"]) == set(gaps["event_id"])


def test_labels_never_travel_in_the_stream(replay) -> None:
    clean = replay.deliveries.filter(pl.col("malformed").is_null()).head(50)
    for payload in encode(clean, produced_at=NOW):
        assert list(json.loads(payload)) == list(FIELDS)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_malformed_records_are_broken_the_way_they_say(replay, kind: str) -> None:
    row = replay.deliveries.filter(pl.col("malformed") == kind).head(1)
    if row.is_empty():
        pytest.skip(f"seed 11 injected no {kind} record in 1,500 observations")
    payload = encode(row, produced_at=NOW)[0].decode()
    assert row["event_id"][0] in payload  # the key survives, so quarantine can be matched to the label
    if kind == "truncated":
        with pytest.raises(json.JSONDecodeError):
            json.loads(payload)
        return
    doc = json.loads(payload)
    assert {"not_a_number": doc.get("temp") == "n/a", "missing_key": "station" not in doc,
            "invalid_date": doc.get("event_time") == "2013-02-30T25:61:00Z",
            "out_of_range": doc.get("humid") == 180.0}[kind]


def test_send_offsets_follow_the_event_clock_or_a_rate(replay) -> None:
    offsets = send_offsets(replay.deliveries, speedup=3600, rate=None)
    assert offsets[0] == 0 and (offsets[1:] >= offsets[:-1]).all()
    hours = (replay.deliveries["slot_time"].max() - replay.deliveries["slot_time"].min()).total_seconds() / 3600
    assert offsets[-1] == pytest.approx(hours)  # an hour of events per second
    last = (replay.deliveries.height - 1) / 100
    assert send_offsets(replay.deliveries, speedup=3600, rate=100)[-1] == pytest.approx(last)
    assert not send_offsets(replay.deliveries, speedup=0, rate=None).any()
    with pytest.raises(ValueError, match="--rate must be positive"):
        send_offsets(replay.deliveries, speedup=1, rate=-1)
