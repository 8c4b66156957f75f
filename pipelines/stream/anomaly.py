"""Online anomaly detection on telemetry, one event at a time, and the fixed-threshold baseline it must beat.

The detector keeps, per station and measurement, the last clean reading (the reference) and a rolling median
of the absolute changes between clean readings (the scale, a MAD, as a river `RollingQuantile`): O(1) memory
and a few microseconds per event, no refit. Three scores, each scaled so that 1.0 is the alarm:

- spike: the reading jumps away from the reference *and* back at the station's next event, by more than
  `spike_threshold` scales on both sides (changes are divided by sqrt(hours), as weather drifts while
  nothing is heard). A front moves a reading and keeps it there; a spike comes back. Judging that takes the
  next event, so an event's verdict is final one observation later (`update` returns the previous event);
- stuck: how many readings in a row repeated the previous one exactly, over `stuck_repeats` (all
  measurements frozen together is rare in this data: 45 single repeats in 26,115 hours, never two in a row);
- gap: hours since the station's previous event, over `gap_hours`.

The event's score is the largest; `flag` is score >= 1 and `kind` says which. A spike is not learnt from,
so the reference stays clean. Events must come in event-time order per station: the landing's watermark
guarantees that for what it lands.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import pickle
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

import polars as pl
from river import stats, utils

from pipelines.stream.events import MEASURES

DETECTOR_MEASURES: Final = ("temp", "dewp", "humid", "pressure", "wind_speed")
FLOORS: Final[dict[str, float]] = {"temp": 1.0, "dewp": 1.0, "humid": 2.0, "pressure": 0.2, "wind_speed": 2.0}
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
_SCORE_FIELDS: Final = SCORE_SCHEMA.names()


@dataclass(frozen=True)
class DetectorConfig:
    scale_window: int = 48
    warmup: int = 6
    spike_threshold: float = 3.0
    stuck_repeats: int = 2
    gap_hours: float = 3.0


@dataclass
class _Series:
    """One station's measurement: its last clean reading and the rolling scale of clean changes."""

    scale: stats.RollingQuantile
    reference: float | None = None
    reference_time: dt.datetime | None = None
    learnt: int = 0


@dataclass
class _Pending:
    """An event scored on its past (stuck, gap, the jump from the reference), awaiting the station's next event."""

    event_id: str
    event_time: dt.datetime
    reading: dict[str, float | None]
    jumps: dict[str, tuple[float, float]]  # measure -> (change from the reference per sqrt(hour), scale)
    repeat: bool
    stuck: float
    gap: float


@dataclass
class _Station:
    last_time: dt.datetime | None = None
    last_reading: tuple | None = None
    repeats: int = 0
    series: dict[str, _Series] = field(default_factory=dict)
    pending: _Pending | None = None


