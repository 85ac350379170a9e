"""A fitted model bundle compiled for serving: JSON rows to predictions without pandas.

Building a DataFrame and running every ColumnTransformer branch through scikit-learn's
input validation costs milliseconds per request. This reads the fitted state once (imputer
statistics, bin edges, encoder lookup tables) and applies it with plain numpy. Our own
transformers are array-native and called as they are. Tests check that it agrees with
`ModelBundle.predict_frame` on every model family and column role.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np
import pandas as pd
from scipy.special import expit, softmax
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, TargetEncoder
from xgboost import XGBModel

from zenloop.bundle import ModelBundle
from zenloop.config import ColumnRole
from zenloop.features import MISSING_TOKEN, NUMERIC_LIMIT, SignedLog
from zenloop.models import TrendBoostingRegressor

Rows = Sequence[dict[str, Any]]
Block = Callable[[Rows], np.ndarray]
UNKNOWN_PROBE = "\x00zenloop-unseen-category\x00"
NAN = float("nan")
# From here on, a model's own parallel predict is faster; below it, one thread is: thread
# start-up and OpenMP barriers cost milliseconds per call on a busy machine.
PARALLEL_PREDICT_ROWS = 256
# Every feature the model sees stays inside this (a tenth of float32's largest value), so
# no transform of any input can make a model's own input check fail.
FEATURE_LIMIT = float(np.finfo(np.float32).max) / 10


def _floats(rows: Rows, columns: list[str]) -> np.ndarray:
    def number(value: Any) -> float:
        if value is None:
            return NAN
        try:
            return float(value)
        except OverflowError:  # an integer beyond float: as large as a number may be
            return NUMERIC_LIMIT if value > 0 else -NUMERIC_LIMIT
        except (TypeError, ValueError):
            return NAN

    values = np.array([[number(row.get(c)) for c in columns] for row in rows], dtype=float)
    # clipped as FrameCoercer clips in training (NaN, for missing, stays NaN)
    return np.clip(values.reshape(len(rows), len(columns)), -NUMERIC_LIMIT, NUMERIC_LIMIT)


def _impute(imputer: SimpleImputer, X: np.ndarray) -> np.ndarray:
    missing = np.isnan(X)
    filled = np.where(missing, imputer.statistics_, X)
    if imputer.indicator_ is None:
        return filled
    return np.hstack([filled, missing[:, imputer.indicator_.features_].astype(float)])


def _numeric_block(pipeline: Pipeline, columns: list[str]) -> Block:
    imputer = pipeline.steps[0][1]
    log = pipeline.steps[1][1] if len(pipeline.steps) > 1 else None

    def block(rows: Rows) -> np.ndarray:
        out = _impute(imputer, _floats(rows, columns))
        if isinstance(log, SignedLog):
            out = log.transform(out)
        return out

    return block


def _bins_block(pipeline: Pipeline, columns: list[str]) -> Block:
    imputer, binner = pipeline.steps[0][1], pipeline.steps[1][1]
    inner_edges = binner.bin_edges_[0][1:-1]
    width = int(binner.n_bins_[0])

    def block(rows: Rows) -> np.ndarray:
        values = _impute(imputer, _floats(rows, columns))[:, 0]
        out = np.zeros((len(rows), width))
        out[np.arange(len(rows)), np.searchsorted(inner_edges, values, side="right")] = 1.0
        return out

    return block


def _encoder_widths(encoder) -> list[int]:
    if isinstance(encoder, OneHotEncoder):
        return list(encoder._n_features_outs)
    per_feature = len(encoder.classes_) if encoder.target_type_ == "multiclass" else 1
    return [per_feature] * len(encoder.categories_)


def _lookup_block(encoder, columns: list[str]) -> Block:
    """Probe the fitted encoder once per known category (and one unseen value) per column.

    Each column becomes a table whose last row is what an unseen value encodes to; at
    request time a column is one dict lookup per row and one fancy-indexing gather.
    """
    baseline = [str(cats[0]) for cats in encoder.categories_]
    tables: list[tuple[dict[str, int], np.ndarray]] = []
    offset = 0
    for j, width in enumerate(_encoder_widths(encoder)):
        values = [str(v) for v in encoder.categories_[j]] + [UNKNOWN_PROBE]
        probe = pd.DataFrame([baseline] * len(values), columns=columns, dtype=object)
        probe[columns[j]] = values
        encoded = np.asarray(encoder.transform(probe), dtype=float)[:, offset : offset + width]
        tables.append(({v: i for i, v in enumerate(values[:-1])}, encoded))
        offset += width

    def block(rows: Rows) -> np.ndarray:
        parts = []
        for column, (index, encoded) in zip(columns, tables, strict=True):
            unseen = len(encoded) - 1
            positions = [
                index.get(MISSING_TOKEN if (v := row.get(column)) is None else str(v), unseen)
                for row in rows
            ]
            parts.append(encoded[positions])
        return np.hstack(parts)

    return block


def _object_block(transformer, columns: list[str], role_of: dict[str, ColumnRole]) -> Block:
    """Our own transformers take object arrays directly (PairFeature wants numbers)."""
    numeric = all(role_of[c] == ColumnRole.NUMERIC for c in columns)

    def block(rows: Rows) -> np.ndarray:
        if numeric:
            return transformer.transform(_floats(rows, columns))
        values = np.empty((len(rows), len(columns)), dtype=object)
        for i, row in enumerate(rows):
            for j, column in enumerate(columns):
                value = row.get(column)
                if role_of[column] == ColumnRole.DATETIME:
                    values[i, j] = value  # parsed by DateParts itself
                else:  # as FrameCoercer does in training
                    values[i, j] = MISSING_TOKEN if value is None else str(value)
        return transformer.transform(values)

    return block


def _compile_branch(transformer, columns: list[str], role_of: dict[str, ColumnRole]) -> Block:
    if isinstance(transformer, Pipeline) and isinstance(transformer.steps[-1][1], KBinsDiscretizer):
        return _bins_block(transformer, columns)
    if isinstance(transformer, Pipeline):
        return _numeric_block(transformer, columns)
    if isinstance(transformer, OneHotEncoder | TargetEncoder):
        return _lookup_block(transformer, columns)
    return _object_block(transformer, columns, role_of)


# a node's fields side by side (one cache line per visit); ids stored as float64 are exact
THRESHOLD, FEATURE, LEFT, RIGHT, MISSING_LEFT = range(5)


@numba.njit(cache=True, nogil=True)
def _walk_forest(X, nodes, roots, value, out):  # pragma: no cover (machine code)
    """The sum of leaf values over all trees for each row (compiled by numba).

    Tree by tree, so one tree's nodes stay in the cache while every row walks it. A
    missing value (NaN) goes the way the tree learned for it.
    """
    for root in roots:
        for i in range(X.shape[0]):
            node = root
            while True:
                left = int(nodes[node, LEFT])
                if left == node:  # leaves point to themselves
                    break
                x = X[i, int(nodes[node, FEATURE])]
                if x != x:
                    goes_left = nodes[node, MISSING_LEFT] != 0
                else:
                    goes_left = x <= nodes[node, THRESHOLD]
                node = left if goes_left else int(nodes[node, RIGHT])
            for w in range(value.shape[1]):
                out[i, w] += value[node, w]


class FlatForest:
    """All trees of a fitted forest or boosted ensemble in one flat node table, walked by
    compiled code: `base + scale * (sum of the leaves each row reaches)`.

    Calling each tree's predict costs about 12 us of overhead per tree (a forest), or a
    thread pool per call (scikit-learn's histogram boosting: 25 ms for one row of 1,300
    trees), and walking the trees with numpy costs one cache-missing gather per tree
    level; this walks each row down each tree in machine code. It releases the GIL, so
    large batches in worker threads run in parallel.
    """

    def __init__(self, node_count: int, width: int, dtype: type, scale: float, base):
        self.nodes = np.zeros((node_count, 5))
        self.value = np.zeros((node_count, width))
        self.roots = np.zeros(0, dtype=np.intp)
        self.dtype, self.scale, self.base = dtype, scale, base

    @classmethod
    def of_random_forest(cls, trees: list, classifier: bool) -> FlatForest:
        """The mean over the trees, on float32 inputs as the trees compare them."""
        counts = [t.tree_.node_count for t in trees]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.intp)
        width = trees[0].tree_.value.shape[2] if classifier else 1
        forest = cls(int(offsets[-1]), width, np.float32, 1.0 / len(trees), 0.0)
        for estimator, start in zip(trees, offsets[:-1], strict=True):
            tree = estimator.tree_
            rows = slice(start, start + tree.node_count)
            ids = np.arange(tree.node_count)
            leaf = tree.children_left == -1
            forest.nodes[rows, THRESHOLD] = tree.threshold
            forest.nodes[rows, FEATURE] = np.where(leaf, 0, tree.feature)
            forest.nodes[rows, LEFT] = np.where(leaf, ids, tree.children_left) + start
            forest.nodes[rows, RIGHT] = np.where(leaf, ids, tree.children_right) + start
            forest.nodes[rows, MISSING_LEFT] = tree.missing_go_to_left
            values = tree.value[:, 0, :width]
            if classifier:  # leaf class frequencies -> probabilities, as predict_proba does
                values = values / values.sum(axis=1, keepdims=True)
            forest.value[rows] = values
        forest.roots = offsets[:-1].copy()
        return forest

    @classmethod
    def of_histogram_boosting(cls, estimator) -> FlatForest | None:
        """The raw score (the baseline plus every tree's leaf, one column per class that
        trees are grown for), on float64 inputs; None for trees with categorical splits."""
        trees = [(k, tree.nodes) for stage in estimator._predictors for k, tree in enumerate(stage)]
        if any(nodes["is_categorical"].any() for _, nodes in trees):
            return None
        offsets = np.concatenate([[0], np.cumsum([len(n) for _, n in trees])]).astype(np.intp)
        base = np.asarray(estimator._baseline_prediction, dtype=float).reshape(-1)
        forest = cls(int(offsets[-1]), len(base), np.float64, 1.0, base)
        for (k, nodes), start in zip(trees, offsets[:-1], strict=True):
            rows = slice(start, start + len(nodes))
            ids = np.arange(len(nodes))
            leaf = nodes["is_leaf"].astype(bool)
            forest.nodes[rows, THRESHOLD] = nodes["num_threshold"]
            forest.nodes[rows, FEATURE] = np.where(leaf, 0, nodes["feature_idx"])
            forest.nodes[rows, LEFT] = np.where(leaf, ids, nodes["left"]) + start
            forest.nodes[rows, RIGHT] = np.where(leaf, ids, nodes["right"]) + start
            forest.nodes[rows, MISSING_LEFT] = nodes["missing_go_to_left"]
            forest.value[rows, k] = np.where(leaf, nodes["value"], 0.0)
        forest.roots = offsets[:-1].copy()
        return forest

    def predict(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=self.dtype)
        out = np.zeros((len(X), self.value.shape[1]))
        _walk_forest(X, self.nodes, self.roots, self.value, out)
        return self.base + self.scale * out


class ScaledLinear:
    """A fitted standard scaler and linear model (the linear part of a trend model) folded
    into one weight vector and offset: scikit-learn's predict validates its input on every
    call, and scaling first would cost two more array passes per request."""

    def __init__(self, pipeline: Pipeline):
        scaler, linear = pipeline.named_steps["scale"], pipeline.named_steps["ridge"]
        self.weights = np.asarray(linear.coef_, dtype=float) / scaler.scale_
        self.offset = float(linear.intercept_) - float(scaler.mean_ @ self.weights)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self.weights + self.offset


class CompiledModel:
    """Predicts from a list of JSON-like rows; agrees with the bundle it was built from."""

    def __init__(self, bundle: ModelBundle):
        self.bundle = bundle
        self.schema = bundle.schema
        role_of = {c.name: c.role for c in self.schema.columns}
        columns = bundle.pipeline.named_steps["features"].named_steps["columns"]
        self._blocks: list[tuple[Block, slice]] = [
            (_compile_branch(transformer, list(cols), role_of), columns.output_indices_[name])
            for name, transformer, cols in columns.transformers_
            if name != "remainder" and transformer != "drop"
        ]
        self.n_features = sum(s.stop - s.start for _, s in self._blocks)
        self._estimator = bundle.pipeline.named_steps["model"]
        # A forest's own predict starts a joblib pool per call (about 7 ms for one row).
        self._forest = None
        self._boosted = None  # histogram boosting: raw scores, through its link function
        self._linear: ScaledLinear | None = None  # a trend model's part beside its trees
        if isinstance(self._estimator, RandomForestRegressor | RandomForestClassifier):
            self._forest = FlatForest.of_random_forest(
                self._estimator.estimators_, bool(self.schema.classes)
            )
        elif isinstance(
            self._estimator, HistGradientBoostingRegressor | HistGradientBoostingClassifier
        ):
            self._boosted = FlatForest.of_histogram_boosting(self._estimator)
        elif isinstance(self._estimator, TrendBoostingRegressor):
            # the trees walked as above, plus the linear part: not a thread pool per row
            self._boosted = FlatForest.of_histogram_boosting(self._estimator.booster_)
            self._linear = ScaledLinear(self._estimator.linear_)
        self._booster = (
            self._estimator.get_booster() if isinstance(self._estimator, XGBModel) else None
        )
        self._booster_one_thread = None
        if self._booster is not None:
            self._booster_one_thread = self._booster.copy()
            self._booster_one_thread.set_param({"nthread": 1})
        self.classes = list(self.schema.classes or [])

    def transform(self, rows: Rows) -> np.ndarray:
        out = np.empty((len(rows), self.n_features))
        for block, columns in self._blocks:
            out[:, columns] = block(rows)
        return np.clip(out, -FEATURE_LIMIT, FEATURE_LIMIT, out=out)

    def _scores(self, X: np.ndarray) -> np.ndarray:
        """Regression values, or class probabilities of shape (n, k)."""
        if self._booster is not None:
            small = len(X) < PARALLEL_PREDICT_ROWS
            booster = self._booster_one_thread if small else self._booster
            raw = np.asarray(booster.inplace_predict(X, validate_features=False))
            if not self.classes:
                return raw.reshape(len(X))
            return np.column_stack([1 - raw, raw]) if raw.ndim == 1 else raw
        if self._forest is not None and len(X) < PARALLEL_PREDICT_ROWS:
            scores = self._forest.predict(X)
            return scores[:, 0] if not self.classes else scores
        if self._boosted is not None and len(X) < PARALLEL_PREDICT_ROWS:
            raw = self._boosted.predict(X)
            if self._linear is not None:
                return self._linear.predict(X) + raw[:, 0]
            if not self.classes:
                return raw[:, 0]
            if raw.shape[1] == 1:  # binary: one score, the positive class's log-odds
                positive = expit(raw[:, 0])
                return np.column_stack([1 - positive, positive])
            return softmax(raw, axis=1)
        if not self.classes:
            return np.asarray(self._estimator.predict(X), dtype=float)
        return self._estimator.predict_proba(X)

    def predict(self, rows: Rows) -> tuple[list[Any], list[dict[str, float]] | None]:
        """Predictions (class labels for classifiers) and per-class probabilities."""
        scores = self._scores(self.transform(rows))
        if not self.classes:
            return [float(v) for v in scores], None
        labels = [self.classes[i] for i in scores.argmax(axis=1)]
        names = [str(c) for c in self.classes]
        probabilities = [dict(zip(names, map(float, row), strict=True)) for row in scores]
        return labels, probabilities
