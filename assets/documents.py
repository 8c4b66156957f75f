"""Documents group: NoSQL records and landed files into the raw zone, then events, text and embeddings."""


import time

import polars as pl
from dagster import (AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, AssetExecutionContext, AssetKey, Config,
                     Definitions, MaterializeResult, MetadataValue, asset, asset_check)
from pydantic import Field

from assets.common import table_metadata
from pipelines.core import delta
from pipelines.documents import (DOCUMENT_EMBEDDINGS, DOCUMENT_TEXT, MAINTENANCE_EVENTS, QUARANTINE_EVENTS,
                                 QUARANTINE_LANDING, QUARANTINE_TEXT, RAW)
from pipelines.documents.landing import CATALOG_SCHEMA, Landed, catalog, land
from pipelines.documents.structured import Source, flatten
from pipelines.documents.tables import delete_rows, quarantine, read, read_bodies, todo, upsert
from pipelines.core.lake import Lake
from resources.documents import DocumentStoreResource
from resources.lake import LakeResource
from pipelines.documents.ocr import engine_name, shared_engine
from pipelines.documents.search import known_tails, plane_details
from pipelines.documents.index import build_index, planes_frame, source_versions
from pipelines.documents import DOCUMENT_INDEX
from pipelines.warehouse import DIM_PLANE
from pipelines.documents.text import TextStats, extract_texts
from pipelines.documents.embed import BATCH_SIZE, DIM, embed_texts, shared_embedder

GROUP = "documents"
RAW_KEY = AssetKey.from_user_string(RAW)
EVENTS_KEY = AssetKey.from_user_string(MAINTENANCE_EVENTS)
TEXT_KEY = AssetKey.from_user_string(DOCUMENT_TEXT)
EMBEDDINGS_KEY = AssetKey.from_user_string(DOCUMENT_EMBEDDINGS)
INDEX_KEY = AssetKey.from_user_string(DOCUMENT_INDEX)
QUARANTINE_SHARE_MAX = 0.10
"""An asset check fails when more than this share of a table's documents sit in its quarantine."""
OCR_CONFIDENCE_MIN = 0.80
TEXT_CHUNK = 128
"""Documents read (OCR) per Delta commit, so a long run keeps what it finished."""
EMBED_CHUNK = 1_024
TAILS_KNOWN_MIN = 0.99


class DocumentsConfig(Config):
    reprocess: bool = Field(default=False, description="Read every landed document again, not only new ones.")


def _table_stats(lake: Lake, rel: str, preview_sort: str) -> dict:
    frame = delta.scan(lake, rel)
    schema = frame.collect_schema()
    rows = frame.select(pl.len()).collect().item()
    preview = frame.sort(preview_sort, descending=True).head(5).collect()
    if "embedding" in preview.columns:
        preview = preview.with_columns(pl.col("embedding").list.head(3))
    metadata = table_metadata(rows=rows, uri=lake.uri(rel), schema=schema, preview=preview)
    metadata["delta_version"] = delta.version(lake, rel)
    return metadata


def _share(lake: Lake, table: str, quarantine_rel: str) -> tuple[float, int, int]:
    """(share of documents in quarantine, documents in the table, documents in quarantine)."""
    good = read(lake, table, ["doc_id"])
    bad = read(lake, quarantine_rel, ["doc_id"])
    n_good = 0 if good is None else good["doc_id"].n_unique()
    n_bad = 0 if bad is None else bad["doc_id"].n_unique()
    total = n_good + n_bad
    return (n_bad / total if total else 0.0), n_good, n_bad


def _share_check(lake: Lake, table: str, quarantine_rel: str, asset_key: AssetKey) -> AssetCheckResult:
    share, good, bad = _share(lake, table, quarantine_rel)
    return AssetCheckResult(
        check_name="quarantine_share",
        asset_key=asset_key,
        passed=share <= QUARANTINE_SHARE_MAX,
        severity=AssetCheckSeverity.ERROR,
        metadata={"share": round(share, 4), "documents": good, "quarantined": bad, "max_share": QUARANTINE_SHARE_MAX,
                  "quarantine_uri": MetadataValue.path(lake.uri(quarantine_rel))},
    )


def _share_spec(key: AssetKey, what: str) -> AssetCheckSpec:
    return AssetCheckSpec("quarantine_share", asset=key,
                          description=f"At most {QUARANTINE_SHARE_MAX:.0%} of {what} are in quarantine.")