class OnlineDetector:
    """Scores events one at a time and learns from each; its state pickles (`dumps`/`loads`) between runs."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config or DetectorConfig()
        self.stations: dict[str, _Station] = {}
        self.events = 0

    def frontier(self) -> dict[str, dt.datetime]:
        """The event time of the last event seen, per station (its verdict may still be pending)."""
        return {name: s.last_time for name, s in self.stations.items() if s.last_time is not None}

    def _series(self, station: _Station, measure: str) -> _Series:
        series = station.series.get(measure)
        if series is None:
            scale = stats.RollingQuantile(q=0.5, window_size=self.config.scale_window)
            series = station.series[measure] = _Series(scale)
        return series

    def _finalize(self, station_id: str, station: _Station, pending: _Pending,
                  following: tuple[dt.datetime, dict[str, float | None]] | None) -> tuple:
        """The verdict on a pending event, given the station's next event (None: there is none yet, judge alone)."""
        cfg = self.config
        spike, measure = 0.0, None
        for m, (jump, scale) in pending.jumps.items():
            if following is None:
                continue
            after_time, after = following
            x, y = pending.reading.get(m), after.get(m)
            if x is None or y is None or math.isnan(y):
                continue
            back = (x - y) / math.sqrt(max(1.0, (after_time - pending.event_time).total_seconds() / 3600))
            if jump * back > 0:  # away from the reference and back again, on the same side
                z = min(abs(jump), abs(back)) / scale / cfg.spike_threshold
                if z > spike:
                    spike, measure = z, m
        for m, (jump, _scale) in pending.jumps.items():
            if following is not None and measure == m and spike >= 1.0:
                continue  # a spike is not learnt from: the reference stays clean
            series = self._series(station, m)
            x = pending.reading[m]
            if series.reference is not None:
                series.scale.update(abs(jump) if jump == jump else 0.0)
                series.learnt += 1
            series.reference, series.reference_time = x, pending.event_time
        score = max(spike, pending.stuck, pending.gap)
        flag = score >= 1.0
        kind = None
        if flag:
            kind = "spike" if score == spike else "stuck" if score == pending.stuck else "gap"
        return (pending.event_id, station_id, pending.event_time, score, flag, kind,
                measure if kind == "spike" else None, spike, pending.stuck, pending.gap)

    def update(self, station_id: str, event_id: str, event_time: dt.datetime,
               reading: dict[str, float | None]) -> tuple | None:
        """Take one event; return the final verdict on the station's previous event (a SCORE_SCHEMA row), if any."""
        cfg = self.config
        station = self.stations.setdefault(station_id, _Station())
        if station.last_time is not None and event_time <= station.last_time:
            raise ValueError(f"{station_id} event at {event_time} is not after {station.last_time}: "
                             "events must come in event-time order per station")
        verdict = None
        if station.pending is not None:
            verdict = self._finalize(station_id, station, station.pending, (event_time, reading))

        hours = None if station.last_time is None else (event_time - station.last_time).total_seconds() / 3600
        gap = 0.0 if hours is None else max(0.0, (hours - 1) / (cfg.gap_hours - 1))
        values = tuple(reading.get(m) for m in MEASURES)
        repeat = station.last_reading is not None and values == station.last_reading
        station.repeats = station.repeats + 1 if repeat else 0
        jumps: dict[str, tuple[float, float]] = {}
        if not repeat:
            for m in DETECTOR_MEASURES:
                x = reading.get(m)
                if x is None or math.isnan(x):
                    continue
                series = self._series(station, m)
                if series.reference is None:
                    jumps[m] = (0.0, math.inf)
                    continue
                since = max(1.0, (event_time - series.reference_time).total_seconds() / 3600)
                scale = 1.4826 * series.scale.get() + FLOORS[m] if series.learnt >= cfg.warmup else math.inf
                jumps[m] = ((x - series.reference) / math.sqrt(since), scale)
        station.pending = _Pending(event_id, event_time, dict(reading), jumps, repeat,
                                   station.repeats / cfg.stuck_repeats, gap)
        station.last_time, station.last_reading = event_time, values
        self.events += 1
        return verdict

    def flush(self) -> list[tuple]:
        """Judge the events still waiting for a next one (the end of a replay): on their past alone."""
        verdicts = []
        for station_id, station in self.stations.items():
            if station.pending is not None:
                verdicts.append(self._finalize(station_id, station, station.pending, None))
                station.pending = None
        return verdicts

    def score(self, events: pl.DataFrame, *, flush: bool = False) -> pl.DataFrame:
        """Score a frame of events (taken in event-time order); the loop is the online part, by design.

        Returns the verdicts that became final: every event but each station's last, unless `flush`.
        """
        ordered = events.sort("event_time", "station")
        verdicts = []
        for station, event_id, event_time, *vals in ordered.select("station", "event_id", "event_time",
                                                                    *MEASURES).iter_rows():
            verdict = self.update(station, event_id, event_time, dict(zip(MEASURES, vals, strict=True)))
            if verdict is not None:
                verdicts.append(verdict)
        if flush:
            verdicts += self.flush()
        return pl.DataFrame(verdicts, schema=SCORE_SCHEMA, orient="row").sort("event_time", "station")

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


