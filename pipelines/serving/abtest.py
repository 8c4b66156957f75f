"""Judge an A/B test from the invocation log once the flights' outcomes are in the warehouse.

Pure polars + numpy, no Dagster. Per variant (shadow answers reported as their own rows): labelled
requests, ROC-AUC with DeLong's standard error, calibration (expected calibration error over equal-width
bins, and the bins), latency percentiles. The challenger-minus-champion AUC difference gets a confidence
interval from DeLong's variances; the variants saw different flights, so the two AUCs are independent and
the variances add (a shadow saw the same flights as the variant it copies, which this ignores: it makes the
shadow's interval conservative). DeLong is closed-form: no bootstrap loop over thousands of resamples.

Recommendation: `need more traffic` while either side has fewer than `min_labelled` flights (or no late and
on-time flights both); `promote` when the whole interval is above 0; `keep` when the challenger cannot be
better by more than `margin` (the upper bound is under it) or it is clearly worse; otherwise `need more traffic`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np
import polars as pl

Recommendation = Literal["promote", "keep", "need more traffic"]
BINS = 10


@dataclass(frozen=True)
class Comparison:
    champion: str
    challenger: str
    auc_difference: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    recommendation: Recommendation
    reason: str


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their mean rank (what DeLong's placements need)."""
    from scipy.stats import rankdata  # noqa: PLC0415 - start-up: scipy.stats ~1.6 s

    return rankdata(x, method="average")


def auc_delong(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(ROC-AUC, DeLong variance) of scores `p` for labels `y` (1 = late); NaN when a class is missing."""
    y = np.asarray(y, dtype=bool)
    p = np.asarray(p, dtype=np.float64)
    pos, neg = p[y], p[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        return float("nan"), float("nan")
    all_ranks = _midranks(np.concatenate([pos, neg]))
    pos_ranks, neg_ranks = _midranks(pos), _midranks(neg)
    auc = (all_ranks[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (all_ranks[:m] - pos_ranks) / n          # per positive: share of negatives it beats
    v01 = 1.0 - (all_ranks[m:] - neg_ranks) / m    # per negative: share of positives that beat it
    var = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    return float(auc), float(var)


def calibration(y: np.ndarray, p: np.ndarray, bins: int = BINS) -> tuple[float, list[dict]]:
    """(ECE, bins): per equal-width bin of predicted P(late), the mean prediction and the observed late share."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    if len(p) == 0:
        return float("nan"), []
    which = np.minimum((p * bins).astype(int), bins - 1)
    out, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        count = int(mask.sum())
        if not count:
            continue
        predicted, observed = float(p[mask].mean()), float(y[mask].mean())
        ece += count / len(p) * abs(predicted - observed)
        out.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "n": count,
                    "mean_predicted": round(predicted, 4), "observed_late": round(observed, 4)})
    return float(ece), out


def labelled(invocations: pl.DataFrame, outcomes: pl.DataFrame) -> pl.DataFrame:
    """Invocations with a flight key joined to the flight's outcome (`is_late` not null), one row per answer."""
    truth = (outcomes.select("flight_id", "is_late").filter(pl.col("is_late").is_not_null())
             .unique("flight_id", keep="last"))
    return (invocations.filter(pl.col("flight_id").is_not_null())
            .with_columns(arm=pl.when(pl.col("shadow")).then(pl.lit("shadow:") + pl.col("variant"))
                          .otherwise(pl.col("variant")))
            .join(truth, on="flight_id", how="inner"))


def per_variant(invocations: pl.DataFrame, joined: pl.DataFrame) -> pl.DataFrame:
    """One row per variant (and shadow): traffic, labelled flights, AUC with its standard error, ECE, latencies."""
    traffic = (invocations.with_columns(arm=pl.when(pl.col("shadow")).then(pl.lit("shadow:") + pl.col("variant"))
                                        .otherwise(pl.col("variant")))
               .group_by("arm").agg(
                   requests=pl.col("request_id").n_unique(),
                   model_versions=pl.col("model_version").unique().sort().str.join(","),
                   model_latency_p50_us=pl.col("model_latency_us").quantile(0.5),
                   model_latency_p99_us=pl.col("model_latency_us").quantile(0.99),
                   overhead_latency_p50_us=pl.col("overhead_latency_us").quantile(0.5),
                   overhead_latency_p95_us=pl.col("overhead_latency_us").quantile(0.95),
                   overhead_latency_p99_us=pl.col("overhead_latency_us").quantile(0.99),
               ))
    rows = []
    for arm in traffic["arm"].to_list():
        part = joined.filter(pl.col("arm") == arm)
        y = part["is_late"].cast(pl.Boolean).to_numpy()
        p = part["prediction"].to_numpy()
        auc, var = auc_delong(y, p) if len(p) else (float("nan"), float("nan"))
        ece, _ = calibration(y, p)
        rows.append({"arm": arm, "labelled": len(p), "late": int(y.sum()) if len(p) else 0,
                     "roc_auc": None if math.isnan(auc) else auc,
                     "roc_auc_se": None if math.isnan(var) else math.sqrt(max(var, 0.0)),
                     "ece": None if math.isnan(ece) else ece,
                     "mean_prediction": float(p.mean()) if len(p) else None,
                     "observed_late": float(y.mean()) if len(p) else None})
    scores = pl.DataFrame(rows, schema={"arm": pl.String, "labelled": pl.Int64, "late": pl.Int64,
                                        "roc_auc": pl.Float64, "roc_auc_se": pl.Float64, "ece": pl.Float64,
                                        "mean_prediction": pl.Float64, "observed_late": pl.Float64})
    return traffic.join(scores, on="arm", how="left").rename({"arm": "variant"}).sort("variant")


def compare(report: pl.DataFrame, *, champion: str = "champion", challenger: str = "challenger",
            confidence: float = 0.95, min_labelled: int = 500, margin: float = 0.005) -> Comparison:
    """The challenger's AUC minus the champion's, its interval, and what to do about it."""
    rows = {r["variant"]: r for r in report.iter_rows(named=True)}
    if challenger not in rows and f"shadow:{challenger}" in rows:
        challenger = f"shadow:{challenger}"
    a, b = rows.get(champion), rows.get(challenger)
    missing = [n for n, r in ((champion, a), (challenger, b)) if r is None]
    if missing:
        return Comparison(champion, challenger, None, None, None, confidence, "need more traffic",
                          f"no answered traffic yet for {', '.join(missing)}")
    short = [f"{n} has {r['labelled']} labelled flight(s)" for n, r in ((champion, a), (challenger, b))
             if r["labelled"] < min_labelled or r["roc_auc"] is None]
    if short:
        return Comparison(champion, challenger, None, None, None, confidence, "need more traffic",
                          f"{'; '.join(short)} (need {min_labelled} with both outcomes)")
    diff = b["roc_auc"] - a["roc_auc"]
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    se = math.sqrt(a["roc_auc_se"] ** 2 + b["roc_auc_se"] ** 2)
    low, high = diff - z * se, diff + z * se
    interval = f"{challenger} - {champion} ROC-AUC {diff:+.4f} ({confidence:.0%} CI {low:+.4f}..{high:+.4f})"
    if low > 0:
        return Comparison(champion, challenger, diff, low, high, confidence, "promote",
                          f"{interval}: the challenger is better")
    if high < margin:
        return Comparison(champion, challenger, diff, low, high, confidence, "keep",
                          f"{interval}: the challenger is not better by the margin {margin}")
    return Comparison(champion, challenger, diff, low, high, confidence, "need more traffic",
                      f"{interval}: too wide to decide")
