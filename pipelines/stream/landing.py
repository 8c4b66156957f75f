"""Micro-batch landing of a stream into the lake, exactly once. No Dagster.

A batch is a `BatchPlan`: a number and, per shard, the sequence range (after, upto] to land. The plan fixes
everything the batch writes, so a run that dies anywhere and is run again writes the same files:

1. read the records of the plan from the source (repeatable by sequence number);
2. raw zone: one Parquet file per shard and arrival hour,
   `raw/telemetry/date=YYYY-MM-DD/hour=HH/<shard>-<first>-<last>.parquet` (atomic publish, deterministic name);
3. the batch manifest `raw/telemetry/_batches/<batch>.json` (what the next batch starts from);
4. `quarantine/telemetry` (Delta): malformed and too-late records with their rule, MERGE on (shard, sequence);
5. `standardized/telemetry` (Delta, by event date): one row per event, insert-only MERGE on (date, event_id),
   committed together with the Delta application transaction (`APP_ID`, batch). That commit is the batch's
   commit point: a batch whose number the table already holds is never landed twice.

Deduplication: a record read twice has the same (shard, sequence) and so the same event; a record *sent*
twice (a producer retry, an MQTT redelivery) has a new sequence number but the same `event_id`, and the
MERGE on event id keeps the first. Event time: per station, a record older than the newest event time seen
so far is out of order; older than that minus `lateness` (the watermark) it is late and goes to quarantine.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import polars as pl
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.stream.events import EVENT_SCHEMA, FIELDS, MEASURES, RANGES
from pipelines.stream.transports import RECORD_SCHEMA, Source

RAW: Final = "raw/telemetry"
BATCHES: Final = "raw/telemetry/_batches"
STANDARDIZED: Final = "standardized/telemetry"
QUARANTINE: Final = "quarantine/telemetry"
APP_ID: Final = "tributary.telemetry.landing"
"""The Delta application-transaction id under which `standardized/telemetry` records the last batch landed."""

LATENESS: Final = dt.timedelta(hours=2)
"""Allowed lateness in event time: the watermark of a station trails its newest event time by this much."""
MAX_RECORDS: Final = 100_000
"""Records per shard in one batch."""
FUTURE_TOLERANCE: Final = dt.timedelta(days=1)
"""An event time more than this after the record's arrival is a broken clock, not an event."""

RULE_INVALID_JSON: Final = "invalid_json"
"""Not UTF-8, not JSON, or not a JSON object."""
RULE_MISSING_KEY: Final = "missing_key"
"""event_id, station or event_time is missing or blank."""
RULE_INVALID_DATE: Final = "invalid_date"
"""event_time is not an ISO 8601 UTC time, or lies in the future of the record's arrival."""
RULE_NOT_A_NUMBER: Final = "not_a_number"
"""A measurement is present but not a finite number."""
RULE_OUT_OF_RANGE: Final = "out_of_range"
"""A measurement outside its physical range (`events.RANGES`)."""
RULE_LATE: Final = "late"
"""The event time is behind the station's watermark, and the event was not landed before."""
RULES: Final = (RULE_INVALID_JSON, RULE_MISSING_KEY, RULE_INVALID_DATE, RULE_NOT_A_NUMBER, RULE_OUT_OF_RANGE, RULE_LATE)

STANDARDIZED_SCHEMA: Final = pl.Schema(
    {
        **{k: v for k, v in EVENT_SCHEMA.items()},
        "date": pl.Date(),
        "shard": pl.String(),
        "sequence": pl.String(),
        "arrival": pl.Datetime("us", "UTC"),
        "batch": pl.Int64(),
        "out_of_order": pl.Boolean(),
        "landed_at": pl.Datetime("us", "UTC"),
    }
)
QUARANTINE_SCHEMA: Final = pl.Schema(
    {
        "table": pl.String(), "rule": pl.String(), "key": pl.String(), "raw": pl.String(), "run_id": pl.String(),
        "shard": pl.String(), "sequence": pl.String(), "arrival": pl.Datetime("us", "UTC"), "batch": pl.Int64(),
    }
)
"""The project's quarantine columns (table, rule, key, raw, run_id) and where the record sat in the stream."""

