"""The Numenta Anomaly Benchmark (NAB v1.1): read the corpus and score detectors exactly as NAB does. No Dagster.

NAB's method (numenta/NAB `nab/sweeper.py`, `optimizer.py`, `scorer.py`, `runner.py`), reproduced point for point:

- each row outside the first 15 % of its file (at most 750 rows, the probationary period) gets a weight: inside a
  labelled window, the scaled sigmoid of its relative position (1 at the window's left edge, ~0 at its right
  edge) times `tpWeight`; outside, -`fpWeight`, softened by the sigmoid for rows shortly after a window;
- at a threshold, a window counts the best weight of its rows whose score reaches the threshold, or -`fnWeight`
  when none does, and every detection outside a window adds its (negative) weight;
- the threshold is the one that maximises the total over the whole corpus, per profile (the cost matrices in
  `config/profiles.json`), and is then applied to every file;
- the total is normalised so that the null detector (a constant score: it detects nothing at its best
  threshold) scores 0 and the perfect detector (every window caught at its left edge) scores 100.

The sweep over thresholds is vectorised (a cumulative sum over the rows in descending score order, with a
running maximum per window) rather than NAB's Python loop; the result is the same.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

import numpy as np
import polars as pl

from pipelines.stream.anomaly import HalfSpaceTrees, OnlineDetector, RollingZScore, SeriesDetector

PROFILES: Final = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
PROBATION_PERCENT: Final = 0.15
TUNING_CATEGORIES: Final = ("artificialNoAnomaly", "artificialWithAnomaly", "realAWSCloudwatch")
"""The categories parameters may be chosen on; every other category is held out."""
PUBLISHED: Final = ("ARTime", "numenta", "randomCutForest", "windowedGaussian")
"""The scoreboard entries shown beside ours."""


class Scorer(Protocol):
    def score_many(self, values: Iterable[float], times: Iterable[float] | None = None) -> list[float]: ...


@dataclass(frozen=True)
class Cost:
    """One application profile's cost matrix."""

    tp: float
    fp: float
    fn: float


@dataclass(frozen=True)
class Series:
    """One corpus file: its name (`category/file.csv`), rows and labelled windows (row indices, inclusive)."""

    name: str
    timestamps: list[dt.datetime]
    values: np.ndarray
    windows: list[tuple[int, int]]

    @property
    def category(self) -> str:
        return self.name.split("/", 1)[0]

    def labels(self) -> np.ndarray:
        """1 inside a window, 0 elsewhere (the `label` column of NAB's result files)."""
        out = np.zeros(len(self.timestamps), dtype=np.int64)
        for left, right in self.windows:
            out[left:right + 1] = 1
        return out


@dataclass(frozen=True)
class Score:
    """A detector's score on one profile: raw (NAB's `Totals` row), normalised, and the threshold it used."""

    profile: str
    threshold: float
    raw: float
    normalized: float
    tp: int
    fp: int


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.strip())


def load_profiles(root: str | Path) -> dict[str, Cost]:
    """The cost matrices of `config/profiles.json`."""
    data = json.loads(Path(root, "config", "profiles.json").read_text())
    return {name: Cost(tp=p["CostMatrix"]["tpWeight"], fp=p["CostMatrix"]["fpWeight"],
                       fn=p["CostMatrix"]["fnWeight"]) for name, p in data.items()}


def _window_rows(name: str, timestamps: list[dt.datetime], windows: Iterable[Iterable[str]]) -> list[tuple[int, int]]:
    index = {t: i for i, t in enumerate(timestamps)}
    rows = []
    for left, right in windows:
        try:
            rows.append((index[_parse_time(left)], index[_parse_time(right)]))
        except KeyError as exc:  # NAB's labeler refuses this too
            raise ValueError(f"{name}: window edge {exc.args[0]} is not a timestamp of the file") from None
    return sorted(rows)


def load_corpus(root: str | Path, *, categories: Iterable[str] | None = None) -> list[Series]:
    """Every file named in `labels/combined_windows.json`, with its windows, sorted by name."""
    root = Path(root)
    labels_path = root / "labels" / "combined_windows.json"
    if not labels_path.is_file():
        raise FileNotFoundError(f"no NAB corpus at {root}: {labels_path} is missing "
                                "(get data/, labels/ and config/ from github.com/numenta/NAB)")
    windows = json.loads(labels_path.read_text())
    wanted = None if categories is None else set(categories)
    corpus = []
    for name in sorted(windows):
        if wanted is not None and name.split("/", 1)[0] not in wanted:
            continue
        frame = pl.read_csv(root / "data" / name, try_parse_dates=False)
        timestamps = [_parse_time(t) for t in frame["timestamp"].to_list()]
        corpus.append(Series(name, timestamps, frame["value"].cast(pl.Float64).to_numpy(),
                             _window_rows(name, timestamps, windows[name])))
    return corpus


