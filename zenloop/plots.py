"""Report figures as PNG bytes, for MLflow artifacts and ZenML visualizations alike."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay  # noqa: E402

MAX_POINTS = 3_000
TOP_FEATURES = 20
FIGSIZE = (6, 4.5)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _subsample(*arrays: np.ndarray) -> list[np.ndarray]:
    n = len(arrays[0])
    idx = np.random.default_rng(0).choice(n, min(n, MAX_POINTS), replace=False)
    return [np.asarray(a)[idx] for a in arrays]


def predicted_vs_true(y_true, y_pred, title: str) -> bytes:
    y_true, y_pred = _subsample(y_true, y_pred)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.scatter(y_true, y_pred, s=4, alpha=0.4)
    lims = [min(y_true.min(), y_pred.min()), max(y_true.max(), y_pred.max())]
    ax.plot(lims, lims, color="black", linewidth=1)
    ax.set(xlabel="true", ylabel="predicted", title=f"Predicted vs true: {title}")
    return _png(fig)


def residuals(y_true, y_pred, title: str) -> bytes:
    y_true, y_pred = _subsample(y_true, y_pred)
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.scatter(y_pred, y_true - y_pred, s=4, alpha=0.4)
    ax.axhline(0, color="black", linewidth=1)
    ax.set(xlabel="predicted", ylabel="residual (true - predicted)", title=f"Residuals: {title}")
    return _png(fig)


def feature_importance(names: list[str], importances: np.ndarray, title: str) -> bytes:
    order = np.argsort(importances)[::-1][:TOP_FEATURES][::-1]
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.barh([names[i] for i in order], importances[order])
    ax.set(title=f"Feature importance: {title}")
    return _png(fig)


def confusion(y_true, y_pred, labels: list[str], title: str) -> bytes:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=list(range(len(labels))),
        display_labels=labels,
        ax=ax,
        colorbar=False,
    )
    ax.set_title(f"Confusion matrix: {title}")
    return _png(fig)


def roc(y_true, proba: np.ndarray, labels: list[str], title: str) -> bytes:
    fig, ax = plt.subplots(figsize=FIGSIZE)
    positives = [len(labels) - 1] if len(labels) == 2 else range(len(labels))
    for k in positives:
        RocCurveDisplay.from_predictions(
            np.asarray(y_true) == k, proba[:, k], name=f"class {labels[k]}", ax=ax
        )
    ax.set_title(f"ROC: {title}")
    return _png(fig)


def train_vs_test(scores: dict[str, dict[str, float]], metric: str) -> bytes:
    """One bar pair per candidate: the train and test value of `metric`."""
    names = list(scores)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=FIGSIZE)
    ax.bar(x - 0.2, [scores[n]["train"] for n in names], 0.4, label="train")
    ax.bar(x + 0.2, [scores[n]["test"] for n in names], 0.4, label="test")
    ax.set_xticks(x, names, rotation=20)
    ax.set(ylabel=metric, title=f"Train vs test {metric} per candidate")
    ax.legend()
    return _png(fig)