_STR = r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"'
_NUM = r"(?:-?(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,20})?|null)"
_TEXT_FIELDS: Final = ("event_id", "station", "event_time", "produced_at")
CANONICAL: Final = "^\\{" + ",".join(f'"{f}":' + (_STR if f in _TEXT_FIELDS else _NUM) for f in FIELDS) + "\\}$"
"""The producer's exact record shape. Records that match it are valid JSON with the right types and are parsed in
one vectorized pass; anything else (other producers, other key orders, malformed records) takes the general
path, field by field."""
_JSON_SCHEMA: Final = {f: (pl.String if f in _TEXT_FIELDS else pl.Float64) for f in FIELDS}


@dataclass(frozen=True)
class ShardRange:
    """Records of one shard with after < sequence <= upto (`after` None: from the start of the shard)."""

    shard: str
    after: str | None
    upto: str


@dataclass(frozen=True)
class BatchPlan:
    """What one landing run lands: its number and a sequence range per shard."""

    batch: int
    ranges: tuple[ShardRange, ...]

    def to_json(self) -> dict:
        return {"batch": self.batch, "ranges": [[r.shard, r.after, r.upto] for r in self.ranges]}

    @classmethod
    def from_json(cls, doc: Mapping) -> BatchPlan:
        return cls(int(doc["batch"]), tuple(ShardRange(s, a, u) for s, a, u in doc["ranges"]))

    @property
    def key(self) -> str:
        """Deterministic: the same plan always has the same key (used in run keys)."""
        spans = ",".join(f"{r.shard}:{r.after or ''}-{r.upto}" for r in self.ranges)
        return f"{self.batch:08d}/{spans}"