@asset(
    key=RAW_KEY,
    group_name=GROUP,
    kinds={"dynamodb", "s3"},
    description="Documents as they arrived (NoSQL records and landed files), copied byte for byte with a manifest.",
)
def raw_documents(
    context: AssetExecutionContext, lake: LakeResource, documents: DocumentStoreResource
) -> MaterializeResult:
    the_lake = lake.get_lake()
    store = documents.get_store()
    started = time.monotonic()

    def quarantine_refused(batch: Landed) -> None:
        quarantine(the_lake, QUARANTINE_LANDING, batch.refused, run_id=context.run_id)
        for r in batch.refused:
            context.log.warning(f"refused {r['item']}: {r['rule']}: {r['reason']}")

    landed = land(store, the_lake, run_id=context.run_id, limits=documents.limits(),
                  prefix=documents.landing_prefix, max_documents=documents.max_documents_per_run,
                  before_publish=quarantine_refused)
    refused = landed.refused
    seconds = time.monotonic() - started
    entries = pl.DataFrame(landed.entries, schema=CATALOG_SCHEMA) if landed.entries else pl.DataFrame(
        schema=CATALOG_SCHEMA)
    context.log.info(f"landed {entries.height} document(s), {landed.bytes:,} bytes, refused {len(refused)}, "
                     f"from {store.describe()} and {documents.landing_prefix}")
    metadata = table_metadata(rows=entries.height, uri=the_lake.uri(RAW), schema=CATALOG_SCHEMA,
                              preview=entries.select("doc_id", "kind", "source", "size", "arrived_at"))
    metadata.update({
        "bytes": landed.bytes,
        "by_kind": MetadataValue.json(dict(entries.group_by("kind").len().sort("kind").iter_rows())),
        "refused": len(refused),
        "manifest": MetadataValue.path(the_lake.uri(landed.manifest) if landed.manifest else ""),
        "watermark": MetadataValue.json(landed.state_after),
        "documents_per_s": round(entries.height / seconds, 1) if seconds else 0.0,
        "source": store.describe(),
    })
    return MaterializeResult(metadata=metadata)


def _write(context: AssetExecutionContext, lake: Lake, docs: pl.DataFrame, rows: pl.DataFrame, rejected: list,
           *, before: pl.DataFrame | None, target: str, keys: list[str], quarantine_rel: str) -> None:
    """Upsert what `docs` gave into `target` and their refusals into quarantine (and the log). A new version of a
    document replaces its old rows; a refused new version leaves the last good one."""
    refused = {r.doc_id for r in rejected}
    replaced = [] if before is None else sorted(set(before["doc_id"]) & set(docs["doc_id"]) - refused)
    upsert(lake, target, rows, keys=keys, replace=("doc_id", replaced))
    quarantine(lake, quarantine_rel, rejected, run_id=context.run_id,
               items=dict(docs.select("doc_id", "raw_path").iter_rows()))
    for r in rejected:
        context.log.warning(f"quarantined {r.doc_id}: {r.rule}: {r.reason}")


def _sources(lake: Lake, docs: pl.DataFrame) -> list[Source]:
    bodies = read_bodies(lake, docs["raw_path"].to_list())
    rows = docs.select("doc_id", "sha256", "kind").iter_rows()
    return [Source(d, s, k, b) for (d, s, k), b in zip(rows, bodies, strict=True)]


