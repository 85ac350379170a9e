"""Split, fit and evaluate one candidate; plain Python, so tests need no ZenML."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.inspection import permutation_importance
from sklearn.model_selection import (
    ParameterSampler,
    check_cv,
    cross_val_score,
    train_test_split,
)
from sklearn.pipeline import Pipeline

from zenloop import plots
from zenloop.bundle import ModelBundle
from zenloop.config import CandidateConfig, FeatureConfig, GateConfig, SplitConfig
from zenloop.features import build_preprocessor
from zenloop.gates import gate_failures
from zenloop.metrics import classification_metrics, gap_pct, regression_metrics
from zenloop.models import build_estimator
from zenloop.schema import FeatureSchema

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
IMPORTANCE_SAMPLE = 1_000
SEARCH_SCORING = {"regression": "neg_root_mean_squared_error", "classification": "roc_auc_ovr"}


@dataclass
class CandidateResult:
    name: str
    family: str
    params: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    gap_pct: float
    gate_failures: list[str]
    fit_seconds: float
    plots: dict[str, bytes] = field(default_factory=dict, repr=False)
    mlflow_run_id: str | None = None
    model_uri: str | None = None

    @property
    def passed(self) -> bool:
        return not self.gate_failures


def split_frame(
    frame: pd.DataFrame, schema: FeatureSchema, config: SplitConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Seeded train/validation/test split, stratified on the label for classification."""
    labels = frame[schema.target] if schema.task == "classification" else None
    rest, test = train_test_split(
        frame, test_size=config.test_size, random_state=config.seed, stratify=labels
    )
    share = config.validation_size / (1 - config.test_size)
    rest_labels = rest[schema.target] if labels is not None else None
    train, validation = train_test_split(
        rest, test_size=share, random_state=config.seed, stratify=rest_labels
    )
    return (
        train.reset_index(drop=True),
        validation.reset_index(drop=True),
        test.reset_index(drop=True),
    )


def labels_of(bundle: ModelBundle, frame: pd.DataFrame) -> np.ndarray:
    target = frame[bundle.schema.target]
    return bundle.encode_labels(target) if bundle.is_classifier else target.to_numpy(float)


def evaluate(bundle: ModelBundle, frame: pd.DataFrame) -> dict[str, float]:
    y = labels_of(bundle, frame)
    predicted, proba = bundle.predict_raw(frame)
    if proba is None:
        return regression_metrics(y, predicted)
    return classification_metrics(y, predicted, proba, len(bundle.schema.classes or []))


Progress = Callable[[str], None]  # told what the fit is doing, e.g. a search iteration


def _fit(
    pipeline: Pipeline, candidate: CandidateConfig, X: pd.DataFrame, y, task, seed, on_progress
) -> tuple[Pipeline, dict[str, Any]]:
    """Fit as configured; with `search`, a seeded randomized search with cross-validation.

    The search is a loop of its own rather than RandomizedSearchCV so that each
    iteration can be reported while it runs; it samples and splits the same way.
    """
    if candidate.search is None:
        return pipeline.fit(X, y), {}
    prefix = "model__linear__" if candidate.family == "linear" else "model__"
    space = {prefix + k: v for k, v in candidate.search.param_distributions.items()}
    folds = check_cv(candidate.search.cv, y, classifier=task == "classification")
    sampled = list(ParameterSampler(space, candidate.search.n_iter, random_state=seed))
    best, best_score = sampled[0], -np.inf
    for i, params in enumerate(sampled, start=1):
        trial = clone(pipeline).set_params(**params)
        score = float(np.mean(cross_val_score(trial, X, y, cv=folds, scoring=SEARCH_SCORING[task])))
        if score > best_score:
            best, best_score = params, score
        on_progress(f"{candidate.name}: search {i}/{len(sampled)}, best cv {best_score:.4f}")
    picked = {k.removeprefix(prefix): v for k, v in best.items()}
    logger.info("%s: search picked %s (cv score %.4f)", candidate.name, picked, best_score)
    return clone(pipeline).set_params(**best).fit(X, y), picked


def _importances(bundle: ModelBundle, validation: pd.DataFrame, seed: int) -> tuple[list, Any]:
    features = bundle.pipeline.named_steps["features"]
    model = bundle.pipeline.named_steps["model"]
    names = list(features.named_steps["columns"].get_feature_names_out())
    final = model[-1] if isinstance(model, Pipeline) else model
    if hasattr(final, "feature_importances_"):
        return names, np.asarray(final.feature_importances_)
    if hasattr(final, "coef_"):
        return names, np.abs(np.atleast_2d(final.coef_)).mean(axis=0)
    sample = validation.sample(min(len(validation), IMPORTANCE_SAMPLE), random_state=seed)
    result = permutation_importance(
        model,
        features.transform(sample),
        labels_of(bundle, sample),
        n_repeats=2,
        random_state=seed,
    )
    return names, result.importances_mean


def _plots(bundle: ModelBundle, test: pd.DataFrame, validation: pd.DataFrame, seed: int):
    name = bundle.candidate
    y = labels_of(bundle, test)
    predicted, proba = bundle.predict_raw(test)
    figures = {}
    if proba is None:
        figures["predicted_vs_true"] = plots.predicted_vs_true(y, predicted, name)
        figures["residuals"] = plots.residuals(y, predicted, name)
    else:
        labels = [str(c) for c in bundle.schema.classes or []]
        figures["confusion_matrix"] = plots.confusion(y, predicted, labels, name)
        figures["roc"] = plots.roc(y, proba, labels, name)
    names, importances = _importances(bundle, validation, seed)
    figures["feature_importance"] = plots.feature_importance(names, importances, name)
    return figures


def fit_candidate(
    candidate: CandidateConfig,
    schema: FeatureSchema,
    features: FeatureConfig,
    gates: GateConfig,
    splits: dict[str, pd.DataFrame],
    seed: int,
    on_progress: Progress = lambda note: None,
) -> tuple[ModelBundle, CandidateResult]:
    """Fit the feature pipeline and model on train only, then score every split."""
    started = time.perf_counter()
    pipeline = Pipeline(
        [
            ("features", build_preprocessor(schema, features)),
            ("model", build_estimator(candidate, schema.task, seed)),
        ]
    )
    bundle = ModelBundle(pipeline=pipeline, schema=schema, candidate=candidate.name)
    train = splits["train"]
    fitted, searched = _fit(
        pipeline, candidate, train, labels_of(bundle, train), schema.task, seed, on_progress
    )
    bundle.pipeline = fitted
    fit_seconds = time.perf_counter() - started
    bundle.metrics = {split: evaluate(bundle, splits[split]) for split in SPLITS}
    gap = gap_pct(bundle.metrics["train"], bundle.metrics["test"], schema.task)
    result = CandidateResult(
        name=candidate.name,
        family=candidate.family,
        params={**candidate.params, **searched},
        metrics=bundle.metrics,
        gap_pct=gap,
        gate_failures=gate_failures(bundle.metrics["test"], gap, schema.task, gates),
        fit_seconds=fit_seconds,
        plots=_plots(bundle, splits["test"], splits["validation"], seed),
    )
    logger.info(
        "%s: fitted in %.1fs, test %s, gates %s",
        candidate.name,
        fit_seconds,
        {k: round(v, 4) for k, v in bundle.metrics["test"].items()},
        "passed" if result.passed else f"failed ({'; '.join(result.gate_failures)})",
    )
    return bundle, result
