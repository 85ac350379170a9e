"""Candidate estimators by family, with defaults that adapt to the task and the data.

A family names one kind of model for both tasks (see `FAMILIES[...].meaning`). Its
defaults scale with the training rows (capacity, tree counts), weigh rare classes up,
and boosting families stop early on the validation split. Anything a candidate's
`params` sets wins over these defaults.
"""

from __future__ import annotations

import logging
import math
import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from xgboost import XGBClassifier, XGBModel, XGBRegressor

from zenloop.config import CandidateConfig, ModelFamily, Task

logger = logging.getLogger(__name__)

# Training-row thresholds between small, medium and large data; capacity grows with rows.
SMALL_ROWS = 5_000
LARGE_ROWS = 30_000
# Boosting: a ceiling on rounds; early stopping on the validation split picks the count.
MAX_BOOSTING_ROUNDS = 3_000
EARLY_STOPPING_ROUNDS = 50
# Above this majority/minority ratio, classes are weighted by the square root of the
# balanced weight: it lifts recall of rare classes without wrecking probabilities.
IMBALANCE_RATIO = 3.0
THREADS = 2
# A round count set in params, without a learning rate, gets rate x rounds >= this.
MIN_RATE_X_ROUNDS = 12.0
MAX_LEARNING_RATE = 0.3
ROUNDS_PARAM: dict[str, str] = {"xgboost": "n_estimators", "hist_gradient_boosting": "max_iter"}
# The `target_transform` param: fit a regressor on log1p(y) and predict expm1 of it.
LOG_TARGET = "log"


@dataclass(frozen=True)
class DataShape:
    """What the defaults adapt to: training rows, and class counts for classifiers."""

    n_rows: int
    class_counts: tuple[int, ...] = ()

    @property
    def imbalance(self) -> float:
        """Majority / minority class rows (1.0 for regression or balanced classes)."""
        if len(self.class_counts) < 2 or min(self.class_counts) == 0:
            return 1.0
        return max(self.class_counts) / min(self.class_counts)

    def class_weights(self) -> dict[int, float] | None:
        """Tempered balanced weights per encoded class, or None when classes are balanced."""
        if self.imbalance < IMBALANCE_RATIO:
            return None
        total, k = sum(self.class_counts), len(self.class_counts)
        return {i: math.sqrt(total / (k * count)) for i, count in enumerate(self.class_counts)}

    def tier(self, small: Any, medium: Any, large: Any) -> Any:
        if self.n_rows < SMALL_ROWS:
            return small
        return medium if self.n_rows < LARGE_ROWS else large


class TrendBoostingRegressor(RegressorMixin, BaseEstimator):
    """A ridge regression on scaled features, then histogram gradient boosting on what it
    leaves. Beyond the range of its training rows the trees hold still, as trees do, but
    the linear part goes on following the trend; inside it, the trees fit what is not
    linear. The boosting stops early on validation residuals when given them."""

    def __init__(
        self,
        alpha: float = 1.0,
        learning_rate: float = 0.06,
        max_iter: int = MAX_BOOSTING_ROUNDS,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 1.0,
        early_stopping: bool = True,
        n_iter_no_change: int = EARLY_STOPPING_ROUNDS,
        random_state: int | None = None,
    ):
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    def fit(self, X, y, sample_weight=None, X_val=None, y_val=None) -> TrendBoostingRegressor:
        y = np.asarray(y, dtype=float)
        self.linear_ = Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=self.alpha))])
        self.linear_.fit(X, y, ridge__sample_weight=sample_weight)
        stop = self.early_stopping and X_val is not None
        self.booster_ = HistGradientBoostingRegressor(
            learning_rate=self.learning_rate,
            max_iter=self.max_iter,
            max_leaf_nodes=self.max_leaf_nodes,
            min_samples_leaf=self.min_samples_leaf,
            l2_regularization=self.l2_regularization,
            early_stopping=stop,
            n_iter_no_change=self.n_iter_no_change,
            validation_fraction=None,
            random_state=self.random_state,
        )
        residual = y - self.linear_.predict(X)
        extra = {}
        if stop:
            y_val = np.asarray(y_val, dtype=float)
            extra = {"X_val": X_val, "y_val": y_val - self.linear_.predict(X_val)}
        self.booster_.fit(X, residual, sample_weight=sample_weight, **extra)
        self.n_iter_ = self.booster_.n_iter_
        return self

    def predict(self, X) -> np.ndarray:
        return self.linear_.predict(X) + self.booster_.predict(X)


