"""The landing sensor: a JSON cursor, a run key that names the position reached, a skip reason that explains."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context

from pipelines.synthetic.documents import generate, produce
from pipelines.documents.landing import land
from pipelines.core.lake import Lake
from resources.documents import FolderDocumentStoreResource
from resources.lake import LocalLakeResource
from sensors.documents import documents_landing, plan_landing


@pytest.mark.parametrize(
    ("cursor", "new", "following", "keyed"),
    [
        ({"store": {}, "landing": ""}, {}, {"store": {}, "landing": ""}, False),
        ({"store": {"s0": "a"}, "landing": "x"}, {"store": {"s0": "b"}}, {"store": {"s0": "b"}, "landing": "x"}, True),
        ({"store": {}, "landing": "x"}, {"landing": "y"}, {"store": {}, "landing": "y"}, True),
    ],
)
def test_plan_landing(cursor: dict, new: dict, following: dict, keyed: bool) -> None:
    got, run_key = plan_landing(cursor, new)
    assert got == following and (run_key is not None) == keyed
    if keyed:
        assert run_key == plan_landing(cursor, new)[1]  # deterministic
        assert run_key.startswith("documents:")


def test_sensor_requests_a_run_for_new_items_and_files_then_skips(tmp_path: Path) -> None:
    resources = {"lake": LocalLakeResource(root=str(tmp_path / "lake")),
                 "documents": FolderDocumentStoreResource(folder=str(tmp_path / "store"))}
    instance = DagsterInstance.ephemeral()

    empty = documents_landing(build_sensor_context(instance=instance, resources=resources))
    assert isinstance(empty.skip_reason, SkipReason)
    assert "no new document in folder" in empty.skip_reason.skip_message

    lake = Lake(str(tmp_path / "lake"))
    store = resources["documents"].get_store()
    corpus = generate(seed=2, records=4, reports=2, scans=0, emails=0)
    produce(corpus, store, lake, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    first = documents_landing(build_sensor_context(instance=instance, resources=resources, cursor=empty.cursor))
    [request] = first.run_requests
    assert request.run_key.startswith("documents:") and request.tags["tributary/trigger"] == "documents_landing"
    cursor = json.loads(first.cursor)
    assert cursor["landing"].endswith(".xml") and len(cursor["store"]) >= 1

    again = documents_landing(build_sensor_context(instance=instance, resources=resources, cursor=first.cursor))
    assert not again.run_requests and "no new document" in again.skip_reason.skip_message

    land(store, lake, run_id="r1")  # the run lands them; a fresh sensor starts from the lake's watermark
    fresh = documents_landing(build_sensor_context(instance=DagsterInstance.ephemeral(), resources=resources))
    assert not fresh.run_requests

    more = generate(seed=4, records=1, reports=0, scans=0, emails=0)
    produce(more, store, lake, now=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    second = documents_landing(build_sensor_context(instance=instance, resources=resources, cursor=again.cursor))
    assert second.run_requests and second.run_requests[0].run_key != request.run_key
