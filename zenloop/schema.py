"""The feature schema: which columns a model takes, in which role and type.

Inferred once from training data (with overrides from config) and saved with the model,
so serving, drift checks and retraining all read column roles from one place.
"""

from __future__ import annotations

import logging
import re
import warnings
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field
from sklearn.metrics import r2_score, roc_auc_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from zenloop.config import ColumnRole, FeatureConfig, ProfileConfig, Task
from zenloop.data.loading import DataValidationError
from zenloop.metrics import Metric, primary_metric

logger = logging.getLogger(__name__)

SAMPLE_ROWS_FOR_INFERENCE = 5_000
# Fewer rows than this say too little about uniqueness or order to flag a column.
MIN_ROWS_FOR_FLAGS = 50
# A one-column tree this fine can follow a column sorted like the target, or a copy of it.
PROXY_TREE_LEAVES = 128
PROXY_TREE_MIN_LEAF = 5
PROXY_SEED = 0
# An index column that predicts this much on its own (R², or Gini for classes) says the
# file is sorted by something tied to the target; the flag's reason says so.
INDEX_SIGNAL_SKILL = 0.5
BINARY_CLASSES = 2  # a numeric target with this few values is taken as two classes
ABSENT_DTYPE = "object"  # the dtype of a column the config names but the data lacks


class FlagKind(StrEnum):
    """Why a column looks like an index, a key or a leak rather than a feature."""

    ROW_NUMBER = "row_number"
    COUNTER = "monotonic_counter"
    UNIQUE_KEY = "unique_key"
    KEY = "key"  # repeated codes that name things (customers, loans) without an order
    TARGET_PROXY = "target_proxy"


# Index-like columns identify rows or things; they are ignored unless column_roles says so.
INDEX_LIKE = frozenset({FlagKind.ROW_NUMBER, FlagKind.COUNTER, FlagKind.UNIQUE_KEY, FlagKind.KEY})
# Words that name an identifier in a column name: customer_id, idNum, order-key, loan no.
KEY_NAME_WORDS = frozenset(
    {"id", "ids", "uuid", "guid", "key", "num", "no", "nr", "rownames", "index", "idx", "unnamed"}
)
NAME_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
# An integer code whose order says this little about the target (R², or Gini) is no measure.
KEY_ORDER_SKILL = 0.02
# Codes are spread evenly over their range; integers this skewed are counts or amounts
# (a population, an income) that happen to differ from row to row.
KEY_MAX_SKEW = 2.0


class ColumnFlag(BaseModel):
    kind: FlagKind
    reason: str


class ColumnSpec(BaseModel):
    name: str
    role: ColumnRole
    dtype: str
    categories: list[str] | None = None  # observed values for low-cardinality columns
    nullable: bool = True
    flags: list[ColumnFlag] = Field(default_factory=list)
    # the column alone, on held-out rows: R² (regression) or ROC-AUC (classification)
    alone_score: float | None = None

    def flagged(self, *kinds: FlagKind) -> bool:
        return any(f.kind in kinds for f in self.flags)


class FeatureSchema(BaseModel):
    target: str
    task: Task
    columns: list[ColumnSpec]
    classes: list[Any] | None = None
    time_column: str | None = None  # orders the rows in time: splits are out-of-time
    metric: str | None = None  # the primary metric; None: the task's default

    @property
    def primary_metric(self) -> Metric:
        return primary_metric(self.task, self.metric)

    def names(self, *roles: ColumnRole) -> list[str]:
        return [c.name for c in self.columns if not roles or c.role in roles]

    @property
    def feature_names(self) -> list[str]:
        return [c.name for c in self.columns if c.role != ColumnRole.IGNORE]

    def to_markdown(self) -> str:
        return schema_markdown(self)

    def column(self, name: str) -> ColumnSpec:
        for spec in self.columns:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def suspected_leaks(self) -> list[str]:
        """Flagged columns the model uses, readably: such a model may score well here and
        fail on new rows. Flagged columns it ignores cannot leak and are left out."""
        return [
            f"{spec.name} ({flag.kind.value}: {flag.reason})"
            for spec in self.columns
            if spec.role != ColumnRole.IGNORE
            for flag in spec.flags
        ]

    def ignored_index_columns(self) -> list[str]:
        return [
            c.name for c in self.columns if c.role == ColumnRole.IGNORE and c.flagged(*INDEX_LIKE)
        ]


