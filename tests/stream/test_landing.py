"""Landing: parsing rules, deduplication, the watermark, deterministic files, and exactly once across a SIGKILL."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipelines.core.lake import Lake
from pipelines.stream import landing
from pipelines.stream.landing import (
    QUARANTINE,
    RAW,
    STANDARDIZED,
    BatchPlan,
    LandingState,
    ShardRange,
    committed_batch,
    land,
    land_next,
    parse,
    standardize,
)
from pipelines.stream.transports import RECORD_SCHEMA, Spool
from tests.stream.conftest import send

ROOT = Path(__file__).resolve().parents[2]
ARRIVAL = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
GOOD = ('{"event_id":"EWR-2013010106","station":"EWR","event_time":"2013-01-01T06:00:00Z","temp":39.02,'
        '"dewp":26.06,"humid":59.37,"wind_dir":270.0,"wind_speed":10.35,"wind_gust":null,"precip":0.0,'
        '"pressure":1012.0,"visib":10.0,"produced_at":"2026-01-01T00:00:00.5Z"}')


def records(payloads: list[bytes | str], *, shard: str = "shardId-000000000000") -> pl.DataFrame:
    data = [p.encode() if isinstance(p, str) else p for p in payloads]
    return pl.DataFrame(
        {"shard": [shard] * len(data), "sequence": [str(i) for i in range(len(data))], "arrival": [ARRIVAL] * len(data),
         "partition_key": ["EWR"] * len(data), "payload": data},
        schema=RECORD_SCHEMA,
    ).with_row_index("ordinal")


@pytest.mark.parametrize(
    ("payload", "rule"),
    [
        (GOOD, None),
        (GOOD.replace('"temp":39.02,', '"temp":"39.5",'), None),  # a number in a string is still a number
        (json.dumps({"b": 1, **json.loads(GOOD)}), None),  # another producer: other key order, spaces
        (GOOD[:70], "invalid_json"),
        ("[1, 2]", "invalid_json"),
        (b"\xff\xfe{}", "invalid_json"),
        ("", "invalid_json"),
        (GOOD.replace('"station":"EWR",', ""), "missing_key"),
        (GOOD.replace('"EWR-2013010106"', '" "'), "missing_key"),
        (GOOD.replace("2013-01-01T06:00:00Z", "2013-02-30T06:00:00Z"), "invalid_date"),
        (GOOD.replace("2013-01-01T06:00:00Z", "2029-01-01T06:00:00Z"), "invalid_date"),  # after its arrival
        (GOOD.replace('"temp":39.02,', '"temp":"n/a",'), "not_a_number"),
        (GOOD.replace('"temp":39.02,', '"temp":{"c":4},'), "not_a_number"),
        (GOOD.replace('"humid":59.37,', '"humid":180.0,'), "out_of_range"),
        (GOOD.replace('"wind_speed":10.35,', '"wind_speed":1048.0,'), "out_of_range"),
    ],
)
def test_each_record_is_valid_or_breaks_one_named_rule(payload: str | bytes, rule: str | None) -> None:
    parsed = parse(records([payload]))
    assert parsed["rule"][0] == rule
    if rule is None:
        assert parsed["event_time"][0] == dt.datetime(2013, 1, 1, 6, tzinfo=dt.timezone.utc)
        assert parsed["temp"][0] in (39.02, 39.5)


def test_the_fast_and_the_general_path_agree() -> None:
    other = json.dumps(json.loads(GOOD), indent=None, separators=(", ", ": "))  # not the canonical shape
    assert other != GOOD
    fast, general = parse(records([GOOD])), parse(records([other]))
    columns = ["event_id", "station", "event_time", "temp", "wind_gust", "pressure", "produced_at", "rule"]
    assert fast.select(columns).equals(general.select(columns))


def _event(hour: int, station: str = "EWR") -> str:
    t = dt.datetime(2013, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(hours=hour)
    return (GOOD.replace("EWR-2013010106", f"{station}-{t:%Y%m%d%H}")
            .replace('"station":"EWR"', f'"station":"{station}"')
            .replace("2013-01-01T06:00:00Z", f"{t:%Y-%m-%dT%H:%M:%SZ}"))


def test_duplicates_are_dropped_and_the_watermark_sends_late_events_to_quarantine() -> None:
    # Hours in arrival order: 6 is sent twice, 7 arrives after 8 (out of order, within 2 h), 1 arrives last (late).
    batch = records([_event(h) for h in (5, 6, 6, 8, 7, 9, 1)])
    std = standardize(batch, state=LandingState(), batch=1, run_id="r")
    assert std.duplicates == 1
    assert std.events["event_id"].to_list() == [f"EWR-20130101{h:02d}" for h in (5, 6, 8, 7, 9)]
    assert std.events.filter("out_of_order")["event_id"].to_list() == ["EWR-2013010107"]
    assert std.late["event_id"].to_list() == ["EWR-2013010101"]
    assert std.max_event_time == {"EWR": dt.datetime(2013, 1, 1, 9, tzinfo=dt.timezone.utc)}


def test_the_watermark_carries_over_from_the_previous_batch() -> None:
    state = LandingState(batch=1, max_event_time={"EWR": dt.datetime(2013, 1, 1, 9, tzinfo=dt.timezone.utc)})
    std = standardize(records([_event(8), _event(6), _event(3, "JFK")]), state=state, batch=2, run_id="r")
    assert std.events["event_id"].to_list() == ["EWR-2013010108", "JFK-2013010103"]  # JFK has its own clock
    assert std.late["event_id"].to_list() == ["EWR-2013010106"]


def _lake_files(lake: Lake) -> dict[str, bytes]:
    root = Path(lake.path(RAW))
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_a_batch_lands_once_and_a_rerun_changes_nothing(spool: Spool, replay, tmp_path: Path) -> None:
    send(spool, replay)
    lake = Lake(str(tmp_path / "lake"))
    plan = landing.plan_next(spool, LandingState(), max_records=400)
    first = land(lake, spool, plan, run_id="one")
    files = _lake_files(lake)
    assert first.batch == 1 and first.records == 800 and committed_batch(lake) == 1
    covered: dict[str, int] = {}
    for name in files:  # date=.../hour=.../<shard>-<first>-<last>.parquet, named after the rows inside
        shard, first_seq, last_seq = Path(name).stem.rsplit("-", 2)
        rows = pl.read_parquet(Path(lake.path(RAW)) / name)
        assert rows["sequence"].to_list() == [str(i) for i in range(int(first_seq), int(last_seq) + 1)]
        covered[shard] = covered.get(shard, 0) + rows.height
    assert covered == {r.shard: int(r.upto) + 1 for r in plan.ranges}
    again = land(lake, spool, plan, run_id="two")
    assert again.skipped and _lake_files(lake) == files
    assert pl.read_delta(lake.uri(STANDARDIZED)).height == first.landed
    with pytest.raises(ValueError, match="batch 3 cannot land before batch 2"):
        land(lake, spool, BatchPlan(3, plan.ranges), run_id="three")
    with pytest.raises(ValueError, match="starts shard"):
        land(lake, spool, BatchPlan(2, (ShardRange(plan.ranges[0].shard, "5", "9"),)), run_id="four")


def _expected(replay) -> tuple[set[str], int]:
    """Event ids that must land, and how many records must be quarantined, from the ground truth."""
    truth = replay.truth
    malformed = set(truth.filter(pl.col("fault") == "malformed")["event_id"])
    very_late = set(truth.filter((pl.col("fault") == "out_of_order")
                                 & (pl.col("detail").str.extract(r"(\d+)h").cast(pl.Int64) > 2))["event_id"])
    sent = set(replay.deliveries["event_id"])
    return sent - malformed - very_late, len(malformed) + len(very_late)


def _land_all(lake: Lake, spool: Spool, max_records: int) -> int:
    batches = 0
    while land_next(lake, spool, run_id="restart", max_records=max_records) is not None:
        batches += 1
    return batches


KILLER = """
import sys, time
from pipelines.core.lake import Lake
from pipelines.stream.landing import land_next
from pipelines.stream.transports import Spool