@dataclass(frozen=True)
class SeriesConfig:
    """The univariate detector's one parameter set (chosen on NAB's artificial and realAWSCloudwatch files)."""

    window: int = 1000
    """Past values the median and the spread (IQR) are taken over."""
    recent: int = 5
    """Latest values whose mean is compared with the median too: a level shift, not only a spike."""
    history: int = 2000
    """Past surprises a new one is ranked among: a surprise is anomalous when it is rare for this series."""
    warmup: int = 30
    quiet: int = 100
    """After a score, lower ones within this many points are halved: one alarm per episode, not a burst."""
    days: int = 7
    """A value like one at the same time of day on any of the last `days` days is not a surprise (daily jobs)."""
    neighbours: int = 3
    """Values either side of that same time which count as alike."""
    tolerance_s: float = 3600.0
    """How far from exactly a day earlier the nearest past value may be."""
    spatial: float | None = 0.05
    """A value beyond the whole past's range by more than this share of it scores 1 (None: no such rule).
    Numenta's own NAB detector uses the same rule at 0.05; chosen over 0 and 0.2 on the tuning categories."""


_DAY_S: Final = 86400.0


class SeriesDetector:
    """An online detector for one numeric series: each value is scored against the past alone, then learnt.

    The surprise of a value is its distance from the rolling median in rolling-IQR units (or that of the mean of
    the latest values, scaled by sqrt(n), whichever is larger), unless it is close to a value seen at the same
    time of day on one of the last days (then that distance counts). Its score in [0, 1] is the share of past
    surprises below it, so every series is judged by its own normal; a value outside everything seen so far
    (by more than `spatial` of the range) scores 1; a score that does not beat the highest of the last `quiet`
    points is halved. Memory: `window` values and `days` of (time, value); a few microseconds
    per value (river's sorted windows).
    """

    def __init__(self, config: SeriesConfig | None = None) -> None:
        self.config = cfg = config or SeriesConfig()
        self._values = utils.SortedWindow(cfg.window)
        self._recent: deque[float] = deque(maxlen=cfg.recent)
        self._surprises = utils.SortedWindow(cfg.history)
        self._scores: deque[float] = deque(maxlen=cfg.quiet)
        self._times: list[float] = []
        self._past: list[float] = []
        self._seen = 0
        self._low, self._high = math.inf, -math.inf

    def _seasonal(self, x: float, t: float) -> float | None:
        """The smallest distance from x to the values around t minus 1..days days (None: none that old)."""
        cfg, times = self.config, self._times
        best = None
        for k in range(1, cfg.days + 1):
            then = t - k * _DAY_S
            j = bisect.bisect_left(times, then)
            if j >= len(times) or abs(times[j] - then) > cfg.tolerance_s:
                continue
            near = min(abs(x - v) for v in self._past[max(0, j - cfg.neighbours):j + cfg.neighbours + 1])
            best = near if best is None else min(best, near)
        return best

    def surprise(self, x: float, t: float | None = None) -> float | None:
        """How far x is from the past's median, in IQR units (None while warming up)."""
        past = self._values
        n = len(past)
        if n < self.config.warmup:
            return None
        median, spread = past[n // 2], past[(3 * n) // 4] - past[n // 4]
        # the floor keeps a flat or two-valued series finite: a thousandth of its level and range
        scale = spread / 1.349 + 1e-3 * (abs(median) + past[-1] - past[0]) + 1e-9
        level = sum(self._recent) / len(self._recent)
        z = max(abs(x - median), abs(level - median) * math.sqrt(len(self._recent)) / 2) / scale
        seasonal = None if t is None else self._seasonal(x, t)
        return z if seasonal is None else min(z, seasonal / scale)

    def outside(self, x: float) -> bool:
        """Whether x is beyond the range of every value seen so far by more than `spatial` of that range
        (never while warming up)."""
        tolerance = self.config.spatial
        if tolerance is None or self._seen < self.config.warmup:
            return False
        margin = tolerance * (self._high - self._low)
        return x > self._high + margin or x < self._low - margin

    def _remember(self, x: float, t: float) -> None:
        if self._times and t < self._times[-1]:
            return  # a clock that went back (NAB has a few): scored, but not a same-time-of-day reference
        self._times.append(t)
        self._past.append(x)
        stale = bisect.bisect_left(self._times, t - self.config.days * _DAY_S - 2 * self.config.tolerance_s)
        if stale > 1000:  # drop what no lookup can reach, in chunks
            del self._times[:stale], self._past[:stale]

    def score(self, x: float, t: float | None = None) -> float:
        """Score x (seen at time t, in seconds, when known) in [0, 1] before learning it."""
        self._recent.append(x)
        z = self.surprise(x, t)
        raw = 0.0
        if z is not None:
            ranked = self._surprises
            if len(ranked) >= self.config.warmup:
                at_least = len(ranked) - bisect.bisect_left(ranked, z)
                raw = 1.0 - (at_least + 1) / (len(ranked) + 2)
            ranked.append(z)
        if self.outside(x):
            raw = 1.0
        self._seen += 1
        self._low, self._high = min(self._low, x), max(self._high, x)
        self._values.append(x)
        if t is not None:
            self._remember(x, t)
        loudest = max(self._scores, default=0.0)
        self._scores.append(raw)
        return raw if raw > loudest else raw / 2

    def score_many(self, values: Iterable[float], times: Iterable[float] | None = None) -> list[float]:
        """Score a series in order, one value at a time (the online loop, by design); times in seconds."""
        if times is None:
            return [self.score(float(x)) for x in values]
        return [self.score(float(x), float(t)) for x, t in zip(values, times, strict=True)]


@dataclass(frozen=True)
class ZScoreConfig:
    window: int = 1000
    """Chosen among 30-3000 on NAB's tuning categories, as the detector's parameters were."""
    warmup: int = 10


class RollingZScore:
    """Baseline: |x - mean| / std over the last `window` values, mapped to [0, 1) as z / (1 + z).

    The mapping does not matter to NAB (its threshold is chosen over the corpus), only the order of scores."""

    def __init__(self, config: ZScoreConfig | None = None) -> None:
        self.config = config or ZScoreConfig()
        self._var = utils.Rolling(stats.Var, window_size=self.config.window)

    def score(self, x: float, t: float | None = None) -> float:
        """Score x before learning it (t is not used)."""
        z = 0.0
        if len(self._var.window) >= self.config.warmup:
            mean, std = self._var.obj.mean.get(), math.sqrt(max(self._var.get(), 0.0))
            z = abs(x - mean) / (std + 1e-9)  # a change after a flat stretch: very large, still ranked
        self._var.update(x)
        return z / (1 + z)

    def score_many(self, values: Iterable[float], times: Iterable[float] | None = None) -> list[float]:
        """Score a series in order (a rolling z-score has no use for the times)."""
        return [self.score(float(x)) for x in values]


class HalfSpaceTrees:
    """Baseline: river's HalfSpaceTrees on the value scaled online to [0, 1] (score, then learn)."""

    def __init__(self, seed: int = 42) -> None:
        from river import anomaly, preprocessing  # noqa: PLC0415 - start-up: river.anomaly imports sklearn, ~4 s

        self._model = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=seed)

    def score(self, x: float, t: float | None = None) -> float:
        """Score x before learning it (t is not used)."""
        features = {"x": x}
        value = self._model.score_one(features)
        self._model.learn_one(features)
        return min(1.0, max(0.0, value))

    def score_many(self, values: Iterable[float], times: Iterable[float] | None = None) -> list[float]:
        """Score a series in order (the trees see the value alone)."""
        return [self.score(float(x)) for x in values]