@dataclass(frozen=True)
class Family:
    regressor: type
    classifier: type | None  # None: the family is for regression only
    meaning: dict[str, str]  # task -> what the family is for that task
    early_stopping: bool = False
    extrapolates: bool = False  # follows a trend past the range of its training rows
    # params that mean the same thing under another name for the other task: (name, task)
    # -> (translated name, how the value converts)
    synonyms: dict[tuple[str, str], tuple[str, Any]] = field(default_factory=dict)
    portfolio: tuple[dict[str, Any], ...] = ()  # the default search, tried in this order


def _inverse(value: float) -> float:
    return 1.0 / float(value)


FAMILIES: dict[ModelFamily, Family] = {
    "xgboost": Family(
        XGBRegressor,
        XGBClassifier,
        {
            "regression": "XGBRegressor (squared error), early-stopped on the validation split",
            "classification": "XGBClassifier (log-loss), early-stopped on the validation split",
        },
        early_stopping=True,
        portfolio=(
            {},
            {"target_transform": LOG_TARGET},
            {"max_depth": 8, "min_child_weight": 1, "colsample_bytree": 0.6},
            {"max_depth": 4, "min_child_weight": 5, "reg_lambda": 5.0},
            {"max_depth": 10, "min_child_weight": 3, "subsample": 0.7, "reg_alpha": 1.0},
        ),
    ),
    "hist_gradient_boosting": Family(
        HistGradientBoostingRegressor,
        HistGradientBoostingClassifier,
        {
            "regression": "HistGradientBoostingRegressor, early-stopped on the validation split",
            "classification": "HistGradientBoostingClassifier, early-stopped on the "
            "validation split",
        },
        early_stopping=True,
        portfolio=(
            {},
            {"target_transform": LOG_TARGET},
            {"max_leaf_nodes": 63, "min_samples_leaf": 10},
            {"max_leaf_nodes": 15, "l2_regularization": 5.0},
        ),
    ),
    "random_forest": Family(
        RandomForestRegressor,
        RandomForestClassifier,
        {
            "regression": "RandomForestRegressor",
            "classification": "RandomForestClassifier",
        },
    ),
    "linear": Family(
        Ridge,
        LogisticRegression,
        {
            "regression": "Ridge on scaled features; `alpha` is the L2 penalty",
            "classification": "LogisticRegression on scaled features; `C` is the inverse L2 "
            "penalty (an `alpha` given here becomes C = 1/alpha)",
        },
        synonyms={
            ("alpha", "classification"): ("C", _inverse),
            ("C", "regression"): ("alpha", _inverse),
        },
        extrapolates=True,
        portfolio=(
            {},
            {"target_transform": LOG_TARGET},
            {"alpha": 10.0},
            {"alpha": 0.1},
            {"alpha": 10.0, "target_transform": LOG_TARGET},
        ),
    ),
    "trend": Family(
        TrendBoostingRegressor,
        None,
        {
            "regression": "Ridge on scaled features plus histogram boosting on its residuals, "
            "early-stopped on the validation split: it follows a trend past its training rows",
        },
        early_stopping=True,
        extrapolates=True,
        portfolio=({}, {"target_transform": LOG_TARGET}),
    ),
}


def supports(family: ModelFamily, task: Task) -> bool:
    """Whether the family has a model for this task (`trend` is for regression only)."""
    return task == "regression" or FAMILIES[family].classifier is not None


