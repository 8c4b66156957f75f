"""The scores every model and the baseline are compared on."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def score(y_true: np.ndarray, p_late: np.ndarray) -> dict[str, float]:
    """ROC-AUC (ranking), PR-AUC (average precision: the late class is the rare one), log-loss and Brier
    score (calibration), and the base rate for reading PR-AUC."""
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
        "late_rate": float(y.mean()),
        "rows": float(y.size),
    }
