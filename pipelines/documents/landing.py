"""Landing what is new in the document sources into the raw zone, with a manifest.

Sources: JSON records in the NoSQL store; every other file under the landing prefix of the lake, named
`<prefix>/date=YYYY-MM-DD/<UTC time, 20130314T081500123456Z>-<file name>` so that key order is arrival order.

Landing is exactly-once into the lake without trusting anyone's cursor but its own: the watermark (the store
cursor and the last landing key) lives in `raw/documents/_state.json` and moves only after the batch's copies
and its manifest are written. A run killed half-way lands the same documents again next time, to the same raw
paths (an arrival time is part of each path), and readers keep one entry per document.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import polars as pl
import pyarrow.fs as pafs

from pipelines.documents import LANDING, RAW
from pipelines.documents.safety import RULE_UNSUPPORTED, Limits, Refused, check_size
from pipelines.documents.store import Cursor, DocumentStore, advance
from pipelines.core.lake import Lake

STATE = f"{RAW}/_state.json"
MANIFESTS = f"{RAW}/_manifests"
KINDS_BY_SUFFIX = {
    ".json": ("maintenance_record", "application/json"),
    ".xml": ("inspection_report", "application/xml"),
    ".png": ("work_order_scan", "image/png"),
    ".jpg": ("work_order_scan", "image/jpeg"),
    ".jpeg": ("work_order_scan", "image/jpeg"),
    ".eml": ("email", "message/rfc822"),
}
_LANDING_NAME = re.compile(r"^(?P<ts>\d{8}T\d{12}Z)-(?P<name>.+)$")

CATALOG_SCHEMA = pl.Schema({
    "doc_id": pl.String(), "kind": pl.String(), "content_type": pl.String(), "source": pl.String(),
    "source_key": pl.String(), "raw_path": pl.String(), "size": pl.Int64(), "sha256": pl.String(),
    "arrived_at": pl.String(), "tailnum_hint": pl.String(), "batch_id": pl.String(),
})


def compact_utc(at: dt.datetime) -> str:
    """A UTC time as `20130314T081500123456Z`: sorts as it reads, fits in a key."""
    return at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")


def landing_key(prefix: str, filename: str, at: dt.datetime) -> str:
    return f"{prefix}/date={at.astimezone(dt.UTC):%Y-%m-%d}/{compact_utc(at)}-{filename}"


@dataclass(frozen=True)
class LandingFile:
    key: str
    size: int


def list_landing(lake: Lake, prefix: str, after: str = "") -> list[LandingFile]:
    """Files under the landing prefix whose key sorts after `after`, in key (= arrival) order."""
    after_day = after[len(prefix) + 1:].split("/", 1)[0] if after.startswith(prefix + "/") else ""
    out = []
    for day in lake.list_dirs(prefix):
        if day < after_day:
            continue
        selector = pafs.FileSelector(lake.path(f"{prefix}/{day}"), allow_not_found=True)
        for info in lake.fs.get_file_info(selector):
            key = f"{prefix}/{day}/{info.base_name}"
            if info.type == pafs.FileType.File and key > after and not info.base_name.startswith(".") \
                    and not info.base_name.endswith(".tmp"):
                out.append(LandingFile(key, int(info.size or 0)))
    return sorted(out, key=lambda f: f.key)


def read_state(lake: Lake) -> dict:
    state = lake.read_json(STATE) or {}
    return {"store": dict(state.get("store", {})), "landing": state.get("landing", "")}


@dataclass
class Landed:
    """What one landing run did."""

    batch_id: str
    entries: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    manifest: str | None = None
    state_before: dict = field(default_factory=dict)
    state_after: dict = field(default_factory=dict)

    @property
    def bytes(self) -> int:
        return sum(e["size"] for e in self.entries)


def _entry(doc_id: str, kind: str, ctype: str, source: str, source_key: str, raw_path: str, body: bytes,
           arrived_at: str, tailnum: str | None, batch_id: str) -> dict:
    return {"doc_id": doc_id, "kind": kind, "content_type": ctype, "source": source, "source_key": source_key,
            "raw_path": raw_path, "size": len(body), "sha256": hashlib.sha256(body).hexdigest(),
            "arrived_at": arrived_at, "tailnum_hint": tailnum, "batch_id": batch_id}


def _refusal(doc_id: str, source_key: str, error: Refused, batch_id: str) -> dict:
    return {"doc_id": doc_id, "item": source_key, "rule": error.rule, "reason": error.reason, "batch_id": batch_id}


def land(store: DocumentStore, lake: Lake, *, run_id: str, limits: Limits | None = None, prefix: str = LANDING,
         max_documents: int = 5_000, now: dt.datetime | None = None,
         before_publish: Callable[[Landed], None] | None = None) -> Landed:
    """Copy every document that arrived after the lake's watermark into `raw/documents`, then publish the
    batch manifest and move the watermark. Oversize and unsupported files are refused, not copied.

    `before_publish` runs after the copies and before the watermark moves (the asset quarantines the refused
    documents there), so a run killed in between does all of it again rather than skip part of it."""
    now = now or dt.datetime.now(dt.UTC)
    limits = limits or Limits()
    batch_id = f"{compact_utc(now)}-{run_id}"
    state = read_state(lake)
    out = Landed(batch_id=batch_id, state_before=state)
    items = store.read_since(state["store"], limit=max_documents)
    files = list_landing(lake, prefix, state["landing"])[:max_documents]
    for item in items:
        arrived = item.arrived_at
        stamp = compact_utc(dt.datetime.fromisoformat(arrived.replace("Z", "+00:00")))
        suffix = {"application/json": ".json", "application/xml": ".xml"}.get(item.content_type, ".bin")
        kind = item.kind or KINDS_BY_SUFFIX.get(suffix, ("unknown", ""))[0]
        try:
            check_size(len(item.body), limits)
        except Refused as exc:
            out.refused.append(_refusal(item.doc_id, f"store:{item.arrival_key}", exc, batch_id))
            continue
        raw_path = f"{RAW}/date={arrived[:10]}/{stamp}-{item.doc_id}{suffix}"
        lake.publish_bytes(raw_path, item.body)
        out.entries.append(_entry(item.doc_id, kind, item.content_type, "store", f"store:{item.arrival_key}",
                                  raw_path, item.body, arrived, item.tailnum, batch_id))
    for f in files:
        name = PurePosixPath(f.key).name
        match = _LANDING_NAME.match(name)
        filename = match["name"] if match else name
        doc_id = PurePosixPath(filename).stem
        suffix = PurePosixPath(filename).suffix.lower()
        arrived = (dt.datetime.strptime(match["ts"], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=dt.UTC).isoformat()
                   .replace("+00:00", "Z") if match else now.isoformat().replace("+00:00", "Z"))
        try:
            if suffix not in KINDS_BY_SUFFIX:
                raise Refused(RULE_UNSUPPORTED, f"no reader for {suffix or 'files without a suffix'} "
                                                f"(accepted: {', '.join(sorted(KINDS_BY_SUFFIX))})")
            check_size(f.size, limits)  # refused before a byte is read
        except Refused as exc:
            out.refused.append(_refusal(doc_id, f.key, exc, batch_id))
            continue
        body = lake.read_bytes(f.key)
        kind, ctype = KINDS_BY_SUFFIX[suffix]
        raw_path = f"{RAW}/{f.key[len(prefix) + 1:]}"
        lake.publish_bytes(raw_path, body)
        out.entries.append(_entry(doc_id, kind, ctype, "landing", f.key, raw_path, body, arrived, None, batch_id))
    new_state = {"store": advance(state["store"], items),
                 "landing": max([state["landing"], *(f.key for f in files)])}
    out.state_after = new_state
    if not items and not files:
        return out
    if before_publish is not None:
        before_publish(out)
    out.manifest = f"{MANIFESTS}/{batch_id}.json"
    lake.publish_json(out.manifest, {
        "batch_id": batch_id, "run_id": run_id, "landed_at": now.isoformat(), "documents": out.entries,
        "refused": out.refused, "state_before": state, "state_after": new_state,
    })
    lake.publish_json(STATE, {**new_state, "last_manifest": out.manifest})
    return out


def manifests(lake: Lake) -> list[dict]:
    """Every batch manifest, oldest first."""
    selector = pafs.FileSelector(lake.path(MANIFESTS), allow_not_found=True)
    names = sorted(i.base_name for i in lake.fs.get_file_info(selector)
                   if i.type == pafs.FileType.File and i.base_name.endswith(".json"))
    return [json.loads(lake.read_bytes(f"{MANIFESTS}/{name}")) for name in names]


def catalog(lake: Lake, batches: Sequence[dict] | None = None) -> pl.DataFrame:
    """One row per landed document (its latest arrival): what the standardized assets read."""
    rows = [e for m in (manifests(lake) if batches is None else batches) for e in m["documents"]]
    if not rows:
        return pl.DataFrame(schema=CATALOG_SCHEMA)
    frame = pl.DataFrame(rows, schema=CATALOG_SCHEMA)
    return frame.sort("arrived_at", "batch_id").unique("doc_id", keep="last", maintain_order=True)


def pending(lake: Lake, store: DocumentStore, *, prefix: str = LANDING, cursor: dict | None = None) -> dict:
    """The newest position in each source beyond `cursor` (default: the lake's watermark); {} when nothing is new.

    Cheap enough for a sensor: one newest-item query per shard and a listing of the recent landing folders.
    """
    state = cursor if cursor is not None else read_state(lake)
    store_after: Cursor = dict(state.get("store", {}))
    newest_store = store.latest(store_after)
    files = list_landing(lake, prefix, state.get("landing", ""))
    out: dict = {}
    if newest_store:
        out["store"] = {**store_after, **newest_store}
    if files:
        out["landing"] = files[-1].key
    return out