@asset(
    key=EVENTS_KEY,
    deps=[RAW_KEY],
    group_name=GROUP,
    kinds={"delta", "polars"},
    check_specs=[_share_spec(EVENTS_KEY, "JSON records and XML reports")],
    description="JSON maintenance records and XML inspection reports as one typed table, one row per finding.",
)
def maintenance_events(
    context: AssetExecutionContext, config: DocumentsConfig, lake: LakeResource
) -> MaterializeResult:
    the_lake = lake.get_lake()
    docs = todo(the_lake, catalog(the_lake), kinds=("maintenance_record", "inspection_report"),
                target=MAINTENANCE_EVENTS, quarantine_rel=QUARANTINE_EVENTS, reprocess=config.reprocess)
    started = time.monotonic()
    events, rejected = flatten(_sources(the_lake, docs), run_id=context.run_id)
    before = read(the_lake, MAINTENANCE_EVENTS, ["doc_id", "event_id"])
    columns_before = set() if before is None else set(delta.scan(the_lake, MAINTENANCE_EVENTS).collect_schema())
    _write(context, the_lake, docs, events, rejected, before=before, target=MAINTENANCE_EVENTS, keys=["event_id"],
           quarantine_rel=QUARANTINE_EVENTS)
    seconds = time.monotonic() - started
    context.log.info(f"{docs.height} document(s) read, {events.height} event(s), {len(rejected)} quarantined")
    if delta.open_table(the_lake, MAINTENANCE_EVENTS) is None:  # every document refused on the first run
        return MaterializeResult(metadata={"documents_read": docs.height, "quarantined": len(rejected)},
                                 check_results=[_share_check(the_lake, MAINTENANCE_EVENTS, QUARANTINE_EVENTS,
                                                             EVENTS_KEY)])
    metadata = _table_stats(the_lake, MAINTENANCE_EVENTS, "event_ts")
    columns_after = set(delta.scan(the_lake, MAINTENANCE_EVENTS).collect_schema())
    added = sorted(columns_after - columns_before) if before is not None else []
    metadata.update({
        "documents_read": docs.height,
        "events_written": events.height,
        "quarantined": len(rejected),
        "columns_added": MetadataValue.json(added),
        "schema_versions": MetadataValue.json({str(k): v for k, v in (
            events.group_by("source_format", "schema_version").len().sort("source_format", "schema_version")
            .select(pl.format("{}-v{}", "source_format", "schema_version"), "len").iter_rows())}),
        "documents_per_s": round(docs.height / seconds, 1) if seconds else 0.0,
    })
    return MaterializeResult(metadata=metadata, check_results=[
        _share_check(the_lake, MAINTENANCE_EVENTS, QUARANTINE_EVENTS, EVENTS_KEY)])


@asset(
    key=TEXT_KEY,
    deps=[RAW_KEY],
    group_name=GROUP,
    kinds={"delta", "onnx"},
    check_specs=[
        _share_spec(TEXT_KEY, "landed documents"),
        AssetCheckSpec("ocr_confidence", asset=TEXT_KEY,
                       description=f"Mean OCR line confidence of the run's scans is at least {OCR_CONFIDENCE_MIN}."),
    ],
    description="The text of every document: OCR of scans and email attachments, email bodies, JSON and XML.",
)
def document_text(
    context: AssetExecutionContext, config: DocumentsConfig, lake: LakeResource, documents: DocumentStoreResource
) -> MaterializeResult:
    the_lake = lake.get_lake()
    docs = todo(the_lake, catalog(the_lake), kinds=("maintenance_record", "inspection_report", "work_order_scan",
                                                    "email"),
                target=DOCUMENT_TEXT, quarantine_rel=QUARANTINE_TEXT, reprocess=config.reprocess)
    tails = known_tails(the_lake) if docs.height else set()
    totals = TextStats()
    confidences: list[float] = []
    texts = rejected_count = 0
    for offset in range(0, docs.height, TEXT_CHUNK):
        part = docs.slice(offset, TEXT_CHUNK)
        frame, rejected, stats = extract_texts(_sources(the_lake, part), ocr=lambda: shared_engine(documents.ocr_threads), run_id=context.run_id,
                                               limits=documents.limits(), known_tails=tails)
        _write(context, the_lake, part, frame, rejected, before=read(the_lake, DOCUMENT_TEXT, ["doc_id"]),
               target=DOCUMENT_TEXT, keys=["text_id"], quarantine_rel=QUARANTINE_TEXT)
        totals.ocr_images += stats.ocr_images
        totals.ocr_seconds += stats.ocr_seconds
        confidences += frame.filter(pl.col("method") == "ocr")["ocr_confidence"].to_list()
        texts += frame.height
        rejected_count += len(rejected)
        context.log.info(f"{min(offset + TEXT_CHUNK, docs.height)}/{docs.height} documents: {totals.ocr_images} "
                         f"image(s) read at {totals.ocr_docs_per_s:.2f}/s")
    mean_confidence = sum(confidences) / len(confidences) if confidences else None
    checks = [
        _share_check(the_lake, DOCUMENT_TEXT, QUARANTINE_TEXT, TEXT_KEY),
        AssetCheckResult(check_name="ocr_confidence", asset_key=TEXT_KEY,
                         passed=mean_confidence is None or mean_confidence >= OCR_CONFIDENCE_MIN,
                         metadata={"mean_confidence": round(mean_confidence, 4) if mean_confidence else None,
                                   "images": len(confidences)}),
    ]
    run_metadata = {
        "documents_read": docs.height,
        "texts_written": texts,
        "quarantined": rejected_count,
        "ocr_images": totals.ocr_images,
        "ocr_seconds": round(totals.ocr_seconds, 2),
        "ocr_docs_per_s": round(totals.ocr_docs_per_s, 3),
        "ocr_mean_confidence": round(mean_confidence, 4) if mean_confidence else None,
        "ocr_engine": engine_name(),
    }
    if delta.open_table(the_lake, DOCUMENT_TEXT) is None:
        return MaterializeResult(metadata=run_metadata, check_results=checks)
    metadata = _table_stats(the_lake, DOCUMENT_TEXT, "text_id")
    metadata.update(run_metadata)
    return MaterializeResult(metadata=metadata, check_results=checks)


