"""Feature drift between the training reference and recent flights: PSI per feature, KS for continuous ones.

No Dagster. PSI (population stability index) compares the share of flights in each bin: ten quantile bins
of the reference for a number, one bin per category (and one for missing values) otherwise. Read it as
the usual rule of thumb: below 0.1 stable, 0.1 to 0.25 moving, above 0.25 shifted. KS adds the largest
gap between the two cumulative distributions of a continuous feature and its p-value.

Every feature is reported; only the ones that describe the flights themselves (schedule, route, aircraft,
weather) can trigger a retrain. The historical rates are functions of past delays: they move whenever
delays do (the weekly retrain is there for that) and, being one value per key and day, four weeks give
them so few distinct values that their PSI is noise.

The reference is a seeded sample of the training window's features, written by the model run to
`ml/drift/` in the lake: a Parquet file named after the run, then the JSON pointer that names it, so a
reader never sees a pointer to a half-written sample.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from pipelines.core.lake import Lake
from pipelines.ml.features import CATEGORICAL_FEATURES, CONTINUOUS_FEATURES, FEATURES, HISTORY_FEATURES

PSI_THRESHOLD: Final = 0.25
"""Above this PSI a feature counts as shifted."""
WINDOW_DAYS: Final = 28
"""The recent window compared with the reference: the last four weeks of flights."""
REFERENCE_ROWS: Final = 50_000
REFERENCE_POINTER: Final = "ml/drift/reference.json"
BINS: Final = 10
TRIGGER_FEATURES: Final = tuple(f for f in FEATURES if f not in HISTORY_FEATURES)
_EPS: Final = 1e-4

REPORT_SCHEMA: Final = pl.Schema({
    "reference_id": pl.String(), "window_start": pl.Date(), "window_end": pl.Date(), "feature": pl.String(),
    "kind": pl.String(), "psi": pl.Float64(), "ks_statistic": pl.Float64(), "ks_pvalue": pl.Float64(),
    "reference_rows": pl.Int64(), "current_rows": pl.Int64(), "drifted": pl.Boolean(), "triggers": pl.Boolean(),
    "threshold": pl.Float64(),
})
"""`drifted`: PSI above the threshold; `triggers`: drifted and one of `TRIGGER_FEATURES`."""


@dataclass(frozen=True)
class Reference:
    """The training reference: its sample and where it came from."""

    id: str
    sample: pl.DataFrame
    meta: dict


@dataclass(frozen=True)
class Assessment:
    table: pl.DataFrame
    threshold: float

    @property
    def drifted(self) -> list[str]:
        """The features that call for a retrain, the most shifted first."""
        return self.table.filter(pl.col("triggers")).sort("psi", descending=True)["feature"].to_list()

    @property
    def worst(self) -> tuple[str, float]:
        """The most shifted of the features that can trigger a retrain."""
        monitored = self.table.filter(pl.col("feature").is_in(list(TRIGGER_FEATURES)))
        row = (monitored if monitored.height else self.table).sort("psi", descending=True).row(0, named=True)
        return row["feature"], row["psi"]

    def summary(self) -> str:
        feature, psi = self.worst
        shifted = self.drifted
        if not shifted:
            return (f"no feature shifted: the highest PSI is {psi:.3f} ({feature}), "
                    f"the threshold {self.threshold}")
        names = ", ".join(shifted[:5]) + (f" and {len(shifted) - 5} more" if len(shifted) > 5 else "")
        return f"{len(shifted)} feature(s) shifted past PSI {self.threshold}: {names} (highest {psi:.3f}, {feature})"


def psi_numeric(reference: np.ndarray, current: np.ndarray, *, bins: int = BINS) -> float:
    """PSI over the reference's quantile bins; missing values are a bin of their own."""
    ref, cur = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("PSI needs values on both sides")
    finite = ref[~np.isnan(ref)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1])) if finite.size else np.array([])

    def shares(values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=edges.size + 1)
        return np.append(counts, missing.sum()) / values.size

    return _psi(shares(ref), shares(cur))


def psi_categorical(reference: pl.Series, current: pl.Series) -> float:
    """PSI over the categories seen on either side (missing is a category)."""
    if reference.len() == 0 or current.len() == 0:
        raise ValueError("PSI needs values on both sides")
    ref = reference.cast(pl.String).fill_null("<missing>").value_counts(normalize=True, name="ref")
    cur = current.cast(pl.String).fill_null("<missing>").value_counts(normalize=True, name="cur")
    both = ref.join(cur, on=reference.name or "", how="full", coalesce=True).fill_null(0.0)
    return _psi(both["ref"].to_numpy(), both["cur"].to_numpy())


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = np.clip(expected, _EPS, None), np.clip(actual, _EPS, None)
    return float(np.sum((a - e) * np.log(a / e)))


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float | None, float | None]:
    """Two-sample Kolmogorov–Smirnov statistic and p-value over the non-missing values (None without any)."""
    from scipy.stats import ks_2samp  # noqa: PLC0415 - start-up: scipy.stats ~1.6 s

    ref, cur = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if ref.size == 0 or cur.size == 0:
        return None, None
    result = ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