@dataclass(frozen=True)
class LandingState:
    """Where the committed batches end: the last batch, the position per shard, the newest event time per station."""

    batch: int = 0
    positions: dict[str, str] = field(default_factory=dict)
    max_event_time: dict[str, dt.datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class Standardized:
    """One batch, split: events to land, records to quarantine, and what was dropped as a duplicate."""

    events: pl.DataFrame
    quarantine: pl.DataFrame
    late: pl.DataFrame  # late events, to quarantine unless an earlier batch landed them (then duplicates)
    duplicates: int
    max_event_time: dict[str, dt.datetime]


@dataclass
class LandingResult:
    """What a landing run did, for metadata and logs."""

    batch: int
    skipped: bool = False
    records: int = 0
    landed: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    raw_files: list[str] = field(default_factory=list)
    standardized_version: int | None = None
    quarantine_version: int | None = None
    max_event_time: dict[str, str] = field(default_factory=dict)
    dates: list[str] = field(default_factory=list)
    seconds: float = 0.0
    preview: pl.DataFrame | None = None

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


# -- state -----------------------------------------------------------------------------------------------------


def committed_batch(lake: Lake, table: DeltaTable | None = None) -> int:
    """The number of the last batch committed to `standardized/telemetry` (0 before the first)."""
    table = table or delta.open_table(lake, STANDARDIZED)
    if table is None:
        return 0
    return table.transaction_version(APP_ID) or 0


def manifest_path(batch: int) -> str:
    return f"{BATCHES}/{batch:010d}.json"


def committed_state(lake: Lake, table: DeltaTable | None = None) -> LandingState:
    """The state after the last committed batch, from its manifest."""
    return state_at(lake, committed_batch(lake, table))


def state_at(lake: Lake, batch: int) -> LandingState:
    """The state after a committed batch (the empty state for batch 0)."""
    if batch == 0:
        return LandingState()
    doc = lake.read_json(manifest_path(batch))
    if doc is None:
        raise RuntimeError(f"batch {batch} is committed but its manifest {manifest_path(batch)} is missing")
    return LandingState(
        batch=batch,
        positions=dict(doc["positions"]),
        max_event_time={s: dt.datetime.fromisoformat(t) for s, t in doc["max_event_time"].items()},
    )


def plan_next(source: Source, state: LandingState, *, max_records: int = MAX_RECORDS,
              arrived_by: dt.datetime | None = None) -> BatchPlan | None:
    """The next batch: up to `max_records` new records per shard after the committed positions; None if none.

    With `arrived_by`, only records that had arrived by then: a landing that stops at the stream's tip at its
    launch, however fast a producer keeps writing."""
    ranges = []
    for shard in source.shards():
        after = state.positions.get(shard)
        upto = source.latest(shard, after=after, limit=max_records)
        if upto is not None and arrived_by is not None:
            arrived = source.read(shard, after=after, upto=upto, limit=max_records)
            arrived = arrived.filter(pl.col("arrival") <= arrived_by)
            upto = arrived["sequence"][-1] if arrived.height else None
        if upto is not None:
            ranges.append(ShardRange(shard, after, upto))
    return BatchPlan(state.batch + 1, tuple(ranges)) if ranges else None


def read_batch(source: Source, plan: BatchPlan) -> pl.DataFrame:
    """The records of a plan, shard after shard, each in sequence order; `ordinal` is the arrival order."""
    frames = [source.read(r.shard, after=r.after, upto=r.upto, limit=1 << 62) for r in plan.ranges]
    records = pl.concat(frames) if frames else pl.DataFrame(schema=RECORD_SCHEMA)
    return records.with_row_index("ordinal")


# -- pure transforms -------------------------------------------------------------------------------------------


def payload_text(payload: pl.Series) -> pl.Series:
    """Payload bytes as text; null for the rare payload that is not UTF-8."""
    try:
        return payload.cast(pl.String)
    except pl.exceptions.PolarsError:  # some record is not UTF-8: decode the batch one by one
        texts = []
        for value in payload.to_list():
            try:
                texts.append(None if value is None else value.decode("utf-8"))
            except UnicodeDecodeError:
                texts.append(None)
        return pl.Series(payload.name, texts, dtype=pl.String)


def _ndjson(texts: pl.Series) -> io.BytesIO:
    """Texts known to hold no line break, as one newline-delimited buffer (written by polars, not joined in Python)."""
    buffer = io.BytesIO()
    texts.to_frame("t").write_csv(buffer, include_header=False, quote_style="never")
    buffer.seek(0)
    return buffer


def _parse_time(col: pl.Expr) -> pl.Expr:
    """ISO 8601 in UTC ('Z' or an offset), to the microsecond; null when it is not one."""
    return pl.coalesce(
        col.str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC", time_unit="us", strict=False),
        col.str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_zone="UTC", time_unit="us", strict=False),
        col.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", time_unit="us", strict=False).dt.convert_time_zone("UTC"),
    )


