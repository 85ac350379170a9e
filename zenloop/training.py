"""Split, fit and evaluate one candidate; plain Python, so tests need no ZenML."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.metrics import log_loss
from sklearn.model_selection import ParameterSampler, TimeSeriesSplit, check_cv, train_test_split
from sklearn.pipeline import Pipeline

from zenloop import plots
from zenloop.bundle import ModelBundle
from zenloop.config import (
    CandidateConfig,
    ColumnRole,
    FeatureConfig,
    GateConfig,
    HistoryConfig,
    SplitConfig,
    SplitOrder,
    Task,
)
from zenloop.features import build_preprocessor
from zenloop.gates import gate_failures
from zenloop.history import HistoryChoice, apply_recipe, recipes_to_try
from zenloop.metrics import (
    Metric,
    classification_metrics,
    gap_pct,
    regression_metrics,
    score,
)
from zenloop.models import (
    EARLY_STOPPING_ROUNDS,
    FAMILIES,
    DataShape,
    build_estimator,
    early_stopping_fit_params,
    fit_estimator,
    fixed_rounds,
    openmp_threads,
    rounds_used,
    supports,
    weight_fit_params,
)
from zenloop.schema import FeatureSchema
from zenloop.time_order import missing_classes, ordered_split

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
IMPORTANCE_SAMPLE = 1_000
PERMUTATION_REPEATS = 2
# a fit without boosting rounds counts as this many in the search budget
UNROUNDED_FIT_ROUNDS = 100
PAIR_BRANCHES = ("ratio_", "product_")  # a ratio or product belongs to neither column alone
LOG_TARGET_FLOOR = -1.0  # log1p needs targets above it


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
    early_stopped: bool = False  # the validation split chose the number of rounds
    rounds_used: int | None = None  # boosting rounds kept, of at most `rounds_max`
    rounds_max: int | None = None

    @property
    def passed(self) -> bool:
        return not self.gate_failures


def split_frame(
    frame: pd.DataFrame, schema: FeatureSchema, config: SplitConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test rows (see `split_in_order`)."""
    train, validation, test, _ = split_in_order(frame, schema, config)
    return train, validation, test


