"""Naive baselines: what a model must beat to be worth serving.

A model that cannot beat the recent mean (or the class prior, or last period's mean) has
learned nothing a constant could not do, however good its score looks next to an older
model. Baselines are fitted on the rows before the ones they are scored on, as a model is:
- the recent mean and median of the target (regression), the recent class shares
  (classification), over the latest `window` rows;
- the last period's mean or class shares, where a time column orders the rows.

Live, on labelled traffic, each row is predicted from the labelled rows before it
(`rolling_baseline`), so the baseline keeps up with drift as a careful person would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from zenloop.metrics import Metric, score
from zenloop.schema import FeatureSchema
from zenloop.time_order import time_values

SMOOTHING = 1.0  # Laplace counts per class: a class not seen recently is not impossible
# A time column names periods when rows share its values (months of a panel of cities);
# timestamps nearly unique per row name no period to take the last of.
MAX_PERIOD_SHARE = 0.5


def has_periods(times: np.ndarray) -> bool:
    """Whether rows share time values: then the last period is a baseline."""
    finite = times[np.isfinite(times)]
    return len(finite) > 0 and len(np.unique(finite)) <= MAX_PERIOD_SHARE * len(finite)


@dataclass(frozen=True)
class NaiveBaseline:
    """A constant prediction: a number (regression) or class shares (classification)."""

    name: str
    value: float | None = None
    shares: tuple[float, ...] | None = None

    def predict(self, n_rows: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Encoded predictions and, for classes, probabilities, for `n_rows` rows."""
        if self.shares is None:
            return np.full(n_rows, float(self.value)), None
        proba = np.tile(np.asarray(self.shares), (n_rows, 1))
        return proba.argmax(axis=1), proba

    def describe(self) -> str:
        if self.shares is None:
            return f"{self.name} ({self.value:.4g})"
        return f"{self.name} ({', '.join(f'{s:.2f}' for s in self.shares)})"


def _shares(codes: np.ndarray, n_classes: int) -> tuple[float, ...]:
    counts = np.bincount(codes.astype(int), minlength=n_classes) + SMOOTHING
    return tuple(float(c) for c in counts / counts.sum())


def encoded_target(frame: pd.DataFrame, schema: FeatureSchema) -> np.ndarray:
    """The target as models see it: floats, or class codes in the schema's order."""
    target = frame[schema.target]
    if schema.task == "regression":
        return target.to_numpy(float)
    index = {str(c): i for i, c in enumerate(schema.classes or [])}
    return target.astype(str).map(index).to_numpy()


def fit_baselines(
    history: pd.DataFrame, schema: FeatureSchema, window: int, ordered: bool
) -> list[NaiveBaseline]:
    """The naive baselines of rows that come before the ones they will be scored on.

    `history` is in time order when `ordered`; otherwise it has no order, and the
    baselines are its whole mean, median or class shares.
    """
    y = encoded_target(history, schema)
    recent = y[-window:] if ordered else y
    where = "recent" if ordered else "training"
    baselines: list[NaiveBaseline] = []
    last_period = None
    time_column = schema.time_column
    if ordered and time_column and time_column in history:
        times = time_values(history[time_column]).to_numpy(float)
        if has_periods(times):
            last_period = y[times == np.nanmax(times)]
    if schema.task == "regression":
        baselines.append(NaiveBaseline(f"{where} mean", value=float(np.mean(recent))))
        baselines.append(NaiveBaseline(f"{where} median", value=float(np.median(recent))))
        if last_period is not None:
            baselines.append(NaiveBaseline("last period mean", value=float(np.mean(last_period))))
        return baselines
    n_classes = len(schema.classes or [])
    baselines.append(NaiveBaseline(f"{where} class prior", shares=_shares(recent, n_classes)))
    if last_period is not None:
        baselines.append(
            NaiveBaseline("last period class prior", shares=_shares(last_period, n_classes))
        )
    return baselines


def score_baselines(
    baselines: list[NaiveBaseline], rows: pd.DataFrame, schema: FeatureSchema, metric: Metric
) -> dict[str, float]:
    """Each baseline's primary metric on `rows`."""
    y = encoded_target(rows, schema)
    scores = {}
    for baseline in baselines:
        predicted, proba = baseline.predict(len(rows))
        scores[baseline.name] = score(metric, y, predicted, proba)
    return scores


@dataclass(frozen=True)
class RollingBaseline:
    """Per-row naive predictions for labelled rows in arrival order, each made from the
    labelled rows before it; `scored` marks the rows with enough rows before them."""

    name: str
    predicted: np.ndarray
    proba: np.ndarray | None
    scored: np.ndarray


def rolling_baselines(
    y: np.ndarray,
    task: str,
    n_classes: int,
    window: int,
    min_history: int,
    times: np.ndarray | None = None,
) -> list[RollingBaseline]:
    """Naive forecasts of labelled rows in arrival order: the mean (or class shares) of the
    `window` labelled rows before each one, and, with times, the mean (or shares) of the
    latest earlier period among the rows before it. Rows with fewer than `min_history` rows
    before them are not scored."""
    n = len(y)
    positions = np.arange(n)
    scored = positions >= min_history
    start = np.maximum(0, positions - window)
    counts = np.maximum(positions - start, 1)
    out = []
    if task == "regression":
        sums = np.concatenate([[0.0], np.cumsum(y.astype(float))])
        mean = (sums[positions] - sums[start]) / counts
        out.append(RollingBaseline("recent mean", mean, None, scored))
    else:
        onehot = np.eye(n_classes)[y.astype(int)]
        sums = np.vstack([np.zeros(n_classes), np.cumsum(onehot, axis=0)])
        shares = sums[positions] - sums[start] + SMOOTHING
        proba = shares / shares.sum(axis=1, keepdims=True)
        out.append(RollingBaseline("recent class prior", proba.argmax(axis=1), proba, scored))
    if times is not None and has_periods(times):
        out.append(_last_period(y, task, n_classes, times, scored))
    return out


def _last_period(
    y: np.ndarray, task: str, n_classes: int, times: np.ndarray, scored: np.ndarray
) -> RollingBaseline:
    """Each row predicted by the latest period before its own among the rows before it."""
    n = len(y)
    width = 1 if task == "regression" else n_classes
    predicted = np.full((n, width), np.nan)
    totals: dict[float, np.ndarray] = {}
    counts: dict[float, int] = {}
    periods: list[float] = []  # seen so far, sorted
    for i in range(n):
        t = times[i]
        if np.isfinite(t) and periods:
            earlier = np.searchsorted(periods, t, side="left") - 1
            if earlier >= 0:
                period = periods[earlier]
                smoothing = 0.0 if task == "regression" else SMOOTHING
                predicted[i] = (totals[period] + smoothing) / (counts[period] + width * smoothing)
        if np.isfinite(t):
            value = (
                np.array([y[i]], float) if task == "regression" else np.eye(n_classes)[int(y[i])]
            )
            if t not in totals:
                totals[t], counts[t] = np.zeros(width), 0
                periods.insert(int(np.searchsorted(periods, t)), t)
            totals[t] = totals[t] + value
            counts[t] += 1
    found = ~np.isnan(predicted[:, 0])
    if task == "regression":
        return RollingBaseline("last period mean", predicted[:, 0], None, scored & found)
    proba = np.where(found[:, None], predicted, 1.0 / n_classes)
    return RollingBaseline("last period class prior", proba.argmax(axis=1), proba, scored & found)