def looks_like_datetime(values: pd.Series, profile: ProfileConfig) -> bool:
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return False
    sample = values.dropna().astype(str).head(200)
    if sample.empty or not sample.str.contains(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}").all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return parsed.notna().mean() >= profile.datetime_parse_fraction


def infer_role(values: pd.Series, profile: ProfileConfig) -> ColumnRole:
    """Decide a column's role from its values alone; the embedded schema is never assumed."""
    non_null = values.dropna()
    if non_null.empty:
        return ColumnRole.IGNORE
    if pd.api.types.is_bool_dtype(values):
        return ColumnRole.CATEGORICAL
    if looks_like_datetime(values, profile):
        return ColumnRole.DATETIME
    if pd.api.types.is_numeric_dtype(values):
        return ColumnRole.NUMERIC
    as_text = non_null.astype(str)
    unique_ratio = as_text.nunique() / len(as_text)
    mean_words = as_text.str.split().str.len().mean()
    if mean_words >= profile.text_min_mean_words:
        return ColumnRole.TEXT
    if as_text.nunique() <= profile.max_onehot_cardinality:
        return ColumnRole.CATEGORICAL
    if unique_ratio >= profile.id_unique_ratio:
        return ColumnRole.IGNORE  # row identifiers carry no signal that generalises
    return ColumnRole.HIGH_CARDINALITY


def infer_task(target: pd.Series) -> tuple[Task, str]:
    """Classification for labels (text, booleans, two values), else regression; and why."""
    values = target.dropna()
    distinct = int(values.nunique())
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return "classification", f"labels ({distinct} classes)"
    if distinct <= BINARY_CLASSES:
        return "classification", f"numeric with only {distinct} distinct values"
    return "regression", f"numeric with {distinct:,} distinct values"