@asset(
    key=EMBEDDINGS_KEY,
    deps=[TEXT_KEY],
    group_name=GROUP,
    kinds={"delta", "pytorch"},
    check_specs=[AssetCheckSpec("every_text_embedded", asset=EMBEDDINGS_KEY,
                                description="Every text of document_text has current embeddings of unit length.")],
    description="Sentence embeddings (all-MiniLM-L6-v2, shipped in a package) of every text, chunk by chunk.",
)
def document_embeddings(context: AssetExecutionContext, config: DocumentsConfig, lake: LakeResource
                        ) -> MaterializeResult:
    the_lake = lake.get_lake()
    texts = read(the_lake, DOCUMENT_TEXT, ["text_id", "doc_id", "text_sha256", "text"])
    texts = texts if texts is not None else pl.DataFrame(schema={"text_id": pl.String, "doc_id": pl.String,
                                                                  "text_sha256": pl.String, "text": pl.String})
    done = read(the_lake, DOCUMENT_EMBEDDINGS, ["text_id", "text_sha256"])
    pending = texts
    if done is not None and not config.reprocess:
        pending = texts.join(done.unique(), on=["text_id", "text_sha256"], how="anti")
    if done is not None:  # texts gone from document_text (a re-read email lost an attachment): drop their vectors
        orphans = sorted(set(done["text_id"]) - set(texts["text_id"]))
        if orphans:
            delete_rows(the_lake, DOCUMENT_EMBEDDINGS, "text_id", orphans)
            context.log.info(f"dropped the embeddings of {len(orphans)} text(s) no longer in document_text")
    chunks = 0
    seconds = 0.0
    embedder = None
    for offset in range(0, pending.height, EMBED_CHUNK):
        part = pending.slice(offset, EMBED_CHUNK)
        embedder = embedder or shared_embedder()
        frame, encoded = embed_texts(part, embedder, run_id=context.run_id)
        replaced = [] if done is None else sorted(set(done["text_id"]) & set(part["text_id"]))
        upsert(the_lake, DOCUMENT_EMBEDDINGS, frame, keys=["text_id", "chunk"], replace=("text_id", replaced))
        chunks += frame.height
        seconds += encoded.seconds
        context.log.info(f"{min(offset + EMBED_CHUNK, pending.height)}/{pending.height} texts embedded "
                         f"({chunks} chunks, {chunks / seconds if seconds else 0:.1f} chunks/s)")
    run_metadata = {
        "texts_embedded": pending.height,
        "chunks_embedded": chunks,
        "embed_seconds": round(seconds, 2),
        "embed_docs_per_s": round(pending.height / seconds, 2) if seconds else 0.0,
        "embed_chunks_per_s": round(chunks / seconds, 2) if seconds else 0.0,
        "batch_size": BATCH_SIZE,
        "model": embedder.name if embedder else "not loaded (nothing to embed)",
        "dimensions": DIM,
    }
    if delta.open_table(the_lake, DOCUMENT_EMBEDDINGS) is None:
        check = AssetCheckResult(check_name="every_text_embedded", passed=texts.is_empty(),
                                 metadata={"texts": texts.height, "missing": texts.height})
        return MaterializeResult(metadata=run_metadata, check_results=[check])
    current = delta.scan(the_lake, DOCUMENT_EMBEDDINGS).select(
        "text_id", "text_sha256", pl.col("embedding").list.eval(pl.element().pow(2)).list.sum().sqrt().alias("norm")
    ).collect()
    missing = texts.join(current.select("text_id", "text_sha256").unique(), on=["text_id", "text_sha256"], how="anti")
    off_norm = current.filter((pl.col("norm") - 1.0).abs() > 1e-3).height
    check = AssetCheckResult(check_name="every_text_embedded", passed=missing.is_empty() and off_norm == 0,
                             metadata={"texts": texts.height, "missing": missing.height, "not_unit_length": off_norm})
    metadata = _table_stats(the_lake, DOCUMENT_EMBEDDINGS, "text_id")
    metadata.update(run_metadata)
    return MaterializeResult(metadata=metadata, check_results=[check])


