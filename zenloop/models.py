"""Candidate estimators by family, with defaults that train well on a 2-core machine."""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from xgboost import XGBClassifier, XGBRegressor

from zenloop.config import CandidateConfig, ModelFamily, Task

# family -> (regressor, classifier, default params shared by both)
FAMILIES: dict[ModelFamily, tuple[type, type, dict[str, Any]]] = {
    "xgboost": (
        XGBRegressor,
        XGBClassifier,
        dict(
            n_estimators=400,
            learning_rate=0.06,
            max_depth=7,
            subsample=0.9,
            colsample_bytree=0.8,
            tree_method="hist",
            n_jobs=2,
        ),
    ),
    "hist_gradient_boosting": (
        HistGradientBoostingRegressor,
        HistGradientBoostingClassifier,
        dict(max_iter=300, learning_rate=0.08, early_stopping=False),
    ),
    "random_forest": (
        RandomForestRegressor,
        RandomForestClassifier,
        dict(n_estimators=80, max_depth=16, min_samples_leaf=3, max_features=0.5, n_jobs=2),
    ),
    "linear": (Ridge, LogisticRegression, {}),
}
LINEAR_CLASSIFIER_DEFAULTS = dict(max_iter=2_000)


def build_estimator(candidate: CandidateConfig, task: Task, seed: int) -> Any:
    """The final estimator of a candidate; linear models get feature scaling in front."""
    regressor, classifier, defaults = FAMILIES[candidate.family]
    cls = regressor if task == "regression" else classifier
    params = dict(defaults)
    if candidate.family == "linear" and task == "classification":
        params.update(LINEAR_CLASSIFIER_DEFAULTS)
    if "random_state" in cls().get_params():
        params["random_state"] = seed
    params.update(candidate.params)
    estimator = cls(**params)
    if candidate.family == "linear":
        return Pipeline([("scale", StandardScaler()), ("linear", estimator)])
    return estimator
