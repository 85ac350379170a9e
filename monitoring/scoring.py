"""Scores of served predictions on labelled traffic, with the primary metric.

The drift check's performance figure, the naive baseline a champion must stay ahead of,
and the review of a promotion (the new version and the one it replaced on the same later
rows) are all computed here, from logged rows in the order they were logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from monitoring.log_store import GROUND_TRUTH_COLUMN, PROBABILITIES_COLUMN
from zenloop.baselines import rolling_baselines
from zenloop.bundle import PREDICTION_COLUMN
from zenloop.metrics import PROBABILITY_FLOOR, Metric, score
from zenloop.schema import FeatureSchema
from zenloop.time_order import time_values

BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Labelled:
    """Labelled logged rows (in log order) whose label reads as the target, encoded as the
    model encodes it, with what was served for them."""

    rows: pd.DataFrame
    y: np.ndarray
    predicted: np.ndarray
    proba: np.ndarray | None

    def __len__(self) -> int:
        return len(self.y)


def _codes(values: pd.Series, schema: FeatureSchema) -> np.ndarray:
    index = {str(c): float(i) for i, c in enumerate(schema.classes or [])}
    return values.map(lambda v: np.nan if v is None else index.get(str(v), np.nan)).to_numpy(float)


def _probabilities(texts: pd.Series, predicted: np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """Logged class probabilities in the schema's class order; a row logged without them
    (an older log) counts as certain of its prediction."""
    names = [str(c) for c in schema.classes or []]
    out = np.zeros((len(texts), len(names)))
    for i, text in enumerate(texts):
        shares = json.loads(text) if isinstance(text, str) else None
        if isinstance(shares, dict):
            out[i] = [float(shares.get(name, 0.0)) for name in names]
        else:
            out[i, int(predicted[i])] = 1.0
    return out


def labelled_rows(window: pd.DataFrame, schema: FeatureSchema) -> Labelled:
    """The window's labelled rows whose label and prediction read as the target's type."""
    if GROUND_TRUTH_COLUMN not in window or window.empty:
        empty = np.zeros(0)
        return Labelled(window.head(0), empty, empty, None)
    rows = window[window[GROUND_TRUTH_COLUMN].notna()]
    if schema.task == "regression":
        y = pd.to_numeric(rows[GROUND_TRUTH_COLUMN], errors="coerce").to_numpy(float)
        predicted = pd.to_numeric(rows[PREDICTION_COLUMN], errors="coerce").to_numpy(float)
    else:
        y = _codes(rows[GROUND_TRUTH_COLUMN], schema)
        predicted = _codes(rows[PREDICTION_COLUMN], schema)
    valid = np.isfinite(y) & np.isfinite(predicted)
    rows, y, predicted = rows[valid].reset_index(drop=True), y[valid], predicted[valid]
    proba = None
    if schema.task == "classification":
        texts = rows[PROBABILITIES_COLUMN] if PROBABILITIES_COLUMN in rows else pd.Series([None])
        proba = _probabilities(texts.reindex(range(len(rows))), predicted, schema)
    return Labelled(rows, y, predicted, proba)


def judgeable(labelled: Labelled, metric: Metric) -> bool:
    """ROC-AUC says nothing of rows that all have one class."""
    return len(labelled) > 0 and (metric.name != "roc_auc" or len(np.unique(labelled.y)) > 1)


def served_score(labelled: Labelled, metric: Metric, rows: np.ndarray | None = None) -> float:
    """The primary metric of what was served (on a subset of rows, when given)."""
    pick = slice(None) if rows is None else rows
    proba = None if labelled.proba is None else labelled.proba[pick]
    return score(metric, labelled.y[pick], labelled.predicted[pick], proba)


def error_ratio(metric: Metric, window_value: float, test_value: float) -> float:
    """How much worse than at test time: > 1 is worse. Errors divide; for ROC-AUC, the
    distance to a perfect 1 does."""
    if metric.higher_is_better:
        return (1.0 - window_value) / max(1.0 - test_value, 1e-12)
    return window_value / max(test_value, 1e-12)


@dataclass(frozen=True)
class BaselineComparison:
    """The served model and the best naive baseline on the same labelled rows."""

    name: str
    rows: int
    model: float
    baseline: float
    behind: bool  # the model scores worse than the baseline


def against_baseline(
    labelled: Labelled,
    schema: FeatureSchema,
    metric: Metric,
    window: int,
    min_history: int,
) -> BaselineComparison | None:
    """The served predictions against naive forecasts made from the labelled rows before
    each one (their mean or class shares; the last period's with a time column), on the
    rows every baseline could forecast. None when too few rows have enough before them."""
    times = None
    column = schema.time_column
    if column and column in labelled.rows:
        times = time_values(labelled.rows[column]).to_numpy(float)
    n_classes = len(schema.classes or [])
    best = None
    for baseline in rolling_baselines(
        labelled.y, schema.task, n_classes, window, min_history, times
    ):
        rows = np.flatnonzero(baseline.scored)
        scored = Labelled(labelled.rows, labelled.y[rows], labelled.predicted[rows], None)
        if labelled.proba is not None:
            scored = Labelled(scored.rows, scored.y, scored.predicted, labelled.proba[rows])
        if not judgeable(scored, metric):
            continue
        proba = None if baseline.proba is None else baseline.proba[rows]
        value = score(metric, labelled.y[rows], baseline.predicted[rows], proba)
        model = served_score(scored, metric)
        if best is None or metric.better(value, best.baseline):
            best = BaselineComparison(
                baseline.name, len(rows), model, value, behind=metric.better(value, model)
            )
    return best


Outputs = tuple[np.ndarray, np.ndarray | None]  # encoded predictions, class probabilities


def _row_losses(metric: Metric, y: np.ndarray, outputs: Outputs) -> np.ndarray | None:
    """Per-row losses whose mean (or its root) is the metric; None for ROC-AUC."""
    predicted, proba = outputs
    if metric.name == "rmse":
        return (predicted - y) ** 2
    if metric.name == "mae":
        return np.abs(predicted - y)
    if metric.name == "log_loss":
        assert proba is not None
        return -np.log(np.clip(proba[np.arange(len(y)), y.astype(int)], PROBABILITY_FLOOR, 1.0))
    return None


def worse_probability(
    metric: Metric, y: np.ndarray, new: Outputs, old: Outputs, rounds: int, margin: float = 0.0
) -> float:
    """The share of paired bootstrap resamples of the rows on which the new predictions
    score worse than the old ones by more than `margin` (relative): how sure it is that
    the new version is worse, not just unlucky on these rows."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    n = len(y)
    losses = [_row_losses(metric, y, outputs) for outputs in (new, old)]
    worse = 0
    for _ in range(rounds):
        pick = rng.integers(0, n, n)
        if losses[0] is not None:
            a, b = (float(np.mean(loss[pick])) for loss in losses)
            if metric.name == "rmse":
                a, b = np.sqrt(a), np.sqrt(b)
        elif len(np.unique(y[pick])) < 2:
            continue
        else:
            a, b = (
                score(metric, y[pick], outputs[0][pick], outputs[1][pick]) for outputs in (new, old)
            )
        limit = abs(b) * margin
        worse += bool(b - a > limit if metric.higher_is_better else a - b > limit)
    return worse / rounds