@asset_check(
    asset=EVENTS_KEY,
    name="tail_numbers_known",
    description=f"At least {TAILS_KNOWN_MIN:.0%} of maintenance events name a tail number the planes data knows.",
)
def tail_numbers_known(lake: LakeResource) -> AssetCheckResult:
    the_lake = lake.get_lake()
    events = read(the_lake, MAINTENANCE_EVENTS, ["tailnum"])
    if events is None or events.is_empty():
        return AssetCheckResult(passed=True, metadata={"events": 0})
    known = known_tails(the_lake)
    unknown = events.filter(~pl.col("tailnum").is_in(list(known)))
    share = 1 - unknown.height / events.height
    return AssetCheckResult(
        passed=share >= TAILS_KNOWN_MIN,
        severity=AssetCheckSeverity.WARN,
        metadata={"known_share": round(share, 4), "events": events.height,
                  "unknown_examples": MetadataValue.json(unknown["tailnum"].unique().sort().head(10).to_list())},
    )


@asset(
    key=INDEX_KEY,
    deps=[TEXT_KEY, EMBEDDINGS_KEY, AssetKey.from_user_string(DIM_PLANE)],
    group_name=GROUP,
    kinds={"delta", "polars"},
    check_specs=[AssetCheckSpec("planes_known", asset=INDEX_KEY,
                                description=f"At least {TAILS_KNOWN_MIN:.0%} of the indexed texts that name a tail "
                                            "number find its plane in warehouse/dim_plane.")],
    description="The search index: every embedded chunk with its document and its plane from warehouse/dim_plane, "
                "joined by tail number. `tributary search` reads it.",
)
def document_index(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    the_lake = lake.get_lake()
    versions = source_versions(the_lake)
    if versions is None:
        context.log.info("no document text or embeddings yet: nothing to index")
        return MaterializeResult(metadata={"texts": 0}, check_results=[
            AssetCheckResult(check_name="planes_known", passed=True, metadata={"texts_with_tail": 0})])
    texts = read(the_lake, DOCUMENT_TEXT)
    tails = sorted(set(texts["tailnum"].drop_nulls().to_list()))
    details, note = plane_details(the_lake, tails)
    if note:
        context.log.warning(note)
    built = build_index(read(the_lake, DOCUMENT_EMBEDDINGS), texts, planes_frame(details),
                        text_version=versions[0], embeddings_version=versions[1], planes_note=note)
    delta.overwrite(the_lake, DOCUMENT_INDEX, built)
    per_text = built.unique("text_id").filter(pl.col("tailnum").is_not_null())
    share = per_text["plane_known"].mean() if per_text.height else 1.0
    metadata = _table_stats(the_lake, DOCUMENT_INDEX, "text_id")
    metadata.update({"texts": built["text_id"].n_unique(), "planes_from": note or DIM_PLANE,
                     "built_from_versions": MetadataValue.json(dict(zip((DOCUMENT_TEXT, DOCUMENT_EMBEDDINGS), versions,
                                                                        strict=True)))})
    return MaterializeResult(metadata=metadata, check_results=[AssetCheckResult(
        check_name="planes_known", passed=share >= TAILS_KNOWN_MIN, severity=AssetCheckSeverity.WARN,
        metadata={"known_share": round(share, 4), "texts_with_tail": per_text.height})])


document_assets = [raw_documents, maintenance_events, document_text, document_embeddings, document_index]
document_checks = [tail_numbers_known]

defs = Definitions(assets=document_assets, asset_checks=document_checks)
