"""Report figures as PNG bytes, for MLflow artifacts and ZenML visualizations alike.

Every figure is saved with a tight bounding box, long titles are wrapped and long tick
labels are shortened with an ellipsis, so no label is ever cut at the image's edge.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay  # noqa: E402

MAX_POINTS = 3_000
TOP_FEATURES = 20
FIGSIZE = (7, 5)
DPI = 90
TITLE_WRAP_CHARS = 55  # about what fits across FIGSIZE's width at the default font size
MAX_LABEL_CHARS = 32  # tick labels (feature, class, candidate names) longer than this are cut
ELLIPSIS = "…"
# a horizontal bar chart grows with its bars so that every label keeps its own line
BAR_HEIGHT_INCHES = 0.32
BAR_CHART_MARGIN_INCHES = 1.6
BAR_PAIR_WIDTH = 0.4
TICK_ROTATION = 30
# drift distributions: shared bins over the bulk of both sides, so one outlier cannot
# squash the histogram; categories beyond the top ones are summed as "other"
HISTOGRAM_BINS = 30
HISTOGRAM_QUANTILES = (0.005, 0.995)
TOP_CATEGORIES = 10
OTHER_CATEGORY = "(other)"
MISSING_CATEGORY = "(missing)"
WINDOW_COLOR = "tab:orange"
REFERENCE_COLOR = "tab:blue"
HISTOGRAM_ALPHA = 0.3
HISTOGRAM_OUTLINE = 1.8
LEGEND_COLUMNS = 2


def shorten(label: object, max_chars: int = MAX_LABEL_CHARS) -> str:
    """A label cut in the middle to `max_chars`, so a long name cannot push the plot out.

    The middle goes because names differ at their ends: one-hot features share a prefix
    ("categorical__country_…") and differ in the value that ends them.
    """
    text = str(label)
    if len(text) <= max_chars:
        return text
    tail = (max_chars - len(ELLIPSIS)) // 2
    head = max_chars - len(ELLIPSIS) - tail
    return text[:head] + ELLIPSIS + text[-tail:]


def _title(ax, text: str) -> None:
    ax.set_title("\n".join(textwrap.wrap(text, TITLE_WRAP_CHARS)))


def _figure(size: tuple[float, float] = FIGSIZE):
    return plt.subplots(figsize=size, layout="constrained")


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _legend_below(fig, ax, columns: int = 1) -> None:
    """The legend under the axes, where it can never hide a curve or a bar."""
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=columns)


def _bar_chart_size(bars: int) -> tuple[float, float]:
    return FIGSIZE[0], max(FIGSIZE[1], bars * BAR_HEIGHT_INCHES + BAR_CHART_MARGIN_INCHES)


def _subsample(*arrays: np.ndarray) -> list[np.ndarray]:
    n = len(arrays[0])
    idx = np.random.default_rng(0).choice(n, min(n, MAX_POINTS), replace=False)
    return [np.asarray(a)[idx] for a in arrays]


def predicted_vs_true(y_true, y_pred, title: str) -> bytes:
    y_true, y_pred = _subsample(y_true, y_pred)
    fig, ax = _figure()
    ax.scatter(y_true, y_pred, s=4, alpha=0.4)
    lims = [min(y_true.min(), y_pred.min()), max(y_true.max(), y_pred.max())]
    ax.plot(lims, lims, color="black", linewidth=1)
    ax.set(xlabel="true", ylabel="predicted")
    _title(ax, f"Predicted vs true: {title}")
    return _png(fig)


def residuals(y_true, y_pred, title: str) -> bytes:
    y_true, y_pred = _subsample(y_true, y_pred)
    fig, ax = _figure()
    ax.scatter(y_pred, y_true - y_pred, s=4, alpha=0.4)
    ax.axhline(0, color="black", linewidth=1)
    ax.set(xlabel="predicted", ylabel="residual (true - predicted)")
    _title(ax, f"Residuals: {title}")
    return _png(fig)


def feature_importance(names: list[str], importances: np.ndarray, title: str) -> bytes:
    order = np.argsort(importances)[::-1][:TOP_FEATURES][::-1]
    fig, ax = _figure(_bar_chart_size(len(order)))
    y = np.arange(len(order))  # positions, not labels: two shortened names may coincide
    ax.barh(y, importances[order])
    ax.set_yticks(y, [shorten(names[i]) for i in order])
    ax.set(xlabel="importance")
    _title(ax, f"Feature importance: {title}")
    return _png(fig)


def confusion(y_true, y_pred, labels: list[str], title: str) -> bytes:
    fig, ax = _figure()
    ConfusionMatrixDisplay.from_predictions(
        y_true,
        y_pred,
        labels=list(range(len(labels))),
        display_labels=[shorten(label) for label in labels],
        ax=ax,
        colorbar=False,
        xticks_rotation=TICK_ROTATION,
    )
    plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    _title(ax, f"Confusion matrix: {title}")
    return _png(fig)


def roc(y_true, proba: np.ndarray, labels: list[str], title: str) -> bytes:
    fig, ax = _figure()
    positives = [len(labels) - 1] if len(labels) == 2 else range(len(labels))
    for k in positives:
        RocCurveDisplay.from_predictions(
            np.asarray(y_true) == k, proba[:, k], name=f"class {shorten(labels[k])}", ax=ax
        )
    _legend_below(fig, ax)
    _title(ax, f"ROC: {title}")
    return _png(fig)


def train_vs_test(scores: dict[str, dict[str, float]], metric: str) -> bytes:
    """One bar pair per candidate: the train and test value of `metric`."""
    names = list(scores)
    x = np.arange(len(names))
    fig, ax = _figure()
    half = BAR_PAIR_WIDTH / 2
    ax.bar(x - half, [scores[n]["train"] for n in names], BAR_PAIR_WIDTH, label="train")
    ax.bar(x + half, [scores[n]["test"] for n in names], BAR_PAIR_WIDTH, label="test")
    ax.set_xticks(x, [shorten(n) for n in names], rotation=TICK_ROTATION, ha="right")
    ax.set(ylabel=metric)
    _legend_below(fig, ax, LEGEND_COLUMNS)
    _title(ax, f"Train vs test {metric} per candidate")
    return _png(fig)


def _sided_label(side: str, values: pd.Series) -> str:
    missing = values.isna().mean() if len(values) else 0.0
    return f"{side} (n={len(values):,}, {missing:.0%} missing)"


def _histograms(ax, window: pd.Series, reference: pd.Series) -> None:
    """Both sides as densities over shared bins, since the two samples differ in size."""
    numbers = {
        side: pd.to_numeric(values, errors="coerce")
        for side, values in (("window", window), ("reference", reference))
    }
    present = pd.concat([v.dropna() for v in numbers.values()])
    low, high = present.quantile(HISTOGRAM_QUANTILES) if len(present) else (0.0, 1.0)
    if low == high:  # a constant column still gets a visible bar
        low, high = low - 0.5, high + 0.5
    bins = np.linspace(low, high, HISTOGRAM_BINS + 1)
    for side, color in (("window", WINDOW_COLOR), ("reference", REFERENCE_COLOR)):
        values = numbers[side]
        shown = values.dropna().clip(low, high)
        ax.hist(shown, bins=bins, density=True, alpha=HISTOGRAM_ALPHA, color=color)
        ax.hist(  # an outline on top, so the overlap still shows both shapes
            shown,
            bins=bins,
            density=True,
            histtype="step",
            linewidth=HISTOGRAM_OUTLINE,
            color=color,
            label=_sided_label(side, values),
        )
    ax.set(ylabel="density")


def _category_shares(window: pd.Series, reference: pd.Series) -> pd.DataFrame:
    """Row shares of the categories most common on either side; the rest as one row."""
    shares = pd.DataFrame(
        {
            side: values.astype(object)
            .where(values.notna(), MISSING_CATEGORY)
            .value_counts(normalize=True)
            for side, values in (("reference", reference), ("window", window))
        }
    ).fillna(0.0)
    top = shares.max(axis=1).sort_values(ascending=False).index[:TOP_CATEGORIES]
    shown = shares.loc[top]
    rest = shares.drop(index=top).sum()
    if rest.any():
        shown = pd.concat([shown, rest.to_frame(OTHER_CATEGORY).T])
    return shown.iloc[::-1]  # barh draws bottom-up: the most common category ends on top


def _category_bars(ax, shares: pd.DataFrame, window: pd.Series, reference: pd.Series) -> None:
    y = np.arange(len(shares))
    half = BAR_PAIR_WIDTH / 2
    for side, values, color, offset in (
        ("window", window, WINDOW_COLOR, half),
        ("reference", reference, REFERENCE_COLOR, -half),
    ):
        ax.barh(
            y + offset,
            shares[side],
            BAR_PAIR_WIDTH,
            color=color,
            label=_sided_label(side, values),
        )
    ax.set_yticks(y, [shorten(c) for c in shares.index])
    ax.set(xlabel="share of rows")


def distribution_shift(
    column: str, kind: str, window: Sequence, reference: Sequence, note: str = ""
) -> bytes:
    """One column in the window against the reference: histograms or top-category bars."""
    window, reference = pd.Series(window), pd.Series(reference)
    if kind == "numerical":
        fig, ax = _figure()
        _histograms(ax, window, reference)
        ax.set(xlabel=shorten(column))
    else:
        shares = _category_shares(window, reference)
        fig, ax = _figure(_bar_chart_size(len(shares)))
        _category_bars(ax, shares, window, reference)
    _legend_below(fig, ax, LEGEND_COLUMNS)
    _title(ax, f"{column}: window vs reference" + (f" ({note})" if note else ""))
    return _png(fig)