lake, spool, stage, batch = Lake(sys.argv[1]), Spool(sys.argv[2], fsync=False), sys.argv[3], int(sys.argv[4])
seen = {"batch": 0}

def on_stage(name):
    if name == "read":
        seen["batch"] += 1
    if name == stage and seen["batch"] == batch:
        print("at", name, flush=True)
        time.sleep(600)  # the test SIGKILLs us here

while land_next(lake, spool, run_id="killed", max_records=int(sys.argv[5]), on_stage=on_stage):
    pass
"""


@pytest.mark.parametrize("stage", ["raw_written", "manifest_written", "quarantine_committed", "committed"])
def test_exactly_once_across_a_sigkill_mid_batch(spool: Spool, replay, tmp_path: Path, stage: str) -> None:
    send(spool, replay)
    max_records = 250
    reference = Lake(str(tmp_path / "reference"))
    _land_all(reference, spool, max_records)

    lake = Lake(str(tmp_path / "lake"))
    proc = subprocess.Popen([sys.executable, "-c", KILLER, lake.root, str(spool.folder), stage, "2", str(max_records)],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == f"at {stage}"
    finally:
        proc.kill()  # SIGKILL, in the middle of batch 2
        proc.wait(10)
    assert proc.returncode == -9
    assert committed_batch(lake) == (2 if stage == "committed" else 1)
    _land_all(lake, spool, max_records)  # restart

    events = pl.read_delta(lake.uri(STANDARDIZED))
    expected, quarantined = _expected(replay)
    assert events.height == events["event_id"].n_unique() == len(expected)
    assert set(events["event_id"]) == expected
    assert pl.read_delta(lake.uri(QUARANTINE)).height == quarantined
    # The re-run wrote the very files the clean run wrote, and each record sits in exactly one of them.
    assert _lake_files(lake).keys() == _lake_files(reference).keys()
    raw = pl.read_parquet(f"{lake.path(RAW)}/**/*.parquet")
    assert raw.height == raw.select("shard", "sequence").n_unique() == replay.deliveries.height
    assert committed_batch(lake) == committed_batch(reference)


def test_a_batch_of_nothing_but_bad_records_still_commits(spool: Spool, tmp_path: Path) -> None:
    from pipelines.stream import analytics

    spool.put([("EWR", b"not json"), ("JFK", b"{}")])
    lake = Lake(str(tmp_path / "lake"))
    result = land_next(lake, spool, run_id="r")
    assert (result.batch, result.landed, result.quarantined) == (1, 0, {"invalid_json": 1, "missing_key": 1})
    assert committed_batch(lake) == 1 and land_next(lake, spool, run_id="r") is None
    assert analytics.update_windows(lake).batch == 1 and analytics.update_anomalies(lake).batch == 1
    assert analytics.update_windows(lake).skipped and analytics.update_anomalies(lake).skipped


def test_a_landing_bounded_by_arrival_takes_only_what_had_arrived(spool: Spool, tmp_path: Path) -> None:
    first = [("EWR", _event(h).encode()) for h in range(40)]
    spool.put(first)
    launched = dt.datetime.now(dt.UTC)
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    while dt.datetime.now(dt.UTC) <= launched + dt.timedelta(milliseconds=5):  # arrivals are kept in ms
        assert dt.datetime.now(dt.UTC) < deadline
    spool.put([("EWR", _event(40 + h).encode()) for h in range(25)])  # arrives after the launch
    lake = Lake(str(tmp_path / "lake"))
    landed = 0
    while (result := landing.land_next(lake, spool, run_id="r", max_records=15, arrived_by=launched)) is not None:
        landed += result.records
    assert landed == 40
    assert landing.land_next(lake, spool, run_id="r", max_records=100).records == 25  # the rest, later
