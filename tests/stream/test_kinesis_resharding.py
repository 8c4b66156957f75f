"""Kinesis resharding (issue 20.7): parents are read before their children, so each partition key lands in
order across a split and a merge, every record exactly once.

moto (5.x) accepts SplitShard, MergeShards and UpdateShardCount and lists the parent/child map, but keeps
routing new records to the first shard (the closed parent), so records in child shards are shown with a
recorded shard map played by a stand-in client; the moto test shows the real calls and shard map."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import polars as pl

from pipelines.stream.landing import LandingState, plan_next, read_batch
from pipelines.stream.transports import KinesisStream, Source, parents_first

ARRIVED = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

# Three stations; a split sends EWR and LGA to shard 1, JFK to shard 2; a merge joins them into shard 3.
RECORDED = {
    "shardId-000000000000": {"range": {"StartingSequenceNumber": "100", "EndingSequenceNumber": "111"},
                             "counters": range(0, 4), "keys": ("EWR", "JFK", "LGA")},
    "shardId-000000000001": {"parent": "shardId-000000000000", "counters": range(4, 7), "keys": ("EWR", "LGA"),
                             "range": {"StartingSequenceNumber": "200", "EndingSequenceNumber": "205"}},
    "shardId-000000000002": {"parent": "shardId-000000000000", "counters": range(4, 7), "keys": ("JFK",),
                             "range": {"StartingSequenceNumber": "300", "EndingSequenceNumber": "302"}},
    "shardId-000000000003": {"parent": "shardId-000000000001", "adjacent": "shardId-000000000002",
                             "counters": range(7, 10), "keys": ("EWR", "JFK", "LGA"),
                             "range": {"StartingSequenceNumber": "400"}},
}


class RecordedKinesis:
    """ListShards (two pages), GetShardIterator and GetRecords over RECORDED, as Kinesis answers them."""

    def __init__(self) -> None:
        self.records: dict[str, list[dict]] = {}
        for shard, spec in RECORDED.items():
            first = int(spec["range"]["StartingSequenceNumber"])
            rows = [(n, key) for n in spec["counters"] for key in spec["keys"]]
            self.records[shard] = [{"SequenceNumber": str(first + i), "PartitionKey": key,
                                    "Data": json.dumps({"station": key, "n": n}).encode(),
                                    "ApproximateArrivalTimestamp": ARRIVED} for i, (n, key) in enumerate(rows)]

    def list_shards(self, **request: str) -> dict:
        shards = [{"ShardId": shard, "SequenceNumberRange": spec["range"],
                   **({"ParentShardId": spec["parent"]} if "parent" in spec else {}),
                   **({"AdjacentParentShardId": spec["adjacent"]} if "adjacent" in spec else {})}
                  for shard, spec in RECORDED.items()]
        return {"Shards": shards[2:]} if request.get("NextToken") else {"Shards": shards[:2], "NextToken": "page-2"}

    def get_shard_iterator(self, **request: str) -> dict:
        after = int(request["StartingSequenceNumber"]) if request["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER" \
            else -1
        return {"ShardIterator": f"{request['ShardId']}|{after}"}

    def get_records(self, ShardIterator: str, Limit: int) -> dict:  # noqa: N803
        shard, after = ShardIterator.split("|")
        rest = [r for r in self.records[shard] if int(r["SequenceNumber"]) > int(after)]
        page = rest[:Limit]
        at_end = len(page) == len(rest)
        closed = "EndingSequenceNumber" in RECORDED[shard]["range"]
        last = page[-1]["SequenceNumber"] if page else after
        return {"Records": page, "MillisBehindLatest": 0 if at_end else 1000,
                "NextShardIterator": None if closed and at_end else f"{shard}|{last}"}


def _recorded_stream() -> KinesisStream:
    stream = KinesisStream("recorded")
    stream._client, stream._checked = RecordedKinesis(), True  # the stand-in client for boto3's
    return stream


def _land_all(source: Source, max_records: int) -> tuple[pl.DataFrame, list[list[str]]]:
    """Every batch the landing would plan, committed one after the other: (records in landing order, shards per
    batch)."""
    state, frames, batches = LandingState(), [], []
    while (plan := plan_next(source, state, max_records=max_records)) is not None:
        frames.append(read_batch(source, plan).drop("ordinal"))
        batches.append([r.shard for r in plan.ranges])
        state = LandingState(batch=plan.batch, positions={**state.positions, **{r.shard: r.upto for r in plan.ranges}})
    return pl.concat(frames), batches


def _counters(records: pl.DataFrame) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for payload in records["payload"].to_list():
        doc = json.loads(payload)
        out.setdefault(doc["station"], []).append(doc["n"])
    return out


def test_each_key_lands_in_order_across_a_split_and_a_merge() -> None:
    records, batches = _land_all(_recorded_stream(), max_records=2)
    assert _counters(records) == {key: list(range(10)) for key in ("EWR", "JFK", "LGA")}
    assert records.select("shard", "sequence").is_unique().all() and records.height == 30
    # The children wait for the parent's last record; the merged shard for both of its parents.
    first = {shard: next(i for i, b in enumerate(batches) if shard in b) for shard in RECORDED}
    last = {shard: max(i for i, b in enumerate(batches) if shard in b) for shard in RECORDED}
    assert first["shardId-000000000001"] >= last["shardId-000000000000"]
    assert first["shardId-000000000003"] >= max(last["shardId-000000000001"], last["shardId-000000000002"])


def test_without_the_parent_gate_a_child_overtakes_its_parent() -> None:
    """The control: the same landing, reading every listed shard at once, breaks the order of a key."""

    class Ungated(KinesisStream):
        def latest(self, shard: str, *, after: str | None, limit: int) -> str | None:
            return Source.latest(self, shard, after=after, limit=limit)

    stream = Ungated("recorded")
    stream._client, stream._checked = RecordedKinesis(), True
    records, _ = _land_all(stream, max_records=2)
    assert _counters(records)["EWR"] != list(range(10))


def test_parents_come_first_whatever_their_ids() -> None:
    assert parents_first({"c": ("a", "b"), "b": ("z",), "a": (), "z": (), "d": ("c",)}) == ["a", "z", "b", "c", "d"]


def test_split_merge_and_update_shard_count_on_moto(kinesis: Callable[..., KinesisStream]) -> None:
    stream = kinesis(shards=1)
    stream.put([(key, json.dumps({"station": key, "n": 0}).encode()) for key in ("EWR", "JFK", "LGA")])
    client, name = stream.client, stream.name
    (parent,) = stream.shards()
    client.split_shard(StreamName=name, ShardToSplit=parent, NewStartingHashKey=str(2**127))
    stream.put([(key, json.dumps({"station": key, "n": 1}).encode()) for key in ("EWR", "JFK", "LGA")])
    landed_before, _ = _land_all(stream, max_records=2)  # a landing between the split and the merge
    children = [s for s in stream.shards() if s != parent]
    client.merge_shards(StreamName=name, ShardToMerge=children[0], AdjacentShardToMerge=children[1])
    client.update_shard_count(StreamName=name, TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    stream.put([(key, json.dumps({"station": key, "n": 2}).encode()) for key in ("EWR", "JFK", "LGA")])

    listed = {s["ShardId"]: s for s in client.list_shards(StreamName=name)["Shards"]}
    order = stream.shards()
    assert len(order) == 6 and order[0] == parent
    for shard, spec in listed.items():
        for key in ("ParentShardId", "AdjacentParentShardId"):
            if key in spec:
                assert order.index(spec[key]) < order.index(shard)
    records, _ = _land_all(stream, max_records=2)
    assert _counters(records) == {key: [0, 1, 2] for key in ("EWR", "JFK", "LGA")}
    assert records.select("shard", "sequence").is_unique().all()
    assert landed_before.height == 6