def split_in_order(
    frame: pd.DataFrame, schema: FeatureSchema, config: SplitConfig
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, SplitOrder]:
    """Train, validation and test rows, and the order that split them.

    In time order (the schema's time column, or the file's order) the latest rows are the
    test split and the ones before them the validation split. Otherwise a seeded shuffle,
    stratified on the label for classification. An ordered split whose training rows lack
    a class (it occurs only later) falls back to the shuffle, with a warning.
    """
    order = config.resolved_order(schema.time_column)
    if order != "random":
        time_column = schema.time_column if order == "time" else None
        train, validation, test = ordered_split(frame, time_column, config)
        if not (absent := missing_classes(train, schema)):
            return train, validation, test, order
        logger.warning(
            "classes %s occur only in the latest rows: the split is random instead", absent
        )
    labels = frame[schema.target] if schema.task == "classification" else None
    n_test, n_val = (
        config.test_rows or config.test_size,
        config.validation_rows or config.validation_size,
    )
    rest, test = train_test_split(
        frame, test_size=n_test, random_state=config.seed, stratify=labels
    )
    share = n_val if isinstance(n_val, int) else n_val / (1 - config.test_size)
    rest_labels = rest[schema.target] if labels is not None else None
    train, validation = train_test_split(
        rest, test_size=share, random_state=config.seed, stratify=rest_labels
    )
    return (
        train.reset_index(drop=True),
        validation.reset_index(drop=True),
        test.reset_index(drop=True),
        "random",
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


def data_shape(bundle: ModelBundle, y: np.ndarray) -> DataShape:
    """Training rows and, for classifiers, rows per encoded class: what defaults adapt to."""
    if not bundle.is_classifier:
        return DataShape(n_rows=len(y))
    counts = np.bincount(np.asarray(y, dtype=int), minlength=len(bundle.schema.classes or []))
    return DataShape(n_rows=len(y), class_counts=tuple(int(c) for c in counts))


@dataclass
class _Fitted:
    """A fitted pipeline, the fit params its model got, and its validation score."""

    pipeline: Pipeline
    early_stopped: bool
    score: float = -np.inf


def _validation_score(model: Any, X: np.ndarray, y: np.ndarray, metric: Metric) -> float:
    """The primary metric on held-out rows, signed so that higher is better."""
    if metric.task == "regression":
        value = score(metric, y, model.predict(X), None)
    else:
        proba = model.predict_proba(X)
        value = score(metric, y, proba.argmax(axis=1), proba)
    return value if metric.higher_is_better else -value


def _fit_model(
    model: Any,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    weights: np.ndarray | None = None,
) -> bool:
    """Fit on training rows (weighted by age where a history recipe says so), stopping
    early on the validation rows where the model can.

    Returns whether the validation split chose its number of rounds.
    """
    fit_params = early_stopping_fit_params(model, X_val, y_val)
    fit_estimator(model, X, y, {**fit_params, **weight_fit_params(model, weights)})
    return bool(fit_params)


@dataclass(frozen=True)
class _Job:
    """One candidate's fit: its config, the unfitted features, the rows and what they are."""

    candidate: CandidateConfig
    features: Pipeline
    X: pd.DataFrame
    y: np.ndarray
    validation: pd.DataFrame
    y_val: np.ndarray
    metric: Metric
    seed: int
    shape: DataShape
    weights: np.ndarray | None = None  # per training row, from the history recipe
    ordered: bool = False  # the rows are in time order

    @property
    def task(self) -> Task:
        return self.metric.task

    def estimator(self, params: dict[str, Any]) -> Any:
        candidate = self.candidate.model_copy(update={"params": params})
        return build_estimator(candidate, self.task, self.seed, self.shape)

    def on_rows(self, rows: np.ndarray) -> _Job:
        weights = None if self.weights is None else self.weights[rows]
        return replace(self, X=self.X.iloc[rows], y=self.y[rows], weights=weights)


def _trial_settings(job: _Job) -> list[dict[str, Any]]:
    """What the search tries, in order: sampled distributions, or the family's portfolio.

    The candidate's own params win over the portfolio's, so it only varies the rest.
    """
    candidate, search = job.candidate, job.candidate.search
    assert search is not None
    if search.param_distributions:
        space = search.param_distributions
        sampled = ParameterSampler(space, search.n_iter, random_state=job.seed)
        return [{**candidate.params, **setting} for setting in sampled]
    # a log target needs a regression target above -1 (log1p)
    log_fits = job.task == "regression" and float(np.min(job.y)) > LOG_TARGET_FLOOR
    return [
        {**setting, **candidate.params}
        for setting in FAMILIES[candidate.family].portfolio
        if log_fits or "target_transform" not in setting
    ]


def _trial_cost(fitted: _Fitted, n_rows: int, n_features: int) -> float:
    """Work one fit did: rows x encoded features x boosting rounds (rounds of the others
    count as `UNROUNDED_FIT_ROUNDS`). The same data always costs the same."""
    rounds = rounds_used(fitted.pipeline.named_steps["model"])
    done = rounds[0] + (EARLY_STOPPING_ROUNDS if fitted.early_stopped else 0) if rounds else None
    return float(n_rows) * n_features * (done or UNROUNDED_FIT_ROUNDS)


def _search(job: _Job, on_progress: Progress) -> tuple[_Fitted, dict[str, Any]]:
    """Try settings while the budget lasts; keep the one with the best held-out score.

    On the validation split the features are fitted once and every trial reuses them;
    with `cv`, each fold fits its own features (so target encoding never sees the fold's
    rows) and the winner is refitted on the whole training split. A trial starts only
    when the work spent so far plus an average trial fits in the budget.
    """
    search, name = job.candidate.search, job.candidate.name
    assert search is not None
    settings = _trial_settings(job)
    where = "validation" if search.cv is None else f"{search.cv}-fold cv"
    best: _Fitted | None = None
    best_setting: dict[str, Any] = {}
    shared = None
    if search.cv is None:
        fitted_features = clone(job.features)
        Xt = fitted_features.fit_transform(job.X, job.y)  # cross-fitted, as a pipeline fit is
        shared = (fitted_features, Xt, fitted_features.transform(job.validation))
    spent, started, tried = 0.0, time.perf_counter(), 0
    for setting in settings:
        if tried and not search.allows(spent, time.perf_counter() - started, tried):
            break
        tried += 1
        if shared is not None:
            fitted_features, Xt, Xv = shared
            model = job.estimator(setting)
            stopped = _fit_model(model, Xt, job.y, Xv, job.y_val, job.weights)
            trial = _Fitted(
                Pipeline([("features", fitted_features), ("model", model)]),
                stopped,
                _validation_score(model, Xv, job.y_val, job.metric),
            )
            spent += _trial_cost(trial, len(job.X), Xt.shape[1])
        else:
            trial, cost = _cv_trial(job, setting)
            spent += cost
        if best is None or trial.score > best.score:
            best, best_setting = trial, setting
        on_progress(f"{name}: search {tried}/{len(settings)}, best {where} {best.score:.4f}")
    assert best is not None
    picked = {k: v for k, v in best_setting.items() if job.candidate.params.get(k) != v}
    if search.cv is not None:
        refit = _fit_once(job, best_setting)
        best = _Fitted(refit.pipeline, refit.early_stopped, best.score)
    logger.info(
        "%s: search tried %d setting(s), picked %s (%s score %.4f)",
        name,
        tried,
        picked,
        where,
        best.score,
    )
    return best, picked


Encoded = tuple[Pipeline, np.ndarray, np.ndarray]  # fitted features, training rows, validation


def _encode(job: _Job) -> Encoded:
    """The job's features fitted on its rows, with its training and validation rows encoded."""
    fitted_features = clone(job.features)
    Xt = fitted_features.fit_transform(job.X, job.y)
    return fitted_features, Xt, fitted_features.transform(job.validation)


def _fit_once(job: _Job, params: dict[str, Any], encoded: Encoded | None = None) -> _Fitted:
    """Features fitted on the job's rows (or `encoded`, fitted on those very rows), then
    the model, stopping early where it can."""
    fitted_features, Xt, Xv = encoded or _encode(job)
    model = job.estimator(params)
    stopped = _fit_model(model, Xt, job.y, Xv, job.y_val, job.weights)
    return _Fitted(Pipeline([("features", fitted_features), ("model", model)]), stopped)


def _refit_on_all(job: _Job, params: dict[str, Any], fitted: _Fitted) -> Pipeline:
    """The early-stopped setting refitted on training and validation rows together.

    The validation split has chosen the number of rounds; scaled to the extra rows, the
    model then learns from every labelled row the test split leaves, as a model fitted
    without early stopping would.
    """
    scale = (len(job.X) + len(job.validation)) / len(job.X)
    rounds = fixed_rounds(fitted.pipeline.named_steps["model"], scale)
    weights = job.weights  # the validation rows are the newest: full weight
    everything = replace(
        job,
        X=pd.concat([job.X, job.validation], ignore_index=True),
        y=np.concatenate([job.y, job.y_val]),
        weights=None if weights is None else np.concatenate([weights, np.ones(len(job.y_val))]),
    )
    return _fit_once(everything, {**params, **rounds}).pipeline


def _cv_trial(job: _Job, setting: dict[str, Any]) -> tuple[_Fitted, float]:
    """The mean fold score of one setting, and the work its folds cost."""
    search = job.candidate.search
    assert search is not None and search.cv is not None
    folds = (
        TimeSeriesSplit(search.cv)  # each fold scored on rows after the ones it learned from
        if job.ordered
        else check_cv(search.cv, job.y, classifier=job.task == "classification")
    )
    scores, cost = [], 0.0
    for fit_rows, score_rows in folds.split(job.X, job.y):
        fitted = _fit_once(job.on_rows(fit_rows), setting)
        fold_features = fitted.pipeline.named_steps["features"]
        model = fitted.pipeline.named_steps["model"]
        Xs = fold_features.transform(job.X.iloc[score_rows])
        scores.append(_validation_score(model, Xs, job.y[score_rows], job.metric))
        cost += _trial_cost(fitted, len(fit_rows), Xs.shape[1])
    return _Fitted(Pipeline([("features", job.features)]), False, float(np.mean(scores))), cost


def _column_groups(names: list[str], schema: FeatureSchema) -> dict[str, list[int]]:
    """Output features grouped by the input column they come from; pair features apart."""
    raw = sorted(schema.feature_names, key=len, reverse=True)
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        branch, _, rest = name.partition("__")
        owner = (
            rest if branch.startswith(PAIR_BRANCHES) else next((c for c in raw if c in rest), rest)
        )
        groups.setdefault(owner, []).append(i)
    return groups


def _loss(model: Any, X: np.ndarray, y: np.ndarray, n_classes: int) -> float:
    if not n_classes:
        return float(np.sqrt(np.mean((model.predict(X) - y) ** 2)))
    return float(log_loss(y, model.predict_proba(X), labels=list(range(n_classes))))


def _importances(bundle: ModelBundle, validation: pd.DataFrame, seed: int) -> tuple[list, Any]:
    """The model's own importances, else permutation importance per input column.

    Permuting input columns (all the features one column makes, together) costs one
    prediction per column rather than one per encoded feature, and reads more plainly.
    """
    features = bundle.pipeline.named_steps["features"]
    model = bundle.pipeline.named_steps["model"]
    names = list(features.named_steps["columns"].get_feature_names_out())
    inner = model.regressor_ if isinstance(model, TransformedTargetRegressor) else model
    final = inner[-1] if isinstance(inner, Pipeline) else inner
    if hasattr(final, "feature_importances_"):
        return names, np.asarray(final.feature_importances_)
    if hasattr(final, "coef_"):
        return names, np.abs(np.atleast_2d(final.coef_)).mean(axis=0)
    sample = validation.sample(min(len(validation), IMPORTANCE_SAMPLE), random_state=seed)
    X, y = features.transform(sample), labels_of(bundle, sample)
    n_classes = len(bundle.schema.classes or []) if bundle.is_classifier else 0
    base = _loss(model, X, y, n_classes)
    rng = np.random.default_rng(seed)
    groups = _column_groups(names, bundle.schema)
    increases = []
    for columns in groups.values():
        losses = []
        for _ in range(PERMUTATION_REPEATS):
            shuffled = X.copy()
            shuffled[:, columns] = X[rng.permutation(len(X))][:, columns]
            losses.append(_loss(model, shuffled, y, n_classes))
        increases.append(float(np.mean(losses)) - base)
    return list(groups), np.asarray(increases)


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


def _job(
    candidate: CandidateConfig,
    schema: FeatureSchema,
    features: FeatureConfig,
    splits: dict[str, pd.DataFrame],
    seed: int,
    history: HistoryChoice,
    ordered: bool,
) -> _Job:
    """One candidate's fit on the training rows its history recipe keeps."""
    numeric = schema.names(ColumnRole.NUMERIC)
    preprocessor = build_preprocessor(schema, features.resolve(numeric).config)
    bundle = ModelBundle(pipeline=Pipeline([]), schema=schema, candidate=candidate.name)
    train, weights = apply_recipe(splits["train"], history.recipe, history.window or 1)
    y = labels_of(bundle, train)
    return _Job(
        candidate=candidate,
        features=preprocessor,
        X=train,
        y=y,
        validation=splits["validation"],
        y_val=labels_of(bundle, splits["validation"]),
        metric=schema.primary_metric,
        seed=seed,
        shape=data_shape(bundle, y),
        weights=weights,
        ordered=ordered,
    )


def backtest_history(
    candidates: list[CandidateConfig],
    schema: FeatureSchema,
    features: FeatureConfig,
    splits: dict[str, pd.DataFrame],
    seed: int,
    config: HistoryConfig,
    ordered: bool,
) -> tuple[HistoryChoice, ModelBundle | None]:
    """How much history to learn from, by an out-of-time backtest; with the probe as
    fitted on the chosen recipe's rows (None when no backtest ran), which `fit_candidate`
    reuses instead of fitting the same candidate on the same rows again.

    The probe (the first enabled candidate this task can fit, with its params and no
    search) is fitted once per recipe on the training rows and scored with the primary
    metric on the validation rows, which come after every training row. The best recipe
    wins; a tie keeps the earlier one in `config.recipes` (all rows first by default).
    """
    train_rows = len(splits["train"])
    window = config.window(train_rows)
    recipes = recipes_to_try(config, ordered, train_rows)
    metric = schema.primary_metric
    if len(recipes) == 1:
        why = (
            "the split is random: rows have no order to weigh"
            if not ordered
            else (
                f"one recipe applies (a recent window of {window:,} of {train_rows:,} rows "
                f"is under min_recent_rows {config.min_recent_rows} or all of them)"
                if len(config.recipes) > 1
                else "one recipe configured"
            )
        )
        choice = HistoryChoice(recipe=recipes[0], window=window, metric=metric.name, reason=why)
        return choice, None
    probe = next(c for c in candidates if c.enabled and supports(c.family, schema.task))
    probe = probe.model_copy(update={"search": None})
    scores, rows, pipelines = {}, {}, {}
    encoded: dict[int, Encoded] = {}  # by training rows: weighting keeps all of them
    with openmp_threads():
        for recipe in recipes:
            trial = HistoryChoice(recipe=recipe, window=window)
            job = _job(probe, schema, features, splits, seed, trial, ordered)
            if len(job.X) not in encoded:  # the features do not see the weights
                encoded[len(job.X)] = _encode(job)
            fitted = _fit_once(job, probe.params, encoded[len(job.X)])
            model = fitted.pipeline.named_steps["model"]
            signed = _validation_score(model, encoded[len(job.X)][2], job.y_val, metric)
            scores[recipe] = signed if metric.higher_is_better else -signed
            rows[recipe] = len(job.X)
            pipelines[recipe] = fitted.pipeline
    best = metric.best(scores)
    for recipe in recipes:  # a tie keeps the earlier recipe
        if scores[recipe] == scores[best]:
            best = recipe
            break
    summary = ", ".join(f"{name} {value:.4g}" for name, value in scores.items())
    reason = (
        f"chosen by a backtest: {probe.name} fitted per recipe, validation {metric.name} "
        f"on the {len(splits['validation']):,} rows after the training rows: {summary}"
    )
    logger.info("history: %s (%s)", best, reason)
    choice = HistoryChoice(
        recipe=best,
        window=window,
        metric=metric.name,
        scores=scores,
        rows=rows,
        probe=probe.name,
        reason=reason,
    )
    return choice, ModelBundle(pipeline=pipelines[best], schema=schema, candidate=probe.name)


def _probe_fit(
    probe: ModelBundle | None, candidate: CandidateConfig, history: HistoryChoice
) -> Pipeline | None:
    """The backtest's probe, when it is this very fit: the candidate (no search, so its own
    params) on the chosen recipe's rows."""
    same = probe is not None and probe.candidate == candidate.name == history.probe
    return probe.pipeline if same and candidate.search is None else None


def _stops_early(pipeline: Pipeline, job: _Job) -> bool:
    """Whether the fitted model stopped early on the validation split (as `_fit_model`
    tells for a fit it makes)."""
    return bool(early_stopping_fit_params(pipeline.named_steps["model"], None, job.y_val))


def fit_candidate(
    candidate: CandidateConfig,
    schema: FeatureSchema,
    features: FeatureConfig,
    gates: GateConfig,
    splits: dict[str, pd.DataFrame],
    seed: int,
    on_progress: Progress = lambda note: None,
    history: HistoryChoice | None = None,
    ordered: bool = False,
    probe: ModelBundle | None = None,
) -> tuple[ModelBundle, CandidateResult]:
    """Fit the feature pipeline and model on the training rows its history recipe keeps,
    then score every split.

    Boosting stops early on the validation split; with `search`, the validation split
    (or cross-validation, in time order when the rows are) also picks the setting.
    `probe`, the history backtest's fit on the same rows (`backtest_history`), is this
    fit when it is this candidate without a search: it is used instead of a second one.
    """
    history = history or HistoryChoice()
    with openmp_threads():  # the whole fit and every prediction of it
        started = time.perf_counter()
        bundle = ModelBundle(pipeline=Pipeline([]), schema=schema, candidate=candidate.name)
        job = _job(candidate, schema, features, splits, seed, history, ordered)
        searched: dict[str, Any] = {}
        reused = _probe_fit(probe, candidate, history)
        if reused is not None:
            fitted = _Fitted(reused, _stops_early(reused, job))
            logger.info("%s: the history backtest's fit on these rows, reused", candidate.name)
        elif candidate.search is None:
            fitted = _fit_once(job, candidate.params)
        else:
            fitted, searched = _search(job, on_progress)
        bundle.pipeline = fitted.pipeline
        validation_metrics = evaluate(bundle, splits["validation"])  # before it is trained on
        if fitted.early_stopped and candidate.refit:
            bundle.pipeline = _refit_on_all(job, {**candidate.params, **searched}, fitted)
        fit_seconds = time.perf_counter() - started
        bundle.metrics = {
            split: validation_metrics if split == "validation" else evaluate(bundle, splits[split])
            for split in SPLITS
        }
        gap = gap_pct(bundle.metrics["train"], bundle.metrics["test"], schema.task)
        rounds = rounds_used(fitted.pipeline.named_steps["model"])
        result = CandidateResult(
            name=candidate.name,
            family=candidate.family,
            params={**candidate.params, **searched},
            metrics=bundle.metrics,
            gap_pct=gap,
            gate_failures=gate_failures(
                bundle.metrics["test"], gap, schema.task, gates, fitted.early_stopped
            ),
            fit_seconds=fit_seconds,
            plots=_plots(bundle, splits["test"], splits["validation"], seed),
            early_stopped=fitted.early_stopped,
            rounds_used=rounds[0] if rounds else None,
            rounds_max=rounds[1] if rounds else None,
        )
        stopping = f", {rounds[0]}/{rounds[1]} rounds" if rounds else ""
        logger.info(
            "%s: fitted in %.1fs%s, test %s, gap %.1f%%, gates %s",
            candidate.name,
            fit_seconds,
            stopping,
            {k: round(v, 4) for k, v in bundle.metrics["test"].items()},
            gap,
            "passed" if result.passed else f"failed ({'; '.join(result.gate_failures)})",
        )
        return bundle, result