def scaled_sigmoid(position: np.ndarray) -> np.ndarray:
    """NAB's weight of a detection at a relative position: -1 is a window's left edge (0.987), 0 its right
    edge (0), > 0 after it (down to -0.987 at 1); -1 beyond 3."""
    position = np.asarray(position, dtype=np.float64)
    with np.errstate(over="ignore"):
        value = 2.0 / (1.0 + np.exp(5.0 * position)) - 1.0
    return np.where(position > 3.0, -1.0, value)


MAX_TP: Final = float(scaled_sigmoid(np.array(-1.0)))


def probation_length(rows: int, percent: float = PROBATION_PERCENT) -> float:
    """Rows at the start of a file that are not scored: 15 % of it, at most 750 (NAB's `getProbationPeriod`)."""
    return min(math.floor(percent * rows), percent * 5000)


def row_weights(rows: int, windows: list[tuple[int, int]], cost: Cost) -> tuple[np.ndarray, np.ndarray]:
    """(weight, window) per row: what a detection there is worth, and the index of its window (-1: none)."""
    i = np.arange(rows, dtype=np.float64)
    weight = np.full(rows, -1.0 * cost.fp)
    window = np.full(rows, -1, dtype=np.int64)
    for k, (left, right) in enumerate(windows):
        width = float(right - left + 1)
        inside = slice(left, right + 1)
        weight[inside] = scaled_sigmoid(-(right - i[inside] + 1) / width) * cost.tp / MAX_TP
        window[inside] = k
        end = windows[k + 1][0] if k + 1 < len(windows) else rows
        after = slice(right + 1, end)
        if width > 1:
            weight[after] = scaled_sigmoid(np.abs(right - i[after]) / (width - 1)) * cost.fp
    return weight, window


@dataclass(frozen=True)
class _Rows:
    """The scorable rows (after probation) of a set of files, and their windows, for one profile."""

    scores: np.ndarray
    weights: np.ndarray
    windows: np.ndarray  # a corpus-wide window id, -1 outside
    scorable_windows: int


def _rows(corpus: list[Series], results: Mapping[str, np.ndarray], cost: Cost) -> _Rows:
    scores, weights, windows = [], [], []
    offset = 0
    for series in corpus:
        anomaly = np.asarray(results[series.name], dtype=np.float64)
        if anomaly.shape != (len(series.timestamps),):
            raise ValueError(f"{series.name}: {anomaly.shape[0]} anomaly scores for {len(series.timestamps)} rows")
        weight, window = row_weights(len(anomaly), series.windows, cost)
        start = int(math.ceil(probation_length(len(anomaly))))
        scores.append(anomaly[start:])
        weights.append(weight[start:])
        windows.append(np.where(window[start:] >= 0, window[start:] + offset, -1))
        offset += len(series.windows)
    ids = np.concatenate(windows) if windows else np.array([], dtype=np.int64)
    return _Rows(np.concatenate(scores), np.concatenate(weights), ids, len(np.unique(ids[ids >= 0])))


def sweep(rows: _Rows, cost: Cost) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(thresholds, totals, tp, fp) for every distinct score, highest first, after NAB's `calcScoreByThreshold`.

    The first entry is NAB's 1.1 (nothing detected: every scorable window missed)."""
    order = np.argsort(-rows.scores, kind="stable")
    score, weight, window = rows.scores[order], rows.weights[order], rows.windows[order]
    in_window = window >= 0
    best = (pl.DataFrame({"w": window, "s": np.where(in_window, weight, -np.inf)})
            .select(pl.col("s").cum_max().over("w"))["s"].to_numpy())
    best = np.maximum(best, -cost.fn)
    previous = (pl.DataFrame({"w": window, "b": best})
                .select(pl.col("b").shift(1).over("w"))["b"].fill_null(-cost.fn).to_numpy())
    delta = np.where(in_window, best - previous, weight)
    base = -cost.fn * rows.scorable_windows
    totals = base + np.cumsum(delta)
    ends = np.flatnonzero(np.append(score[1:] != score[:-1], True)) if score.size else np.array([], dtype=np.int64)
    tp, fp = np.cumsum(in_window), np.cumsum(~in_window)
    return (np.concatenate([[1.1], score[ends]]), np.concatenate([[base], totals[ends]]),
            np.concatenate([[0], tp[ends]]), np.concatenate([[0], fp[ends]]))


