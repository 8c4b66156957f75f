"""A/B data on the `aws` path: SageMaker Data Capture on the endpoint config, and its JSON lines landed into
`serving/invocations` (issue 20.2). No Dagster.

SageMaker writes what it captures (each request's body and the model's answer) as JSON lines under
`<DestinationS3Uri>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/<mm-ss-fff>-<uuid>.jsonl`, one line per
invocation (AWS's documented shape):

    {"captureData": {"endpointInput": {"observedContentType", "mode": "INPUT", "data", "encoding"},
                     "endpointOutput": {... "mode": "OUTPUT" ...}},
     "eventMetadata": {"eventId", "inferenceId"?, "inferenceTime"}, "eventVersion": "0"}

The destination is the lake's `serving/capture/`. Landing turns each line into the invocation log's rows (one
per row of the request): the variant from the path, its model version and shadow flag from the published
config, the features parsed as the endpoint parses them, the predictions from the answer, and the flight key
from the InferenceId (`InvokeEndpoint(InferenceId="2013-11-01/9E/3302/EWR/1130")`, the warehouse key, or
`flight_id=...`) or, when present, the captured custom attributes; a flight-key request (`{"flights": [...]}`,
issue 20.1) gives each row its own flight's key (placed by the origin's time zone from the lake's online table)
and its features from the answer when it asked for them (`return_features`). Latencies are not captured (CloudWatch has
them per variant), so those columns stay empty. Rows MERGE on (eventId, row, shadow): a file landed twice
lands once. A cursor per variant (`serving/_capture_cursor.json`) skips files older than an hour before the
last one landed (capture files can arrive a little out of order; the MERGE absorbs the overlap).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow.fs as pafs

from pipelines.core import delta
from pipelines.serving.config import EndpointConfig
from pipelines.serving.invocations import KEYS, SCHEMA, TABLE, Landed, flight_key
from pipelines.serving.model import find_model_files
from pipelines.serving.online import TABLE as ONLINE_TABLE, OnlineFeatures, flight_key_of
from pipelines.serving.parsing import BadInput, Schema, content_kind, decode

CAPTURE_PREFIX = "serving/capture"
CURSOR = "serving/_capture_cursor.json"
DEPLOYED = "serving/deployed_endpoint.json"
"""The config the `aws` path last deployed: which model version and shadow flag each captured variant has."""
OVERLAP = dt.timedelta(hours=1)
_HOUR = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/(\d{2})/[^/]+$")
_FLIGHT_ID = re.compile(r"^\d{4}-\d{2}-\d{2}/")


def data_capture_config(destination_uri: str, percentage: int = 100) -> dict[str, Any]:
    """The endpoint config's DataCaptureConfig: requests and answers, JSON and CSV kept as text."""
    return {"EnableCapture": True, "InitialSamplingPercentage": int(percentage), "DestinationS3Uri": destination_uri,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]}}


def capture_flight_key(inference_id: str | None, custom_attributes: str | None) -> tuple[str | None, str | None]:
    """(flight_id, flight_date) from the InferenceId (a warehouse key, or `flight_id=...`), else the attributes."""
    if inference_id:
        if _FLIGHT_ID.match(inference_id):
            return inference_id, inference_id[:10]
        found = flight_key(inference_id)
        if found[0]:
            return found
    return flight_key(custom_attributes)


def _text(part: dict) -> str:
    data = part.get("data") or ""
    return base64.b64decode(data).decode("utf-8", "replace") if part.get("encoding") == "BASE64" else data


def _schemas(config: EndpointConfig | None) -> dict[str, Schema]:
    """Each variant's feature schema from its model folder (where the deploying machine still has it)."""
    out: dict[str, Schema] = {}
    if config is None:
        return out
    served = [(v.name, v.model_dir) for v in config.variants] + ([(config.shadow.name, config.shadow.model_dir)]
                                                                  if config.shadow else [])
    for name, folder in served:
        try:
            spec = json.loads(Path(find_model_files(folder)[0]).read_text())
        except (OSError, ValueError):
            continue
        cats = set(spec.get("categories", {}))
        out[name] = Schema(spec["features"], [f for f in spec["features"] if f in cats])
    return out


def _features(body: str, content_type: str, schema: Schema | None) -> list[dict | None]:
    """The request's rows as feature dicts (None where they cannot be read without the model's schema)."""
    try:
        decoded = decode(body.encode(), content_kind(content_type))
        if schema is not None:
            return [dict(zip(schema.features, row, strict=True)) for row in decoded.rows(schema)]
    except BadInput:
        return []
    if decoded.kind == "json" and isinstance(decoded.value[1], list):
        return [r if isinstance(r, dict) else None for r in decoded.value[1]]
    return []


def _flights(body: str, content_type: str) -> list | None:
    """The flight keys of a flight-key request (online.Flight tuples), None for any other body."""
    try:
        decoded = decode(body.encode(), content_kind(content_type))
    except BadInput:
        return None
    return decoded.value[1] if decoded.flights else None


