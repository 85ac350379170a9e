"""Evaluation metrics per task, and the one primary metric that judges a model end to end.

The primary metric (configurable, `TrainingConfig.metric`) ranks candidates, decides
promotion against the champion and the naive baselines, and is the figure the drift
check, `status`, the operations page and replay show. Every other metric is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from zenloop.config import METRIC_TASK, Task

DEFAULT_METRIC: dict[Task, str] = {"regression": "rmse", "classification": "roc_auc"}
# the score whose train/test difference is the generalisation gap
GAP_METRIC: dict[Task, str] = {"regression": "r2", "classification": "roc_auc"}
MAPE_MIN_ABS_TARGET = 1e-9
PROBABILITY_FLOOR = 1e-15  # log loss of a probability of 0 is infinite


@dataclass(frozen=True)
class Metric:
    """A primary metric: its name, its task and its direction."""

    name: str
    task: Task
    higher_is_better: bool

    def better(self, a: float, b: float) -> bool:
        """Whether score `a` is strictly better than score `b`."""
        return a > b if self.higher_is_better else a < b

    def best(self, scores: dict[str, float]) -> str:
        """The key of the best score."""
        pick = max if self.higher_is_better else min
        return pick(scores, key=scores.__getitem__)


HIGHER_IS_BETTER = {"rmse": False, "mae": False, "roc_auc": True, "log_loss": False}


def primary_metric(task: Task, configured: str | None = None) -> Metric:
    """The metric that judges a model of this task: the configured one, or the default."""
    name = configured or DEFAULT_METRIC[task]
    if METRIC_TASK[name] != task:
        raise ValueError(f"metric {name!r} is a {METRIC_TASK[name]} metric, not {task}")
    return Metric(name, task, HIGHER_IS_BETTER[name])


def metric_named(name: str) -> Metric:
    """A primary metric by its name alone (its task follows from it)."""
    return primary_metric(METRIC_TASK[name], name)


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


def roc_auc(y_true: np.ndarray, proba: np.ndarray, n_classes: int) -> float:
    """ROC-AUC (one-vs-rest for several classes); 0.5 when only one class is present, as a
    constant would score."""
    present = np.unique(y_true)
    if len(present) < 2:
        return 0.5
    if n_classes == 2:
        return float(skm.roc_auc_score(y_true, proba[:, 1]))
    if len(present) < n_classes:  # one-vs-rest over the classes that occur
        columns = proba[:, present]
        columns = columns / np.clip(columns.sum(axis=1, keepdims=True), PROBABILITY_FLOOR, None)
        if len(present) == 2:
            return float(skm.roc_auc_score(y_true == present[1], columns[:, 1]))
        return float(skm.roc_auc_score(y_true, columns, multi_class="ovr", labels=list(present)))
    return float(skm.roc_auc_score(y_true, proba, multi_class="ovr", labels=list(range(n_classes))))


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, n_classes: int
) -> dict[str, float]:
    """Labels are encoded 0..k-1; binary scores are for the last (positive) class."""
    binary = n_classes == 2
    average = "binary" if binary else "macro"
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "precision": float(skm.precision_score(y_true, y_pred, average=average, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, average=average, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, average=average, zero_division=0)),
        "roc_auc": roc_auc(y_true, proba, n_classes),
        "log_loss": float(skm.log_loss(y_true, proba, labels=list(range(n_classes)))),
    }


def score(
    metric: Metric, y_true: np.ndarray, predicted: np.ndarray, proba: np.ndarray | None
) -> float:
    """One metric of predictions (and class probabilities, columns in encoded class order)."""
    if metric.task == "regression":
        return regression_metrics(y_true, predicted)[metric.name]
    assert proba is not None, "classification metrics need class probabilities"
    n_classes = proba.shape[1]
    if metric.name == "roc_auc":
        return roc_auc(np.asarray(y_true), proba, n_classes)
    clipped = np.clip(proba, PROBABILITY_FLOOR, 1.0)
    return float(skm.log_loss(y_true, clipped, labels=list(range(n_classes))))


def gap_pct(train: dict[str, float], test: dict[str, float], task: Task) -> float:
    """How much worse the test score is than the train score, in percent of train."""
    name = GAP_METRIC[task]
    return float((train[name] - test[name]) / max(abs(train[name]), 1e-12) * 100)


def improvement(candidate: float, incumbent: float, higher_is_better: bool) -> float:
    """Relative improvement of candidate over incumbent (positive = candidate is better)."""
    delta = candidate - incumbent if higher_is_better else incumbent - candidate
    return float(delta / max(abs(incumbent), 1e-12))
