"""Score the stream's handling of every labelled fault against the ground truth. No Dagster.

Data faults (spike, stuck, gap) are scored for the online detector and the fixed-threshold baseline: an event
counts as found for a fault when it is flagged *with that kind* (the baseline's only kind is a spike).
Delivery faults are scored for the landing: a malformed record found is one in quarantine (any rule but
`late`); an out-of-order event found is one landed with `out_of_order` or quarantined as `late`; a duplicate
found is an event delivered more than once in the raw zone (and landed once). The unit is the event id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import polars as pl

from pipelines.core import delta
from pipelines.core.lake import Lake
from pipelines.stream.anomaly import DetectorConfig, OnlineDetector, baseline
from pipelines.stream.events import ANALYTIC_FAULTS, DELIVERY_FAULTS
from pipelines.synthetic.telemetry import encode, observations, plan_replay
from pipelines.stream.landing import QUARANTINE, RAW, RULE_LATE, STANDARDIZED, LandingState, payload_text, standardize
from pipelines.stream.transports import RECORD_SCHEMA, shard_index, shard_name
from pipelines.stream.analytics import ANOMALIES_TABLE

SCORES_SCHEMA: Final = pl.Schema(
    {"fault": pl.String(), "method": pl.String(), "labelled": pl.Int64(), "found": pl.Int64(), "tp": pl.Int64(),
     "fp": pl.Int64(), "fn": pl.Int64(), "precision": pl.Float64(), "recall": pl.Float64(), "f1": pl.Float64()}
)


def prf(labelled: set[str], found: set[str]) -> tuple[int, int, int, float, float, float]:
    """(tp, fp, fn, precision, recall, F1); precision is 0 when nothing was found."""
    tp = len(labelled & found)
    fp = len(found - labelled)
    fn = len(labelled - found)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return tp, fp, fn, precision, recall, f1


def _row(fault: str, method: str, labelled: set[str], found: set[str]) -> dict:
    tp, fp, fn, p, r, f = prf(labelled, found)
    return {"fault": fault, "method": method, "labelled": len(labelled), "found": len(found), "tp": tp, "fp": fp,
            "fn": fn, "precision": p, "recall": r, "f1": f}


def _ids(frame: pl.DataFrame) -> set[str]:
    return set(frame["event_id"].to_list())


def score_detection(truth: pl.DataFrame, detector: pl.DataFrame, base: pl.DataFrame) -> pl.DataFrame:
    """Per data fault, and for any of them, the detector beside the baseline (over the events both scored)."""
    universe = _ids(detector)
    rows = []
    for fault in (*ANALYTIC_FAULTS, "any"):
        wanted = ANALYTIC_FAULTS if fault == "any" else (fault,)
        labelled = _ids(truth.filter(pl.col("fault").is_in(wanted))) & universe
        for method, flags in (("detector", detector), ("baseline", base)):
            typed = pl.col("flag") if fault == "any" else pl.col("flag") & pl.col("kind").is_in(wanted)
            found = flags.filter(typed)
            rows.append(_row(fault, method, labelled, _ids(found)))
    return pl.DataFrame(rows, schema=SCORES_SCHEMA)


def score_landing(truth: pl.DataFrame, *, landed: pl.DataFrame, quarantine: pl.DataFrame,
                  raw_ids: pl.Series) -> pl.DataFrame:
    """Per delivery fault, what the landing did: quarantined, flagged out of order or late, deduplicated."""
    labelled = {f: _ids(truth.filter(pl.col("fault") == f)) for f in DELIVERY_FAULTS}
    bad = set(quarantine.filter(pl.col("rule") != RULE_LATE)["key"].drop_nulls().to_list())
    late = set(quarantine.filter(pl.col("rule") == RULE_LATE)["key"].drop_nulls().to_list())
    out_of_order = _ids(landed.filter("out_of_order")) | late
    counts = raw_ids.drop_nulls().value_counts()
    delivered_twice = set(counts.filter(pl.col("count") > 1)[raw_ids.name].to_list())
    rows = [
        _row("malformed", "landing", labelled["malformed"], bad),
        _row("out_of_order", "landing", labelled["out_of_order"], out_of_order),
        _row("duplicate", "landing", labelled["duplicate"], delivered_twice),
    ]
    return pl.DataFrame(rows, schema=SCORES_SCHEMA)


@dataclass(frozen=True)
class OfflineRun:
    """The whole stream handled in memory: what the producer sent, what landed, what the detectors said."""

    truth: pl.DataFrame
    records: pl.DataFrame
    landed: pl.DataFrame
    quarantine: pl.DataFrame
    detector: pl.DataFrame
    baseline: pl.DataFrame


def offline_run(weather: pl.DataFrame, *, seed: int, limit: int | None = None, shards: int = 2,
                config: DetectorConfig | None = None) -> OfflineRun:
    """Produce, land as one batch and score, without a transport or a lake: the evaluation's reference run."""
    replay = plan_replay(observations(weather, limit=limit), seed=seed)
    sent = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    deliveries = replay.deliveries
    records = (
        pl.DataFrame({"partition_key": deliveries["station"], "payload": encode(deliveries, produced_at=sent)},
                     schema={"partition_key": pl.String, "payload": pl.Binary})
        .with_columns(shard=pl.col("partition_key").map_elements(lambda k: shard_name(shard_index(k, shards)),
                                                                 return_dtype=pl.String))
        .with_columns(sequence=pl.int_range(pl.len()).over("shard").cast(pl.String), arrival=pl.lit(sent))
        .select(RECORD_SCHEMA.names())
        .cast(RECORD_SCHEMA)
        .with_row_index("ordinal")
    )
    std = standardize(records, state=LandingState(), batch=1, run_id="offline")
    quarantine = pl.concat([std.quarantine.select("rule", "key"),
                            std.late.select(pl.lit(RULE_LATE).alias("rule"), pl.col("event_id").alias("key"))])
    detector = OnlineDetector(config).score(std.events, flush=True)
    return OfflineRun(replay.truth, records, std.events, quarantine, detector, baseline(std.events))