def series_scores(events: pl.DataFrame, make: Callable[[], SeriesDetector | RollingZScore | HalfSpaceTrees],
                  measures: Iterable[str] = DETECTOR_MEASURES) -> pl.DataFrame:
    """A univariate detector per station and measurement over telemetry, in event-time order: each event's
    highest score (event_id, score, measure). Missing readings are skipped, not scored."""
    ordered = events.sort("event_time", "station")
    best: dict[str, tuple[float, str | None]] = {}
    for frame in ordered.partition_by("station", maintain_order=True):
        for m in measures:
            detector = make()
            present = frame.filter(pl.col(m).is_not_null() & pl.col(m).is_not_nan())
            times = present["event_time"].dt.epoch("us").to_list()
            for event_id, value, t in zip(present["event_id"], present[m], times, strict=True):
                s = detector.score(value, t / 1e6)
                if s > best.get(event_id, (-1.0, None))[0]:
                    best[event_id] = (s, m)
    ids = ordered["event_id"].to_list()
    return pl.DataFrame({"event_id": ids, "score": [best.get(i, (0.0, None))[0] for i in ids],
                         "measure": [best.get(i, (0.0, None))[1] for i in ids]},
                        schema={"event_id": pl.String, "score": pl.Float64, "measure": pl.String})
