"""Online anomaly detection on telemetry, one event at a time, and the fixed-threshold baseline it must beat.

The detector keeps, per station and measurement, a rolling median of the last few readings (the level) and a
rolling median of the absolute prediction errors (the scale, a MAD), both river `RollingQuantile`s: O(1)
memory and a few microseconds per event, no refit. Three scores, each scaled so that 1.0 is the alarm:

- spike: |reading - level| / (1.4826 * scale + floor), widened by sqrt(hours since the last informative
  reading) because weather drifts while nothing is heard, over `spike_threshold`;
- stuck: how many readings in a row repeated the previous one exactly, over `stuck_repeats` (every
  measurement frozen is rare in this data: 45 single repeats in 26,115 hours, never two in a row);
- gap: hours since the station's previous event, over `gap_hours`.

The event's score is the largest; `flag` is score >= 1 and `kind` says which. Events must come in event-time
order per station: the landing's watermark guarantees that for what it lands.
"""

from __future__ import annotations

import datetime as dt
import math
import pickle
from dataclasses import dataclass, field
from typing import Final

import polars as pl
from river import stats

from pipelines.stream.events import MEASURES

DETECTOR_MEASURES: Final = ("temp", "dewp", "humid", "pressure", "wind_speed")
FLOORS: Final[dict[str, float]] = {"temp": 1.0, "dewp": 1.0, "humid": 2.0, "pressure": 0.3, "wind_speed": 2.0}
"""The smallest scale per measurement, about its reporting resolution: a flat calm night has a MAD of 0."""

BASELINE_BOUNDS: Final[dict[str, tuple[float, float]]] = {
    "temp": (13.0, 96.0),
    "dewp": (-7.0, 76.0),
    "humid": (16.0, 100.0),
    "pressure": (995.0, 1041.0),
    "wind_speed": (0.0, 34.0),
}
"""The baseline's fixed alarm thresholds: the 0.1 % and 99.9 % quantiles of each measurement over 2013."""

SCORE_SCHEMA: Final = pl.Schema(
    {
        "event_id": pl.String(),
        "station": pl.String(),
        "event_time": pl.Datetime("us", "UTC"),
        "score": pl.Float64(),
        "flag": pl.Boolean(),
        "kind": pl.String(),
        "measure": pl.String(),
        "spike_score": pl.Float64(),
        "stuck_score": pl.Float64(),
        "gap_score": pl.Float64(),
    }
)


@dataclass(frozen=True)
class DetectorConfig:
    level_window: int = 5
    scale_window: int = 72
    warmup: int = 6
    spike_threshold: float = 6.0
    stuck_repeats: int = 2
    gap_hours: float = 3.0


@dataclass
class _Series:
    """One station's measurement: its rolling level and rolling scale."""

    level: stats.RollingQuantile
    scale: stats.RollingQuantile
    seen: int = 0


@dataclass
class _Station:
    last_time: dt.datetime | None = None
    informative_time: dt.datetime | None = None  # last reading that was not a repeat
    last_reading: tuple | None = None
    repeats: int = 0
    series: dict[str, _Series] = field(default_factory=dict)


class OnlineDetector:
    """Scores events one at a time and learns from each; its state pickles (`dumps`/`loads`) between runs."""

    def __init__(self, config: DetectorConfig = DetectorConfig()) -> None:
        self.config = config
        self.stations: dict[str, _Station] = {}
        self.events = 0

    def _series(self, station: _Station, measure: str) -> _Series:
        series = station.series.get(measure)
        if series is None:
            series = _Series(stats.RollingQuantile(q=0.5, window_size=self.config.level_window),
                             stats.RollingQuantile(q=0.5, window_size=self.config.scale_window))
            station.series[measure] = series
        return series

    def frontier(self) -> dict[str, dt.datetime]:
        """The event time of the last event scored, per station."""
        return {name: s.last_time for name, s in self.stations.items() if s.last_time is not None}

    def update(self, station_id: str, event_time: dt.datetime, reading: dict[str, float | None]) -> tuple:
        """Score one event, then learn from it: (score, flag, kind, measure, spike, stuck, gap)."""
        cfg = self.config
        station = self.stations.setdefault(station_id, _Station())
        if station.last_time is not None and event_time <= station.last_time:
            raise ValueError(f"{station_id} event at {event_time} is not after {station.last_time}: "
                             "events must come in event-time order per station")
        hours = math.inf if station.last_time is None else (event_time - station.last_time).total_seconds() / 3600
        gap = 0.0 if math.isinf(hours) else max(0.0, (hours - 1) / (cfg.gap_hours - 1))

        values = tuple(reading.get(m) for m in MEASURES)
        repeat = station.last_reading is not None and values == station.last_reading
        station.repeats = station.repeats + 1 if repeat else 0
        stuck = station.repeats / cfg.stuck_repeats

        spike, measure = 0.0, None
        since = 1.0 if station.informative_time is None else max(
            1.0, (event_time - station.informative_time).total_seconds() / 3600)
        if not repeat:
            widen = math.sqrt(since)
            for m in DETECTOR_MEASURES:
                x = reading.get(m)
                if x is None or math.isnan(x):
                    continue
                series = self._series(station, m)
                if series.seen >= cfg.warmup:
                    error = x - series.level.get()
                    z = abs(error) / ((1.4826 * series.scale.get() + FLOORS[m]) * widen) / cfg.spike_threshold
                    if z > spike:
                        spike, measure = z, m
                if series.seen >= 1:
                    series.scale.update(abs(x - series.level.get()))
                series.level.update(x)
                series.seen += 1
            station.informative_time = event_time
        station.last_time = event_time
        station.last_reading = values
        self.events += 1

        score = max(spike, stuck, gap)
        flag = score >= 1.0
        kind = None
        if flag:
            kind = "spike" if score == spike else "stuck" if score == stuck else "gap"
        return score, flag, kind, measure if kind == "spike" else None, spike, stuck, gap

    def score(self, events: pl.DataFrame) -> pl.DataFrame:
        """Score a frame of events (sorted here by event time); the loop is the online part, by design."""
        ordered = events.sort("event_time", "station")
        rows = []
        names = ("station", "event_time", *MEASURES)
        for row in ordered.select(*names).iter_rows():
            station, event_time, *vals = row
            rows.append(self.update(station, event_time, dict(zip(MEASURES, vals))))
        scored = pl.DataFrame(rows, schema=["score", "flag", "kind", "measure", "spike_score", "stuck_score",
                                            "gap_score"], orient="row",
                              schema_overrides={"kind": pl.String, "measure": pl.String})
        return pl.concat([ordered.select("event_id", "station", "event_time"), scored], how="horizontal").cast(
            SCORE_SCHEMA)

    def dumps(self) -> bytes:
        return pickle.dumps(self)

    @staticmethod
    def loads(data: bytes) -> OnlineDetector:
        detector = pickle.loads(data)
        if not isinstance(detector, OnlineDetector):
            raise ValueError("the saved detector state is not an OnlineDetector")
        return detector


def baseline(events: pl.DataFrame, bounds: dict[str, tuple[float, float]] = BASELINE_BOUNDS) -> pl.DataFrame:
    """The fixed-threshold baseline: flag an event when any measurement leaves its bounds. Vectorized."""
    outside = [~pl.col(m).is_between(lo, hi).fill_null(True) for m, (lo, hi) in bounds.items()]
    return events.select(
        "event_id", "station", "event_time",
        flag=pl.any_horizontal(outside),
    ).with_columns(kind=pl.when(pl.col("flag")).then(pl.lit("spike")))