def lake_scores(lake: Lake, truth: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(detection, landing) scores of what the lake holds: the anomalies table, standardized, quarantine, raw."""

    missing = [rel for rel in (STANDARDIZED, QUARANTINE, ANOMALIES_TABLE) if delta.open_table(lake, rel) is None]
    if missing:
        raise ValueError(f"nothing to evaluate yet: {', '.join(missing)} not in the lake (land the stream first)")
    anomalies = delta.scan(lake, ANOMALIES_TABLE).select("event_id", "flag", "kind", "baseline_flag").collect()
    detector = anomalies.select("event_id", "flag", "kind")
    base = anomalies.select("event_id", flag=pl.col("baseline_flag").fill_null(False)).with_columns(
        kind=pl.when(pl.col("flag")).then(pl.lit("spike")))
    landed = delta.scan(lake, STANDARDIZED).select("event_id", "out_of_order").collect()
    quarantine = delta.scan(lake, QUARANTINE).select("rule", "key").collect()
    raw = pl.scan_parquet(lake.uri(f"{RAW}/**/*.parquet"), storage_options=lake.storage_options or None,
                          hive_partitioning=False).select("payload").collect()
    raw_ids = payload_text(raw["payload"]).str.extract(r'"event_id"\s*:\s*"([^"]*)"').alias("event_id")
    return (score_detection(truth, detector, base),
            score_landing(truth, landed=landed, quarantine=quarantine, raw_ids=raw_ids))


def report(detection: pl.DataFrame, landing: pl.DataFrame | None = None) -> str:
    """The scores as a plain-text table, one line per fault and method."""
    lines = [f"{'fault':<13} {'method':<9} {'labelled':>8} {'found':>6} {'tp':>5} {'fp':>5} {'fn':>5} "
             f"{'precision':>9} {'recall':>6} {'F1':>5}"]
    frames = [detection] if landing is None else [detection, landing]
    for frame in frames:
        for r in frame.iter_rows(named=True):
            lines.append(f"{r['fault']:<13} {r['method']:<9} {r['labelled']:>8} {r['found']:>6} {r['tp']:>5} "
                         f"{r['fp']:>5} {r['fn']:>5} {r['precision']:>9.3f} {r['recall']:>6.3f} {r['f1']:>5.3f}")
    return "\n".join(lines)