def default_params(family: ModelFamily, task: Task, shape: DataShape) -> dict[str, Any]:
    """Defaults for this family, task and data size; `params` in the config override them."""
    weights = shape.class_weights() if task == "classification" else None
    if family == "xgboost":
        params: dict[str, Any] = dict(
            n_estimators=MAX_BOOSTING_ROUNDS,
            early_stopping_rounds=EARLY_STOPPING_ROUNDS,
            learning_rate=shape.tier(0.03, 0.05, 0.08),
            max_depth=shape.tier(4, 6, 7),
            min_child_weight=shape.tier(1, 2, 3),
            subsample=0.8,
            colsample_bytree=0.8,
            tree_method="hist",
            n_jobs=THREADS,
        )
        if weights is not None and len(shape.class_counts) == 2:
            params["scale_pos_weight"] = weights[1] / weights[0]
        return params
    if family == "hist_gradient_boosting":
        params = dict(
            max_iter=MAX_BOOSTING_ROUNDS,
            early_stopping=True,
            n_iter_no_change=EARLY_STOPPING_ROUNDS,
            learning_rate=shape.tier(0.04, 0.06, 0.1),
            max_leaf_nodes=shape.tier(15, 31, 31),
            min_samples_leaf=shape.tier(10, 20, 40),
            l2_regularization=1.0,
        )
        if weights is not None:
            params["class_weight"] = weights
        return params
    if family == "random_forest":
        params = dict(
            n_estimators=shape.tier(300, 150, 80),
            min_samples_leaf=shape.tier(1, 2, 3),
            max_features=0.5 if task == "regression" else "sqrt",
            max_samples=shape.tier(None, None, 0.5),
            max_depth=shape.tier(None, None, 16),
            n_jobs=THREADS,
        )
        if weights is not None:
            params["class_weight"] = weights
        return params
    if family == "trend":
        return dict(
            alpha=1.0,
            learning_rate=shape.tier(0.04, 0.06, 0.1),
            max_leaf_nodes=shape.tier(15, 31, 31),
            min_samples_leaf=shape.tier(10, 20, 40),
        )
    if task == "regression":
        return dict(alpha=1.0)
    params = dict(C=1.0, max_iter=2_000)
    if weights is not None:
        params["class_weight"] = weights
    return params


def task_params(candidate: CandidateConfig, task: Task) -> dict[str, Any]:
    """The candidate's params in the vocabulary of the estimator this task uses."""
    family = FAMILIES[candidate.family]
    params = {}
    for name, value in candidate.params.items():
        synonym = family.synonyms.get((name, task))
        if synonym is not None:
            name, convert = synonym
            value = convert(value)
        params[name] = value
    return params


def _check_params(candidate: CandidateConfig, cls: type, params: dict[str, Any]) -> None:
    """Unknown params fail with the candidate's name and the valid ones, not a TypeError."""
    valid = set(cls().get_params()) | {"target_transform"}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ValueError(
            f"candidate {candidate.name!r} ({candidate.family}, {cls.__name__}): unknown "
            f"params {unknown}; valid params are {sorted(valid)}"
        )


def _fit_rate_to_rounds(family: ModelFamily, params: dict[str, Any], given: dict) -> None:
    """A round count given without a learning rate gets one that can use those rounds.

    The default rates suit thousands of early-stopped rounds; 40 rounds at 0.03 would
    barely leave the mean. Rate x rounds is kept at least `MIN_RATE_X_ROUNDS`.
    """
    rounds_key = ROUNDS_PARAM.get(family)
    if rounds_key is None or rounds_key not in given or "learning_rate" in given:
        return
    rate = MIN_RATE_X_ROUNDS / max(1, int(given[rounds_key]))
    params["learning_rate"] = min(MAX_LEARNING_RATE, max(params["learning_rate"], rate))


def build_estimator(
    candidate: CandidateConfig, task: Task, seed: int, shape: DataShape | None = None
) -> Any:
    """The final estimator of a candidate; linear models get feature scaling in front.

    `target_transform: log` (regression, targets above -1) fits on log1p(y).
    """
    family = FAMILIES[candidate.family]
    cls = family.regressor if task == "regression" else family.classifier
    if cls is None:
        raise ValueError(
            f"candidate {candidate.name!r}: family {candidate.family!r} is for regression"
        )
    shape = shape or DataShape(n_rows=LARGE_ROWS)
    params = default_params(candidate.family, task, shape)
    given = task_params(candidate, task)
    params.update(given)
    _fit_rate_to_rounds(candidate.family, params, given)
    _check_params(candidate, cls, params)
    transform = params.pop("target_transform", None)
    if "random_state" in cls().get_params():
        params.setdefault("random_state", seed)
    if candidate.family == "hist_gradient_boosting" and params.get("early_stopping") is True:
        params.setdefault("validation_fraction", None)  # the validation split is given at fit
    estimator = cls(**params)
    if candidate.family == "linear":
        estimator = Pipeline([("scale", StandardScaler()), ("linear", estimator)])
    if transform is not None:
        if transform != LOG_TARGET or task != "regression":
            raise ValueError(
                f"candidate {candidate.name!r}: target_transform {transform!r} is only "
                f"{LOG_TARGET!r}, for regression"
            )
        estimator = TransformedTargetRegressor(
            regressor=estimator, func=np.log1p, inverse_func=np.expm1, check_inverse=False
        )
    return estimator


def _inner(estimator: Any) -> Any:
    if isinstance(estimator, TransformedTargetRegressor):
        return estimator.regressor
    return estimator


