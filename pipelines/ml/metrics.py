"""The scores every model and the baseline are compared on."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def score(y_true: np.ndarray, p_late: np.ndarray) -> dict[str, float]:
    """ROC-AUC (ranking), PR-AUC (average precision: the late class is the rare one), log-loss, Brier score and
    expected calibration error (calibration), and the base rate for reading PR-AUC."""
    y = np.asarray(y_true, dtype=np.int8)
    p = np.clip(np.asarray(p_late, dtype=np.float64), 1e-7, 1 - 1e-7)
    if y.size == 0:
        raise ValueError("cannot score an empty set of flights")
    if y.min() == y.max():
        raise ValueError("cannot score flights that are all late or all on time")
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "late_rate": float(y.mean()),
        "rows": float(y.size),
    }


def expected_calibration_error(y_true: np.ndarray, p_late: np.ndarray, bins: int = 10) -> float:
    """The gap between predicted and observed late share, averaged over `bins` equal-width probability bins
    weighted by their flights (0 is perfectly calibrated)."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(p_late, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    gap = np.abs(np.bincount(which, weights=p, minlength=bins) - np.bincount(which, weights=y, minlength=bins))
    return float(gap.sum() / max(count.sum(), 1))