def parse(records: pl.DataFrame) -> pl.DataFrame:
    """Records with their event fields typed and `rule`: the first rule the record breaks, null when valid."""
    text = payload_text(records["payload"])
    frame = records.with_columns(text.alias("text"), canonical=text.str.contains(CANONICAL).fill_null(False))
    canonical = frame.filter(pl.col("canonical"))
    general = frame.filter(~pl.col("canonical"))

    if canonical.height:
        fields = pl.read_ndjson(_ndjson(canonical["text"]), schema=_JSON_SCHEMA)
        fast = pl.concat([canonical, fields], how="horizontal").with_columns(
            is_object=pl.lit(True), bad_number=pl.lit(False)
        )
    else:
        fast = None

    root = pl.col("text").str.json_path_match("$")
    extracted = general.with_columns(
        is_object=root.is_not_null() & pl.col("text").str.strip_chars_start().str.starts_with("{"),
        **{f: pl.col("text").str.json_path_match(f"$.{f}") for f in FIELDS},
    )
    numbers = {m: pl.col(m).cast(pl.Float64, strict=False) for m in MEASURES}
    slow = extracted.with_columns(
        bad_number=pl.any_horizontal([pl.col(m).is_not_null() & numbers[m].is_null() for m in MEASURES]),
    ).with_columns(**numbers)
    parsed = pl.concat([f for f in (fast, slow) if f is not None], how="diagonal_relaxed").sort("ordinal")

    keys = ("event_id", "station", "event_time")
    blank = {k: pl.col(k).is_null() | (pl.col(k).str.strip_chars() == "") for k in keys}
    not_finite = pl.any_horizontal([(pl.col(m).is_nan() | pl.col(m).is_infinite()).fill_null(False) for m in MEASURES])
    out_of_range = pl.any_horizontal([~pl.col(m).is_between(*RANGES[m]).fill_null(True) for m in MEASURES])
    future = pl.col("event_time") > pl.col("arrival").dt.cast_time_unit("us") + FUTURE_TOLERANCE
    rule = (
        pl.when(pl.col("text").is_null() | ~pl.col("is_object")).then(pl.lit(RULE_INVALID_JSON))
        .when(pl.col("missing_key")).then(pl.lit(RULE_MISSING_KEY))
        .when(pl.col("event_time").is_null() | future).then(pl.lit(RULE_INVALID_DATE))
        .when(pl.col("bad_number") | not_finite).then(pl.lit(RULE_NOT_A_NUMBER))
        .when(out_of_range).then(pl.lit(RULE_OUT_OF_RANGE))
        .otherwise(pl.lit(None, pl.String))
    )  # fmt: skip
    return (
        parsed.with_columns(missing_key=blank["event_id"] | blank["station"] | blank["event_time"])
        .with_columns(event_time=_parse_time(pl.col("event_time")), produced_at=_parse_time(pl.col("produced_at")))
        .with_columns(rule=rule)
        .drop("missing_key", "is_object", "bad_number", "canonical")
    )


def _quarantine_rows(frame: pl.DataFrame, *, run_id: str, batch: int) -> pl.DataFrame:
    key = pl.coalesce(pl.col("event_id"), pl.col("text").str.extract(r'"event_id"\s*:\s*"([^"]*)"'))
    return frame.select(
        table=pl.lit("telemetry"), rule="rule", key=key,
        raw=pl.coalesce(pl.col("text"), pl.col("payload").bin.encode("base64")),
        run_id=pl.lit(run_id), shard="shard", sequence="sequence", arrival="arrival", batch=pl.lit(batch, pl.Int64),
    ).cast(QUARANTINE_SCHEMA)  # fmt: skip


def standardize(
    records: pl.DataFrame,
    *,
    state: LandingState,
    batch: int,
    run_id: str,
    lateness: dt.timedelta = LATENESS,
    landed_at: dt.datetime | None = None,
) -> Standardized:
    """Parse, validate, deduplicate and watermark one batch of records (in arrival order). Pure."""
    parsed = parse(records)
    bad = parsed.filter(pl.col("rule").is_not_null())
    good = parsed.filter(pl.col("rule").is_null())
    unique = good.unique("event_id", keep="first", maintain_order=True)
    duplicates = good.height - unique.height

    prior = pl.DataFrame(
        {"station": list(state.max_event_time), "prior": list(state.max_event_time.values())},
        schema={"station": pl.String, "prior": pl.Datetime("us", "UTC")},
    )
    seen_before = pl.max_horizontal(pl.col("event_time").cum_max().shift(1).over("station", order_by="ordinal"),
                                    pl.col("prior"))
    marked = (
        unique.join(prior, on="station", how="left")
        .with_columns(newest=seen_before)
        .with_columns(
            out_of_order=(pl.col("event_time") < pl.col("newest")).fill_null(False),
            late=(pl.col("event_time") < pl.col("newest") - lateness).fill_null(False),
        )
        .sort("ordinal")
    )
    stamp = landed_at or dt.datetime.now(dt.timezone.utc)
    accepted = marked.filter(~pl.col("late"))
    events = accepted.select(
        *EVENT_SCHEMA.names(),
        date=pl.col("event_time").dt.date(),
        shard="shard", sequence="sequence", arrival="arrival", batch=pl.lit(batch, pl.Int64),
        out_of_order="out_of_order", landed_at=pl.lit(stamp).dt.cast_time_unit("us"),
    ).cast(STANDARDIZED_SCHEMA)  # fmt: skip
    newest = dict(state.max_event_time)
    for station, t in accepted.group_by("station").agg(pl.col("event_time").max()).iter_rows():
        newest[station] = max(t, newest[station]) if station in newest else t
    late = marked.filter(pl.col("late")).with_columns(rule=pl.lit(RULE_LATE))
    return Standardized(
        events=events,
        quarantine=_quarantine_rows(bad, run_id=run_id, batch=batch),
        late=late,
        duplicates=duplicates,
        max_event_time=newest,
    )