def target_for(estimator: Any, y: np.ndarray) -> np.ndarray:
    """The target as the inner model sees it (log1p under a log target transform)."""
    if isinstance(estimator, TransformedTargetRegressor):
        return estimator.func(y)
    return y


def early_stopping_fit_params(estimator: Any, X_val: Any, y_val: np.ndarray) -> dict[str, Any]:
    """Fit params that hand the validation split to a model that stops early on it."""
    model = _inner(estimator)
    y_val = target_for(estimator, y_val)
    if isinstance(model, XGBModel) and model.get_params().get("early_stopping_rounds"):
        return {"eval_set": [(X_val, y_val)], "verbose": False}
    if (
        isinstance(model, HistGradientBoostingRegressor | HistGradientBoostingClassifier)
        and model.early_stopping is True
        and model.validation_fraction is None
    ):
        return {"X_val": X_val, "y_val": y_val}
    if isinstance(model, TrendBoostingRegressor) and model.early_stopping:
        return {"X_val": X_val, "y_val": y_val}
    return {}


def weight_fit_params(estimator: Any, weights: np.ndarray | None) -> dict[str, Any]:
    """Fit params that give the training rows these weights (None: alike), whatever wraps
    the model: a log target, or scaling in front of a linear model."""
    if weights is None:
        return {}
    model = _inner(estimator)
    if isinstance(model, Pipeline):
        return {f"{model.steps[-1][0]}__sample_weight": weights}
    return {"sample_weight": weights}


def openmp_threads() -> AbstractContextManager:
    """One OpenMP thread while the machine is busy, else the default.

    OpenMP workers busy-wait between parallel regions; when other processes hold the
    cores, HistGradientBoosting with two threads ran 30x slower here than with one. The
    fitted model is the same either way.
    """
    cores = os.cpu_count() or 1
    if os.getloadavg()[0] >= cores:
        return threadpool_limits(limits=1, user_api="openmp")
    return nullcontext()


def fit_estimator(estimator: Any, X: Any, y: np.ndarray, fit_params: dict[str, Any]) -> Any:
    """Fit; an early-stopped XGBoost keeps only its best rounds, so every predict path
    (including the compiled serving path's booster) uses the same trees."""
    estimator.fit(X, y, **fit_params)
    model = _inner(estimator)
    if isinstance(estimator, TransformedTargetRegressor):
        model = estimator.regressor_
    if isinstance(model, XGBModel) and "eval_set" in fit_params:
        booster = model.get_booster()
        best = booster.best_iteration
        if best + 1 < booster.num_boosted_rounds():
            trimmed = booster[: best + 1]
            trimmed.set_attr(best_iteration=str(best), best_score=booster.attr("best_score"))
            model._Booster = trimmed
    return estimator


def rounds_used(estimator: Any) -> tuple[int, int] | None:
    """(rounds kept, ceiling) for a boosting model; None for other families."""
    model = _inner(estimator)
    if isinstance(estimator, TransformedTargetRegressor) and hasattr(estimator, "regressor_"):
        model = estimator.regressor_
    if isinstance(model, XGBModel):
        return model.get_booster().num_boosted_rounds(), int(model.n_estimators)
    if isinstance(model, HistGradientBoostingRegressor | HistGradientBoostingClassifier):
        return int(model.n_iter_), int(model.max_iter)
    if isinstance(model, TrendBoostingRegressor) and hasattr(model, "n_iter_"):
        return int(model.n_iter_), int(model.max_iter)
    return None


def fixed_rounds(estimator: Any, scale: float) -> dict[str, Any]:
    """Params that refit a boosting model for its best rounds x `scale`, without stopping,
    at the learning rate those rounds were counted at."""
    model = estimator.regressor_ if isinstance(estimator, TransformedTargetRegressor) else estimator
    if isinstance(model, XGBModel):
        best = model.get_booster().num_boosted_rounds()
        return {
            "n_estimators": max(1, math.ceil(best * scale)),
            "early_stopping_rounds": None,
            "learning_rate": model.get_params()["learning_rate"],
        }
    if isinstance(
        model,
        HistGradientBoostingRegressor | HistGradientBoostingClassifier | TrendBoostingRegressor,
    ):
        best = model.n_iter_ - model.n_iter_no_change  # the rounds after the best did not help
        return {
            "max_iter": max(1, math.ceil(best * scale)),
            "early_stopping": False,
            "learning_rate": model.learning_rate,
        }
    return {}