def assess(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    *,
    threshold: float = PSI_THRESHOLD,
    reference_id: str = "",
    features: tuple[str, ...] = FEATURES,
) -> Assessment:
    """PSI for every feature both frames have, KS for the continuous ones; a row per feature."""
    if current.height == 0:
        raise ValueError("no recent flight to compare with the reference")
    dates = current["flight_date"] if "flight_date" in current.columns else pl.Series([None], dtype=pl.Date)
    rows = []
    for name in features:
        if name not in reference.columns or name not in current.columns:
            continue
        categorical = name in CATEGORICAL_FEATURES
        if categorical:
            psi = psi_categorical(reference[name], current[name])
            ks_stat = ks_p = None
        else:
            ref, cur = (f[name].cast(pl.Float64).fill_null(np.nan).to_numpy() for f in (reference, current))
            psi = psi_numeric(ref, cur)
            ks_stat, ks_p = ks(ref, cur) if name in CONTINUOUS_FEATURES else (None, None)
        rows.append({
            "reference_id": reference_id, "window_start": dates.min(), "window_end": dates.max(), "feature": name,
            "kind": "categorical" if categorical else ("continuous" if name in CONTINUOUS_FEATURES else "discrete"),
            "psi": psi, "ks_statistic": ks_stat, "ks_pvalue": ks_p, "reference_rows": reference.height,
            "current_rows": current.height, "drifted": psi > threshold,
            "triggers": psi > threshold and name in TRIGGER_FEATURES, "threshold": threshold,
        })
    if not rows:
        raise ValueError("the reference and the recent flights share no feature")
    return Assessment(pl.DataFrame(rows, schema=REPORT_SCHEMA), threshold)


def recent_window(features: pl.DataFrame, *, days: int = WINDOW_DAYS) -> pl.DataFrame:
    """The flights of the last `days` days of the table."""
    if features.height == 0:
        raise ValueError("the feature table is empty: no recent flight to compare")
    last = features["flight_date"].max()
    return features.filter(pl.col("flight_date") > last - dt.timedelta(days=days))


def reference_sample(train: pl.DataFrame, *, rows: int = REFERENCE_ROWS, seed: int = 13) -> pl.DataFrame:
    """A seeded sample of the training window's features (every feature column, plus flight_date)."""
    keep = [c for c in ("flight_date", *FEATURES) if c in train.columns]
    frame = train.select(keep)
    return frame.sample(rows, seed=seed) if frame.height > rows else frame


def save_reference(lake: Lake, sample: pl.DataFrame, *, reference_id: str, meta: dict) -> None:
    """Publish a reference: the sample first, then the pointer naming it."""
    buffer = io.BytesIO()
    sample.write_parquet(buffer, compression="zstd")
    rel = f"ml/drift/reference-{reference_id}.parquet"
    lake.publish_bytes(rel, buffer.getvalue())
    lake.publish_json(REFERENCE_POINTER, {**meta, "id": reference_id, "sample": rel, "rows": sample.height})


def load_reference(lake: Lake) -> Reference | None:
    """The current reference, or None when no model run has written one yet."""
    pointer = lake.read_json(REFERENCE_POINTER)
    if pointer is None:
        return None
    sample = pl.read_parquet(io.BytesIO(lake.read_bytes(pointer["sample"])))
    return Reference(id=str(pointer["id"]), sample=sample, meta=pointer)


def reference_id(lake: Lake) -> str | None:
    """The id of the current reference without reading its sample (what a sensor's cursor keeps)."""
    pointer = lake.read_json(REFERENCE_POINTER)
    return None if pointer is None else str(pointer["id"])


def plot(table: pl.DataFrame, *, title: str = "Feature drift (PSI) against the training reference") -> bytes:
    """A horizontal bar chart of PSI per feature with the threshold, as PNG bytes."""
    import matplotlib  # noqa: PLC0415 - start-up: matplotlib.pyplot ~0.5 s

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - start-up: matplotlib.pyplot ~0.5 s

    ordered = table.sort("psi")
    threshold = float(ordered["threshold"][0]) if ordered.height else PSI_THRESHOLD
    fig, ax = plt.subplots(figsize=(7, 0.22 * ordered.height + 1.2), dpi=80)
    colours = ["tab:red" if d else "tab:blue" for d in ordered["drifted"].to_list()]
    ax.barh(ordered["feature"].to_list(), ordered["psi"].to_list(), color=colours)
    ax.axvline(threshold, color="grey", linestyle="--", label=f"threshold {threshold}")
    ax.set_xlabel("PSI")
    ax.set_title(title)
    ax.legend(loc="lower right")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