def raw_files(records: pl.DataFrame, *, batch: int) -> list[tuple[str, pl.DataFrame]]:
    """(lake path, rows) per shard and arrival hour, named by the first and last sequence in the file."""
    if records.is_empty():
        return []
    framed = records.with_columns(
        _date=pl.col("arrival").dt.date(), _hour=pl.col("arrival").dt.hour(), batch=pl.lit(batch, pl.Int64)
    )
    files = []
    for (shard, day, hour), rows in framed.group_by("shard", "_date", "_hour", maintain_order=True):
        rows = rows.sort("ordinal")
        first, last = rows["sequence"][0], rows["sequence"][-1]
        rel = f"{RAW}/date={day.isoformat()}/hour={hour:02d}/{shard}-{first}-{last}.parquet"
        files.append((rel, rows.select(*RECORD_SCHEMA.names(), "batch")))
    return files


# -- writes ----------------------------------------------------------------------------------------------------


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(frame.to_arrow(), buffer, compression="zstd", compression_level=1)
    return buffer.getvalue()


def insert_new(lake: Lake, rel: str, frame: pl.DataFrame, *, table: DeltaTable | None, predicate: str,
               partition_by: Sequence[str] = (), commit: CommitProperties | None = None) -> tuple[int | None, int]:
    """Insert-only MERGE (create the table if needed); (new version or None when nothing changed, rows inserted)."""
    if table is None:
        # delta._options adds the S3 conditional-put option that lets delta-rs commit without a lock.
        write_deltalake(lake.uri(rel), frame.to_arrow(), mode="overwrite", partition_by=list(partition_by) or None,
                        storage_options=delta.storage_options(lake), commit_properties=commit)
        return 0, frame.height
    if frame.is_empty():
        return None, 0
    before = table.version()
    metrics = (
        # streamed_exec=False: the source is small and in memory, and only then does delta-rs derive a pruning
        # predicate from it (here: the batch's dates), so a merge reads the files of those dates, not the table.
        table.merge(frame.to_arrow(), predicate=predicate, source_alias="s", target_alias="t",
                    streamed_exec=False, commit_properties=commit)
        .when_not_matched_insert_all()
        .execute()
    )
    table.update_incremental()
    after = table.version()
    return (after if after != before else None), int(metrics["num_target_rows_inserted"])


def _already_landed(lake: Lake, late: pl.DataFrame, table: DeltaTable | None) -> set[str]:
    """Event ids among the late records that an earlier batch landed (late copies of landed events)."""
    if late.is_empty() or table is None:
        return set()
    dates = late["event_time"].dt.date().unique().to_list()
    ids = late["event_id"].to_list()
    found = (
        delta.scan(lake, STANDARDIZED)
        .filter(pl.col("date").is_in(dates) & pl.col("event_id").is_in(ids))
        .select("event_id").collect()
    )
    return set(found["event_id"].to_list())


