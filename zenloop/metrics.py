"""Evaluation metrics per task, and which of them rank, gate and measure overfitting."""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from zenloop.config import Task

# task -> (metric that ranks candidates, True when higher is better)
PRIMARY_METRIC: dict[Task, tuple[str, bool]] = {
    "regression": ("rmse", False),
    "classification": ("roc_auc", True),
}
# the score whose train/test difference is the generalisation gap
GAP_METRIC: dict[Task, str] = {"regression": "r2", "classification": "roc_auc"}
MAPE_MIN_ABS_TARGET = 1e-9


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    nonzero = np.abs(y_true) > MAPE_MIN_ABS_TARGET  # MAPE is undefined where the target is 0
    mape = (
        float(np.mean(np.abs((y_true - y_pred)[nonzero] / y_true[nonzero])))
        if nonzero.any()
        else float("nan")
    )
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)),
        "mape": mape,
    }


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, n_classes: int
) -> dict[str, float]:
    """Labels are encoded 0..k-1; binary scores are for the last (positive) class."""
    binary = n_classes == 2
    average = "binary" if binary else "macro"
    roc_auc = (
        skm.roc_auc_score(y_true, proba[:, 1])
        if binary
        else skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=list(range(n_classes)))
    )
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, average=average, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, average=average, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, average=average, zero_division=0)),
        "roc_auc": float(roc_auc),
        "log_loss": float(skm.log_loss(y_true, proba, labels=list(range(n_classes)))),
    }


def gap_pct(train: dict[str, float], test: dict[str, float], task: Task) -> float:
    """How much worse the test score is than the train score, in percent of train."""
    name = GAP_METRIC[task]
    return float((train[name] - test[name]) / max(abs(train[name]), 1e-12) * 100)


def improvement(candidate: float, incumbent: float, higher_is_better: bool) -> float:
    """Relative improvement of candidate over incumbent (positive = candidate is better)."""
    delta = candidate - incumbent if higher_is_better else incumbent - candidate
    return float(delta / max(abs(incumbent), 1e-12))