def capture_rows(line: bytes, endpoint: str, variant: str, config: EndpointConfig | None,
                 schemas: dict[str, Schema], zones: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The invocation-log rows of one captured line (none when it holds no readable answer). `zones`: each
    origin's time zone, to give a flight key sent with its UTC offset its local warehouse key."""
    doc = orjson.loads(line)
    data, meta = doc.get("captureData") or {}, doc.get("eventMetadata") or {}
    request, answer = data.get("endpointInput") or {}, data.get("endpointOutput") or {}
    try:
        answered = orjson.loads(_text(answer))
        predictions = answered.get("predictions") or []
    except (orjson.JSONDecodeError, AttributeError):
        return []
    attributes = meta.get("customAttributes")
    flights = _flights(_text(request), request.get("observedContentType", ""))
    if flights is not None and len(flights) == len(predictions):
        keys = [flight_key_of(f, (zones or {}).get(f.origin)) for f in flights]
        features = [f if isinstance(f, dict) else None for f in answered.get("features") or []]
    else:
        one = capture_flight_key(meta.get("inferenceId"), attributes) if len(predictions) == 1 else (None, None)
        keys = [one] * len(predictions)
        features = [] if flights is not None else _features(_text(request), request.get("observedContentType", ""),
                                                            schemas.get(variant))
    shadow = bool(config and config.shadow and config.shadow.name == variant)
    versions = {v.name: v.model_version for v in (config.variants if config else ())}
    if shadow:
        versions[variant] = config.shadow.model_version
    return [{"request_id": meta.get("eventId"), "row": i, "shadow": shadow, "endpoint": endpoint, "variant": variant,
             "model_version": versions.get(variant), "prediction": float(p),
             "features": orjson.dumps(features[i]).decode() if i < len(features) and features[i] else None,
             "model_latency_us": None, "overhead_latency_us": None, "invoked_at": meta.get("inferenceTime"),
             "flight_id": keys[i][0], "flight_date": keys[i][1], "custom_attributes": attributes}
            for i, p in enumerate(predictions)]


def _hour(rel: str) -> dt.datetime | None:
    found = _HOUR.search(rel)
    return dt.datetime(*map(int, found.groups()), tzinfo=dt.UTC) if found else None


def _pending(lake, endpoint: str, cursor: dict[str, str]) -> list[tuple[str, str]]:
    """(variant, rel path) of the capture files to land, oldest first per variant."""
    base = f"{CAPTURE_PREFIX}/{endpoint}"
    try:
        infos = lake.fs.get_file_info(pafs.FileSelector(lake.path(base), recursive=True, allow_not_found=True))
    except (FileNotFoundError, OSError):
        return []
    root = lake.path("")
    out = []
    for info in infos:
        if info.type != pafs.FileType.File or not info.path.endswith(".jsonl"):
            continue
        rel = info.path[len(root):].lstrip("/") if info.path.startswith(root) else info.path
        variant = rel[len(base) + 1:].split("/", 1)[0]
        last = cursor.get(variant)
        since = _hour(last) - OVERLAP if last and _hour(last) else None
        hour = _hour(rel)
        if since is None or hour is None or hour >= since:
            out.append((variant, rel))
    return sorted(out, key=lambda item: item[1])


def _zones(lake) -> dict[str, Any]:
    """The airports' time zones from the lake's online table (empty before it is built)."""
    if delta.version(lake, ONLINE_TABLE) is None:
        return {}
    parts = delta.scan(lake, ONLINE_TABLE).filter(pl.col("part").is_in(["airport", "meta"])).collect()
    return OnlineFeatures(parts).zones()


def deployed(lake) -> EndpointConfig | None:
    doc = lake.read_json(DEPLOYED)
    return EndpointConfig.from_json(doc) if doc else None


def land_capture(lake, endpoint: str, *, log: Callable[[str], None] = lambda _: None) -> Landed:
    """MERGE the capture files written since the cursor into `serving/invocations`; then move the cursor."""
    config = deployed(lake)
    cursor = lake.read_json(CURSOR) or {}
    files = _pending(lake, endpoint, cursor)
    if not files:
        return Landed(segments=0, rows=0, version=delta.version(lake, TABLE))
    schemas, zones = _schemas(config), _zones(lake)
    rows: list[dict[str, Any]] = []
    for variant, rel in files:
        for line in lake.read_bytes(rel).splitlines():
            if line.strip():
                try:
                    rows += capture_rows(line, endpoint, variant, config, schemas, zones)
                except orjson.JSONDecodeError:
                    log(f"skipped an unreadable capture line in {rel}")
    version = delta.version(lake, TABLE)
    if rows:
        frame = (pl.DataFrame(rows, schema={**SCHEMA, "invoked_at": pl.String(), "flight_date": pl.String()})
                 .with_columns(pl.col("invoked_at").str.to_datetime(time_zone="UTC", time_unit="us", strict=False),
                               pl.col("flight_date").str.to_date(strict=False))
                 .select(list(SCHEMA)).unique(subset=list(KEYS), keep="last", maintain_order=True))
        version = delta.merge(lake, TABLE, frame, keys=KEYS)
    for variant, rel in files:
        cursor[variant] = max(cursor.get(variant, ""), rel)
    lake.publish_json(CURSOR, cursor)
    log(f"landed {len(rows):,} captured invocation row(s) from {len(files)} file(s) (Delta version {version})")
    return Landed(segments=len(files), rows=len(rows), version=version)