def raw_score(corpus: list[Series], results: Mapping[str, np.ndarray], cost: Cost,
              threshold: float | None = None) -> tuple[float, float, int, int]:
    """(threshold, total, tp, fp): at `threshold` (scores >= it detect), or at the best one over `corpus`."""
    thresholds, totals, tp, fp = sweep(_rows(corpus, results, cost), cost)
    if threshold is None:
        k = int(np.argmax(totals))  # the first maximum: the highest threshold among equals, as NAB's stable sort
    else:
        k = int(np.flatnonzero(thresholds >= threshold)[-1])
    return float(thresholds[k]), float(totals[k]), int(tp[k]), int(fp[k])


def null_score(corpus: list[Series], cost: Cost) -> float:
    """The null detector's total (a constant 0.5 everywhere, at its best threshold)."""
    constant = {s.name: np.full(len(s.timestamps), 0.5) for s in corpus}
    return raw_score(corpus, constant, cost)[1]


def score(corpus: list[Series], results: Mapping[str, np.ndarray], profiles: Mapping[str, Cost], *,
          thresholds: Mapping[str, float] | None = None) -> dict[str, Score]:
    """Per profile, the NAB score of `results` (file name -> anomaly scores) over `corpus`.

    The threshold is optimised over `corpus` unless given per profile (e.g. chosen on other files)."""
    out = {}
    windows = sum(len(s.windows) for s in corpus)
    for name, cost in profiles.items():
        given = None if thresholds is None else thresholds[name]
        threshold, total, tp, fp = raw_score(corpus, results, cost, given)
        null, perfect = null_score(corpus, cost), windows * cost.tp
        out[name] = Score(name, threshold, total, 100 * (total - null) / (perfect - null), tp, fp)
    return out


def read_results(folder: str | Path, detector: str, corpus: list[Series]) -> dict[str, np.ndarray]:
    """The `anomaly_score` column of NAB result files `<folder>/<category>/<detector>_<file>.csv`."""
    results = {}
    for series in corpus:
        category, file = series.name.split("/", 1)
        path = Path(folder, category, f"{detector}_{file}")
        if not path.is_file():
            raise FileNotFoundError(f"no result file {path} for {series.name}")
        results[series.name] = pl.read_csv(path, columns=["anomaly_score"])["anomaly_score"].cast(pl.Float64).to_numpy()
    return results


def write_results(folder: str | Path, detector: str, series: Series, anomaly_scores: np.ndarray) -> Path:
    """Write one file in NAB's result format: timestamp,value,anomaly_score,label."""
    category, file = series.name.split("/", 1)
    path = Path(folder, detector, category, f"{detector}_{file}")
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({
        "timestamp": [t.strftime("%Y-%m-%d %H:%M:%S") for t in series.timestamps],
        "value": series.values,
        "anomaly_score": np.asarray(anomaly_scores, dtype=np.float64),
        "label": series.labels(),
    }).write_csv(path)
    return path


def scoreboard(root: str | Path) -> dict[str, dict[str, float]]:
    """The published normalised scores, detector -> profile -> score (`results/final_results.json`)."""
    path = Path(root, "results", "final_results.json")
    if not path.is_file():
        raise FileNotFoundError(f"no published scoreboard at {path}")
    return json.loads(path.read_text())


class TelemetryDetector:
    """The telemetry stream's OnlineDetector, with its defaults, on one NAB series: the value is its `temp`.

    Its verdict on a value is final at the next one (a spike must come back), so row i carries the verdict on
    row i-1, known when row i arrives; the score (spike, stuck or gap, 1 = its alarm) is mapped to [0, 1) by
    s / (1 + s). A clock that goes back or repeats (NAB has a few) is moved a microsecond past the last time."""

    def __init__(self) -> None:
        self._detector = OnlineDetector()
        self._last: dt.datetime | None = None

    def score_many(self, values: Iterable[float], times: Iterable[float] | None = None) -> list[float]:
        if times is None:
            raise ValueError("the telemetry detector needs the times of the values")
        out = []
        for i, (x, t) in enumerate(zip(values, times, strict=True)):
            when = dt.datetime.fromtimestamp(t, dt.UTC)
            if self._last is not None and when <= self._last:
                when = self._last + dt.timedelta(microseconds=1)
            self._last = when
            verdict = self._detector.update("nab", str(i), when, {"temp": float(x)})
            out.append(0.0 if verdict is None else verdict[3] / (1 + verdict[3]))
        return out


DETECTORS: Final[dict[str, Callable[[], Scorer]]] = {
    "tributary": SeriesDetector,
    "telemetryOnline": TelemetryDetector,
    "rollingZScore": RollingZScore,
    "halfSpaceTrees": HalfSpaceTrees,
}
"""The detectors this project runs on NAB: its univariate detector, the telemetry stream's detector as it is,
and two baselines."""


