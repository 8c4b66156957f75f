"""The documents group materialized into a lake under tmp_path: hostile inputs end in quarantine, the run
succeeds, metadata tells what happened, and a second run reads only what is new."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from assets.documents import defs, document_assets, document_checks
from pipelines.core import delta
from pipelines.documents import QUARANTINE_EVENTS, QUARANTINE_LANDING, QUARANTINE_TEXT
from pipelines.synthetic.documents import generate, produce
from pipelines.documents.landing import catalog, manifests
from pipelines.core.lake import Lake
from resources.documents import DynamoDocumentStoreResource, FolderDocumentStoreResource
from resources.lake import LocalLakeResource
from tests.documents.conftest import OVERSIZE_LIMIT

KEYS = {AssetKey(["raw", "documents"]), AssetKey(["standardized", "maintenance_events"]),
        AssetKey(["standardized", "document_text"]), AssetKey(["standardized", "document_embeddings"])}


@pytest.fixture
def resources(tmp_path: Path) -> dict:
    return {
        "lake": LocalLakeResource(root=str(tmp_path / "lake")),
        "documents": FolderDocumentStoreResource(folder=str(tmp_path / "store"),
                                                 max_document_bytes=OVERSIZE_LIMIT),
    }


def _metadata(result) -> dict[str, dict]:
    return {e.event_specific_data.materialization.asset_key.to_user_string():
            {k: v.value for k, v in e.event_specific_data.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()}


def _checks(result) -> dict[tuple[str, str], bool]:
    return {(c.asset_key.to_user_string(), c.check_name): c.passed for c in result.get_asset_check_evaluations()}


@pytest.mark.parametrize("profile", ["local", "localstack", "aws"])
def test_definitions_load_with_the_group_on_every_profile(profile: str, resources: dict) -> None:
    from dagster import Definitions

    from resources.documents import documents_resource
    from sensors.documents import defs as sensor_defs

    merged = Definitions.merge(defs, sensor_defs, Definitions(resources={"lake": resources["lake"],
                                                                        "documents": documents_resource(profile)}))
    graph = merged.resolve_asset_graph()
    index = AssetKey(["warehouse", "document_index"])
    assert set(graph.get_all_asset_keys()) == KEYS | {index, AssetKey(["warehouse", "dim_plane"])}  # dim_plane: a dep
    assert {graph.get(k).group_name for k in KEYS | {index}} == {"documents"}
    assert graph.get(AssetKey(["standardized", "document_embeddings"])).parent_keys == {
        AssetKey(["standardized", "document_text"])}
    assert merged.resolve_sensor_def("documents_landing")
    assert document_checks


def test_hostile_inputs_end_in_quarantine_and_the_run_succeeds(hostile_corpus, resources: dict, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    produce(hostile_corpus, resources["documents"].get_store(), lake, now=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    instance = DagsterInstance.ephemeral()
    result = materialize(document_assets + document_checks, resources=resources, instance=instance)
    assert result.success
    meta = _metadata(result)

    good = [f for f in hostile_corpus.files if f.hostile is None]
    raw = meta["raw/documents"]
    assert raw["dagster/row_count"] == len(hostile_corpus.files) - 1 and raw["refused"] == 1
    assert raw["manifest"].endswith(".json") and raw["bytes"] > 0

    def rules(rel: str) -> dict[str, str]:
        return dict(delta.scan(lake, rel).select("doc_id", "rule").collect().iter_rows())

    assert rules(QUARANTINE_LANDING) == {"em-hostile-oversize": "oversize"}
    assert rules(QUARANTINE_EVENTS) == {"mr-hostile-truncated": "invalid_json", "mr-hostile-no-tail": "missing_field",
                                        "ir-hostile-billion-laughs": "xml_forbidden", "ir-hostile-xxe": "xml_forbidden"}
    assert rules(QUARANTINE_TEXT) == {**rules(QUARANTINE_EVENTS), "wo-hostile-bomb": "image_too_large",
                                      "wo-hostile-truncated": "unreadable_image"}
    reason = delta.scan(lake, QUARANTINE_TEXT).filter(pl.col("doc_id") == "ir-hostile-xxe").collect()["reason"][0]
    assert "external entity 'xxe' refused" in reason

    events = meta["standardized/maintenance_events"]
    structured = [f for f in good if f.kind in ("maintenance_record", "inspection_report")]
    assert events["documents_read"] == len(structured) + 4 and events["quarantined"] == 4
    assert events["dagster/row_count"] == sum(len(f.event_ids) for f in structured)
    text = meta["standardized/document_text"]
    images = sum(1 for f in good if f.kind == "work_order_scan") + sum(len(f.attachments) for f in good)
    assert text["ocr_images"] == images and text["ocr_docs_per_s"] > 0 and text["ocr_mean_confidence"] > 0.8
    assert text["dagster/row_count"] == len(good) + sum(len(f.attachments) for f in good)
    emb = meta["standardized/document_embeddings"]
    assert emb["texts_embedded"] == text["dagster/row_count"] and emb["embed_docs_per_s"] > 0
    assert emb["model"].startswith("sentence-transformers/all-MiniLM-L6-v2")

    checks = _checks(result)
    assert checks[("standardized/document_embeddings", "every_text_embedded")]
    assert checks[("standardized/document_text", "ocr_confidence")]
    assert checks[("standardized/maintenance_events", "tail_numbers_known")]
    # 4 of 17 structured documents and 6 of 30 documents are hostile: past the 10 % threshold, so the checks say so
    assert not checks[("standardized/maintenance_events", "quarantine_share")]
    assert not checks[("standardized/document_text", "quarantine_share")]

    again = materialize(document_assets, resources=resources, instance=instance)
    assert again.success
    meta2 = _metadata(again)
    assert meta2["raw/documents"]["dagster/row_count"] == 0 and len(manifests(lake)) == 1
    assert meta2["standardized/maintenance_events"]["documents_read"] == 0
    assert meta2["standardized/document_text"]["documents_read"] == 0
    assert meta2["standardized/document_embeddings"]["texts_embedded"] == 0
    assert meta2["standardized/document_text"]["dagster/row_count"] == text["dagster/row_count"]


def test_a_new_batch_is_read_incrementally_and_evolves_the_schema(resources: dict, tmp_path: Path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    store = resources["documents"].get_store()
    corpus = generate(seed=3, records=16, reports=0, scans=0, emails=0)
    early = [f for f in corpus.files if f.at.date() < dt.date(2013, 5, 1)]
    late = [f for f in corpus.files if f.at.date() >= dt.date(2013, 5, 1)]
    assert early and late
    corpus.files = early
    produce(corpus, store, lake, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    events = [a for a in document_assets if a.key.path[-1] in ("documents", "maintenance_events")]
    first = materialize(events, resources=resources)
    assert "aircraft_hours" not in delta.scan(lake, "standardized/maintenance_events").collect_schema()

    corpus.files = late
    produce(corpus, store, lake, now=dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    second = materialize(events, resources=resources)
    meta = _metadata(second)["standardized/maintenance_events"]
    assert meta["documents_read"] == len(late)
    assert {"aircraft_hours", "inspector_name", "inspector_license"} <= set(meta["columns_added"])
    assert meta["dagster/row_count"] == 16 and _metadata(first)["raw/documents"]["dagster/row_count"] == len(early)
    assert catalog(lake).height == 16 and len(manifests(lake)) == 2


def _report(findings: int) -> bytes:
    body = "".join(f'<finding ata="32" severity="minor"><description>Brake wear {n}</description></finding>'
                   for n in range(findings))
    return (f'<inspectionReport id="IR-FIX" version="1"><aircraft tailnum="N14228"/>'
            f'<performed station="EWR" at="2013-03-14T08:00:00Z" type="A-check"/><findings>{body}</findings>'
            "</inspectionReport>").encode()


def test_a_corrected_document_replaces_its_events_and_a_broken_one_keeps_the_last_good(resources: dict,
                                                                                         tmp_path: Path) -> None:
    from pipelines.synthetic.documents import Corpus, GeneratedFile

    lake = Lake(str(tmp_path / "lake"))
    store = resources["documents"].get_store()
    events = [a for a in document_assets if a.key.path[-1] in ("documents", "maintenance_events")]

    def send(body: bytes, day: int) -> list[str]:
        doc = GeneratedFile("ir-fix", "inspection_report", "ir-fix.xml", "application/xml", body, "N14228",
                            dt.datetime(2013, 3, 14, tzinfo=dt.UTC), (), "")
        produce(Corpus([doc]), store, lake, now=dt.datetime(2026, 1, day, tzinfo=dt.UTC))
        assert materialize(events, resources=resources).success
        table = delta.scan(lake, "standardized/maintenance_events").filter(pl.col("doc_id") == "ir-fix").collect()
        return sorted(table["description"].to_list())

    assert send(_report(3), 1) == ["Brake wear 0", "Brake wear 1", "Brake wear 2"]
    assert send(_report(1), 2) == ["Brake wear 0"]  # the correction's stale findings are gone
    assert send(_report(2)[:50], 3) == ["Brake wear 0"]  # a broken correction keeps the last good version
    refused = delta.scan(lake, QUARANTINE_EVENTS).collect()
    assert refused["doc_id"].to_list() == ["ir-fix"] and refused["rule"][0] == "invalid_xml"


def test_dynamodb_and_s3_path_quarantines_hostile_records(hostile_corpus, s3_env: dict) -> None:
    import uuid

    from resources import build_resources

    resources = {
        "lake": build_resources("localstack")["lake"],
        "documents": DynamoDocumentStoreResource(table=f"docs-{uuid.uuid4().hex[:8]}",
                                                 endpoint_url=s3_env["AWS_ENDPOINT_URL"], access_key_id="test",
                                                 secret_access_key="test", create_table=True,
                                                 max_document_bytes=OVERSIZE_LIMIT),
    }
    lake = resources["lake"].process_config_and_initialize().get_lake()
    store = resources["documents"].process_config_and_initialize().get_store()
    produce(hostile_corpus, store, lake)
    events = [a for a in document_assets if a.key.path[-1] in ("documents", "maintenance_events")]
    result = materialize(events, resources=resources)
    assert result.success
    assert lake.uri().startswith("s3://")
    landed = catalog(lake)
    assert set(landed.filter(pl.col("source") == "store")["doc_id"]) == {
        f.doc_id for f in hostile_corpus.files if f.destination == "store"}
    rules = dict(delta.scan(lake, QUARANTINE_EVENTS).select("doc_id", "rule").collect().iter_rows())
    assert rules == {"mr-hostile-truncated": "invalid_json", "mr-hostile-no-tail": "missing_field",
                     "ir-hostile-billion-laughs": "xml_forbidden", "ir-hostile-xxe": "xml_forbidden"}
    assert dict(delta.scan(lake, QUARANTINE_LANDING).select("doc_id", "rule").collect().iter_rows()) == {
        "em-hostile-oversize": "oversize"}