def _integer_valued(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return False
    numbers = values.to_numpy(dtype=float)
    return bool(np.isfinite(numbers).all() and (numbers == np.round(numbers)).all())


def _evenly_spread(values: pd.Series) -> bool:
    """Whether integers are spread like codes, not skewed like amounts."""
    skew = values.astype(float).skew()
    return bool(pd.isna(skew) or abs(skew) < KEY_MAX_SKEW)


def index_flag(values: pd.Series, named_as_id: bool = False) -> ColumnFlag | None:
    """A row number, a counter or a unique key: values that name rows instead of describing them.

    Judged on every row, in file order, since order is what gives a counter away. Distinct
    integers in no order are a key when their name says so or when they are spread evenly
    like codes; skewed ones are an amount that happens to differ on every row (a
    population, an income).
    """
    n = len(values)
    if n < MIN_ROWS_FOR_FLAGS or values.isna().any() or values.nunique() != n:
        return None
    if _integer_valued(values):
        low, high = int(values.min()), int(values.max())
        if high - low + 1 == n:
            return ColumnFlag(
                kind=FlagKind.ROW_NUMBER, reason=f"the integers {low}..{high}, one per row"
            )
        if values.is_monotonic_increasing or values.is_monotonic_decreasing:
            return ColumnFlag(
                kind=FlagKind.COUNTER, reason="a distinct integer per row, monotonic in file order"
            )
        if named_as_id or _evenly_spread(values):
            return ColumnFlag(kind=FlagKind.UNIQUE_KEY, reason="a distinct integer per row")
        return None
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return None  # distinct measurements or timestamps are ordinary features
    return ColumnFlag(kind=FlagKind.UNIQUE_KEY, reason="a distinct value per row")


def _holdout_score(y_true: np.ndarray, predicted: np.ndarray, task: Task) -> float | None:
    try:
        if task == "regression":
            return float(r2_score(y_true, predicted))
        if predicted.shape[1] == 2:
            return float(roc_auc_score(y_true, predicted[:, 1]))
        labels = list(range(predicted.shape[1]))
        return float(roc_auc_score(y_true, predicted, multi_class="ovr", labels=labels))
    except ValueError:  # a class absent from the holdout half: no verdict
        return None


def proxy_score(values: pd.Series, target: pd.Series, task: Task) -> float | None:
    """How well this one column predicts the target on rows it was not fitted on.

    R² for regression, ROC-AUC for classification: a fine one-column tree for numbers, the
    per-value target statistics for anything else. None when the sample is too small.
    """
    n = len(values)
    if n < 2 * MIN_ROWS_FOR_FLAGS:
        return None
    fit = np.random.default_rng(PROXY_SEED).random(n) < 0.5
    if task == "regression":
        y = target.to_numpy(dtype=float)
        n_classes = 0
    else:
        codes, uniques = pd.factorize(target.astype(str), sort=True)
        y, n_classes = codes, len(uniques)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        x = values.to_numpy(dtype=float)
        finite = np.isfinite(x)
        if not finite.any():
            return None
        x = np.where(finite, x, np.min(x[finite]) - 1.0).reshape(-1, 1)
        tree_cls = DecisionTreeRegressor if task == "regression" else DecisionTreeClassifier
        tree = tree_cls(
            max_leaf_nodes=PROXY_TREE_LEAVES,
            min_samples_leaf=PROXY_TREE_MIN_LEAF,
            random_state=PROXY_SEED,
        ).fit(x[fit], y[fit])
        held = x[~fit]
        predicted = tree.predict(held) if task == "regression" else tree.predict_proba(held)
        if task == "classification" and predicted.shape[1] != n_classes:
            return None  # the fitted half missed a class
        return _holdout_score(y[~fit], predicted, task)
    keys = values.astype(str).to_numpy()
    if task == "regression":
        means = pd.Series(y[fit]).groupby(keys[fit]).mean()
        predicted = pd.Series(keys[~fit]).map(means).fillna(float(y[fit].mean())).to_numpy()
        return _holdout_score(y[~fit], predicted, task)
    counts = pd.crosstab(keys[fit], y[fit]).reindex(columns=range(n_classes), fill_value=0)
    shares = counts.div(counts.sum(axis=1), axis=0)
    prior = np.bincount(y[fit], minlength=n_classes) / fit.sum()
    predicted = shares.reindex(keys[~fit]).to_numpy()
    predicted = np.where(np.isnan(predicted), prior, predicted)
    return _holdout_score(y[~fit], predicted, task)


def _skill(score: float, task: Task) -> float:
    """0 for a guess, 1 for perfect: R² as it is, ROC-AUC as the Gini coefficient."""
    return score if task == "regression" else 2.0 * score - 1.0


def _name_words(name: str) -> set[str]:
    return {word.lower() for word in NAME_WORD.findall(name)}


def key_flag(
    values: pd.Series, alone: float | None, task: Task, profile: ProfileConfig
) -> ColumnFlag | None:
    """Repeated codes that name things rather than measure them: a customer or loan id.

    A code column (text, or integers) whose share of distinct values reaches
    `key_unique_ratio` is a key when it is text, when its name says it is an identifier,
    or when its integers' order says nothing about the target (a one-column tree on them
    scores about as well as a guess). Measurements (floats, integers with an order) are
    not keys, nor are skewed integers (counts, amounts). Unique columns are judged by
    `index_flag`.
    """
    present = values.dropna()
    if len(present) < MIN_ROWS_FOR_FLAGS or pd.api.types.is_bool_dtype(values):
        return None
    if pd.api.types.is_datetime64_any_dtype(values):
        return None  # timestamps are times, not names
    ratio = present.nunique() / len(present)
    if ratio < profile.key_unique_ratio or ratio >= 1.0:
        return None
    share = f"{ratio:.0%} of its values distinct"
    if not pd.api.types.is_numeric_dtype(values):
        words = present.astype(str).str.split().str.len().mean()
        if words >= profile.text_min_mean_words:
            return None  # free text: its words are features
        return ColumnFlag(kind=FlagKind.KEY, reason=f"repeated codes ({share})")
    if not _integer_valued(present):
        return None
    if _name_words(str(values.name)) & KEY_NAME_WORDS:
        return ColumnFlag(
            kind=FlagKind.KEY, reason=f"an identifier's name, integer codes ({share})"
        )
    if not _evenly_spread(present):
        return None  # counts or amounts: a measure, however many values it takes
    if alone is not None and _skill(alone, task) < KEY_ORDER_SKILL:
        return ColumnFlag(
            kind=FlagKind.KEY,
            reason=f"integer codes ({share}) whose order says nothing of the target",
        )
    return None


def _proxy_flags(
    score: float | None,
    task: Task,
    threshold: float | None,
    index: ColumnFlag | None,
) -> list[ColumnFlag]:
    """A target-proxy flag from the threshold; an index flag learns the row order's signal."""
    if score is None:
        return [index] if index else []
    alone = f"predicts the target alone with {_metric_label(task)} {score:.4f} on held-out rows"
    flags = []
    if index is not None:
        if _skill(score, task) >= INDEX_SIGNAL_SKILL:
            index = index.model_copy(
                update={"reason": f"{index.reason}; rows are ordered with the target: it {alone}"}
            )
        flags.append(index)
    if threshold is not None and score >= threshold:
        flags.append(ColumnFlag(kind=FlagKind.TARGET_PROXY, reason=f"{alone} (>= {threshold})"))
    return flags


def _metric_label(task: Task) -> str:
    return "R²" if task == "regression" else "ROC-AUC"


def near_full_model(
    schema: FeatureSchema, full_score: float, profile: ProfileConfig
) -> list[ColumnSpec]:
    """Columns whose score alone comes within `leak_margin` of the whole model's (R² or
    ROC-AUC on test rows), not flagged as leaks yet: the model may be leaning on a column
    recorded after the outcome. Only columns with real skill alone count: in a weak model
    every useful column is near the whole."""
    if profile.leak_margin is None:
        return []
    found = []
    for spec in schema.columns:
        if spec.role == ColumnRole.IGNORE or spec.alone_score is None:
            continue
        if spec.flagged(FlagKind.TARGET_PROXY):
            continue
        close = spec.alone_score >= full_score - profile.leak_margin
        if close and _skill(spec.alone_score, schema.task) >= profile.leak_margin_min_skill:
            label = _metric_label(schema.task)
            reason = (
                f"predicts the target alone with {label} {spec.alone_score:.4f}, within "
                f"{profile.leak_margin} of the whole model's {full_score:.4f}"
            )
            flag = ColumnFlag(kind=FlagKind.TARGET_PROXY, reason=reason)
            found.append(spec.model_copy(update={"flags": [*spec.flags, flag]}))
    return found


def infer_schema(
    frame: pd.DataFrame,
    target: str,
    task: Task,
    profile: ProfileConfig,
    features: FeatureConfig,
    source: str,
    time_column: str | None = None,
    metric: str | None = None,
) -> FeatureSchema:
    """Each column's role, with flags for index-like columns, keys and suspected leaks.

    Index-like columns (row numbers, counters, unique keys, repeated codes) are ignored
    unless `profile.column_roles` names them. The time column is never taken for an index.
    Roles and feature options written in the config must name columns that exist (an
    ignored one may be absent), feature options numeric ones; a preset's options that do
    not fit are dropped.
    """
    # a column to ignore may be absent (a retraining learns from the training columns only)
    used_roles = {name for name, role in profile.column_roles.items() if role != ColumnRole.IGNORE}
    named = used_roles | features.referenced_columns() | ({time_column} if time_column else set())
    unknown = named - set(frame.columns)
    if unknown:
        raise DataValidationError(
            f"{source}: configured columns {sorted(unknown)} are not in the data; "
            f"columns are {list(frame.columns)}"
        )
    if time_column == target:
        raise DataValidationError(f"{source}: the time column {time_column!r} is the target")
    sample = frame.sample(min(len(frame), SAMPLE_ROWS_FOR_INFERENCE), random_state=0)
    specs: list[ColumnSpec] = []
    for name in frame.columns:
        if name == target:
            continue
        configured = profile.column_roles.get(name)
        role = configured or infer_role(sample[name], profile)
        values = frame[name]
        _check_role_fits(values, role, name, source)
        alone = None
        if role not in (ColumnRole.TEXT, ColumnRole.DATETIME):
            alone = proxy_score(sample[name], sample[target], task)
        named_as_id = bool(_name_words(str(name)) & KEY_NAME_WORDS)
        index = index_flag(values, named_as_id) if name != time_column else None
        spec_flags = _proxy_flags(alone, task, profile.leak_threshold, index)
        keyable = name != time_column and role not in (ColumnRole.TEXT, ColumnRole.DATETIME)
        key = key_flag(values, alone, task, profile) if keyable else None
        if key is not None and index is None:
            spec_flags.insert(0, key)
        index_like = any(flag.kind in INDEX_LIKE for flag in spec_flags)
        if configured is None and profile.ignore_index_columns and index_like:
            role = ColumnRole.IGNORE
        categories = None
        if role == ColumnRole.CATEGORICAL:
            categories = sorted(values.dropna().astype(str).unique().tolist())
        specs.append(
            ColumnSpec(
                name=name,
                role=role,
                dtype=str(values.dtype),
                categories=categories,
                nullable=bool(values.isna().any()),
                flags=spec_flags,
                alone_score=alone,
            )
        )
    # named to be ignored but absent (a retraining learns from the training columns only):
    # requests may still carry them, as they did for the model this one replaces
    for name, role in profile.column_roles.items():
        if role == ColumnRole.IGNORE and name not in frame.columns:
            logger.warning("%s: column %r, to be ignored, is not in the data", source, name)
            specs.append(ColumnSpec(name=name, role=role, dtype=ABSENT_DTYPE))
    numeric = {s.name for s in specs if s.role == ColumnRole.NUMERIC}
    for name in sorted(features.referenced_columns() - numeric):
        raise DataValidationError(
            f"{source}: column {name!r} is used in features.bins/ratios/interactions "
            "but is not numeric"
        )
    for skipped in features.resolve(numeric).skipped:
        logger.warning("%s: %s", source, skipped)
    classes = None
    if task == "classification":
        classes = sorted(frame[target].unique().tolist(), key=str)
    schema = FeatureSchema(
        target=target,
        task=task,
        columns=specs,
        classes=classes,
        time_column=time_column,
        metric=metric,
    )
    for leak in schema.suspected_leaks():
        logger.warning("%s: suspected leak: %s", source, leak)
    return schema


def _check_role_fits(values: pd.Series, role: ColumnRole, name: str, source: str) -> None:
    if role == ColumnRole.NUMERIC and not pd.api.types.is_numeric_dtype(values):
        coerced = pd.to_numeric(values, errors="coerce")
        bad = values[coerced.isna() & values.notna()]
        if not bad.empty:
            raise DataValidationError(
                f"{source}: column {name!r} is configured as numeric but holds "
                f"non-numeric values such as {bad.iloc[0]!r}"
            )


def _flag_text(spec: ColumnSpec) -> str:
    return "; ".join(f"{f.kind.value}: {f.reason}" for f in spec.flags)


def schema_markdown(schema: FeatureSchema) -> str:
    rows = "\n".join(
        f"| {c.name} | {c.role.value} | {c.dtype} | {'yes' if c.nullable else 'no'} "
        f"| {_flag_text(c)} |"
        for c in schema.columns
    )
    classes = f", classes {schema.classes}" if schema.classes else ""
    leaks = schema.suspected_leaks()
    warning = (
        "**Suspected leaks** (check these before trusting the scores):\n\n"
        + "\n".join(f"- {leak}" for leak in leaks)
        + "\n\n"
        if leaks
        else ""
    )
    return (
        f"## Feature schema: target `{schema.target}` ({schema.task}{classes})\n\n"
        f"{warning}"
        f"| column | role | dtype | nullable | flags |\n|---|---|---|---|---|\n{rows}\n"
    )