def run_detector(name: str, corpus: list[Series], out: str | Path, *,
                 progress: Callable[[str], None] | None = None) -> dict[str, np.ndarray]:
    """Run a detector over every file, one value at a time and a fresh detector per file with the same
    parameters; write NAB's result files under `out/name/`; return the scores."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}: choose from {', '.join(DETECTORS)}")
    results = {}
    for i, series in enumerate(corpus, 1):
        started = time.perf_counter()
        times = [t.replace(tzinfo=dt.UTC).timestamp() for t in series.timestamps]
        scores = np.asarray(DETECTORS[name]().score_many(series.values, times), dtype=np.float64)
        if scores.size and not (0.0 <= scores.min() and scores.max() <= 1.0):
            raise ValueError(f"{name} scored {series.name} outside [0, 1]")
        write_results(out, name, series, scores)
        results[series.name] = scores
        if progress is not None:
            progress(f"  {name} [{i}/{len(corpus)}] {series.name}: {len(scores):,} values in "
                     f"{time.perf_counter() - started:.1f}s")
    return results


@dataclass(frozen=True)
class Row:
    """One detector's line of the table: NAB's three scores, and the standard score on each side of the split."""

    detector: str
    scores: dict[str, float]
    tuning: float | None = None
    held_out: float | None = None
    source: str = "run"


def evaluate(name: str, corpus: list[Series], results: Mapping[str, np.ndarray],
             profiles: Mapping[str, Cost], *, source: str = "run") -> Row:
    """NAB's scores over the corpus; the standard score on the tuning categories (threshold chosen there) and on
    the held-out ones at that same threshold, so nothing about the held-out files is chosen on them."""
    overall = score(corpus, results, profiles)
    tuning = [s for s in corpus if s.category in TUNING_CATEGORIES]
    held_out = [s for s in corpus if s.category not in TUNING_CATEGORIES]
    standard = {"standard": profiles["standard"]}
    tuned = score(tuning, results, standard)["standard"] if tuning else None
    kept = None
    if held_out and tuned is not None:
        kept = score(held_out, results, standard, thresholds={"standard": tuned.threshold})["standard"].normalized
    return Row(name, {p: s.normalized for p, s in overall.items()},
               None if tuned is None else tuned.normalized, kept, source)


def published_rows(root: str | Path, names: Iterable[str] = PUBLISHED) -> list[Row]:
    """The scoreboard's entries for `names`, as published (no raw outputs to split them)."""
    board = scoreboard(root)
    return [Row(name, dict(board[name]), source="published") for name in names if name in board]


def report(rows: Iterable[Row]) -> str:
    """The rows as a plain-text table, best standard score first."""
    def cell(value: float | None) -> str:
        return f"{value:9.2f}" if value is not None else f"{'-':>9}"

    lines = [f"{'detector':<18} {'source':<10} {'standard':>9} {'low FP':>9} {'low FN':>9} "
             f"{'tuning':>9} {'held-out':>9}"]
    for row in sorted(rows, key=lambda r: -r.scores["standard"]):
        lines.append(f"{row.detector:<18} {row.source:<10} " + " ".join(cell(row.scores.get(p)) for p in PROFILES)
                     + f" {cell(row.tuning)} {cell(row.held_out)}")
    return "\n".join(lines)


def benchmark(root: str | Path, out: str | Path, detectors: Iterable[str] = tuple(DETECTORS), *,
              echo: Callable[[str], None] = print) -> list[Row]:
    """Run `detectors` over the corpus at `root`, write their results under `out`, and score them with the
    rescored windowedGaussian and the published entries beside them (when the corpus carries them)."""
    detectors = tuple(detectors)
    for name in detectors:
        if name not in DETECTORS:
            raise ValueError(f"unknown detector {name!r}: choose from {', '.join(DETECTORS)}")
    corpus = load_corpus(root)
    profiles = load_profiles(root)
    echo(f"NAB corpus {root}: {len(corpus)} files, {sum(len(s.timestamps) for s in corpus):,} values, "
         f"{sum(len(s.windows) for s in corpus)} windows; tuning categories: {', '.join(TUNING_CATEGORIES)}")
    rows = []
    for name in detectors:
        echo(f"{name}: one value at a time, results to {Path(out, name)}")
        rows.append(evaluate(name, corpus, run_detector(name, corpus, out, progress=echo), profiles))
    rescored = Path(root, "results", "windowedGaussian")
    if rescored.is_dir():
        rows.append(evaluate("windowedGaussian", corpus, read_results(rescored, "windowedGaussian", corpus),
                             profiles, source="rescored"))
    if Path(root, "results", "final_results.json").is_file():
        rows += published_rows(root)
    else:
        echo(f"no published scoreboard in {Path(root, 'results')}: this run's detectors only")
    return rows