def land(
    lake: Lake,
    source: Source,
    plan: BatchPlan,
    *,
    run_id: str,
    lateness: dt.timedelta = LATENESS,
    on_stage: Callable[[str], None] | None = None,
) -> LandingResult:
    """Land one planned batch exactly once; a batch the lake already holds is skipped. Returns what it did."""
    started = time.monotonic()
    stage = on_stage or (lambda _: None)
    table = delta.open_table(lake, STANDARDIZED)
    done = committed_batch(lake, table)
    if plan.batch <= done:
        return LandingResult(batch=plan.batch, skipped=True, seconds=time.monotonic() - started)
    if plan.batch != done + 1:
        raise ValueError(f"batch {plan.batch} cannot land before batch {done + 1} (the lake holds up to {done})")
    state = committed_state(lake, table)
    moved = [r.shard for r in plan.ranges if state.positions.get(r.shard) != r.after]
    if moved:
        raise ValueError(f"batch {plan.batch} starts shard(s) {', '.join(moved)} elsewhere than batch {done} ended")

    records = read_batch(source, plan)
    stage("read")
    std = standardize(records, state=state, batch=plan.batch, run_id=run_id, lateness=lateness)

    files = raw_files(records, batch=plan.batch)
    for rel, rows in files:
        lake.publish_bytes(rel, _parquet_bytes(rows))
    stage("raw_written")

    landed_before = _already_landed(lake, std.late, table)
    late_new = std.late.filter(~pl.col("event_id").is_in(list(landed_before)))
    quarantine = pl.concat([std.quarantine, _quarantine_rows(late_new, run_id=run_id, batch=plan.batch)])
    positions = dict(state.positions) | {r.shard: r.upto for r in plan.ranges}
    manifest = {
        "batch": plan.batch,
        "plan": plan.to_json(),
        "positions": positions,
        "max_event_time": {s: t.isoformat() for s, t in sorted(std.max_event_time.items())},
        "records": records.height,
        "raw_files": [rel for rel, _ in files],
    }
    lake.publish_json(manifest_path(plan.batch), manifest)
    stage("manifest_written")

    q_version, _ = insert_new(lake, QUARANTINE, quarantine, table=delta.open_table(lake, QUARANTINE),
                                    predicate="t.shard = s.shard AND t.sequence = s.sequence")
    stage("quarantine_committed")

    commit = CommitProperties(
        app_transactions=[Transaction(APP_ID, plan.batch)],
        custom_metadata={"tributary.batch": json.dumps(plan.to_json())},
    )
    version, inserted = insert_new(lake, STANDARDIZED, std.events, table=table, partition_by=["date"],
                                         predicate="t.date = s.date AND t.event_id = s.event_id", commit=commit)
    if version is None:  # nothing new to insert: commit the batch number alone
        assert table is not None
        write_deltalake(table, std.events.clear().to_arrow(), mode="append", commit_properties=commit)
        table.update_incremental()
        version = table.version()
    stage("committed")

    rules = quarantine.group_by("rule").len().sort("rule")
    return LandingResult(
        batch=plan.batch,
        records=records.height,
        landed=inserted,
        duplicates=std.duplicates + (std.events.height - inserted) + len(landed_before),
        out_of_order=int(std.events["out_of_order"].sum()),
        quarantined=dict(rules.iter_rows()),
        raw_files=[rel for rel, _ in files],
        standardized_version=version,
        quarantine_version=q_version,
        max_event_time=manifest["max_event_time"],
        dates=sorted({d.isoformat() for d in std.events["date"].unique().to_list()}),
        seconds=time.monotonic() - started,
        preview=std.events.head(5),
    )


def land_next(lake: Lake, source: Source, *, run_id: str, max_records: int = MAX_RECORDS,
              lateness: dt.timedelta = LATENESS, on_stage: Callable[[str], None] | None = None,
              arrived_by: dt.datetime | None = None) -> LandingResult | None:
    """Plan the next batch from what the lake holds and land it; None when the source has nothing new (that had
    arrived by `arrived_by`, when given)."""
    plan = plan_next(source, committed_state(lake), max_records=max_records, arrived_by=arrived_by)
    if plan is None:
        return None
    return land(lake, source, plan, run_id=run_id, lateness=lateness, on_stage=on_stage)
