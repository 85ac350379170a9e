"""The feature pipeline, built from the feature schema and fitted on training rows only.

It is part of the saved model (a scikit-learn `Pipeline`), so serving applies exactly
the transform that training used, and unseen categories never fail.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import KBinsDiscretizer, OneHotEncoder, TargetEncoder
from sklearn.utils import murmurhash3_32

from zenloop.config import ColumnRole, FeatureConfig
from zenloop.schema import FeatureSchema

MISSING_TOKEN = "__missing__"
# The largest magnitude a numeric input keeps; larger values are clipped to it. Products of
# two such values (1e36) stay inside float32 (3.4e38), to which tree models and
# scikit-learn's input checks convert: a finite input can never make the model fail.
NUMERIC_LIMIT = 1e18
RATIO_EPSILON = 1e-6
TARGET_ENCODER_FOLDS = 5
TOKEN_PATTERN = re.compile(r"[^a-z0-9 ]+")
DIGIT_PATTERN = re.compile(r"\d")
TOKEN_CACHE_SIZE = 200_000


class ArrayTransformer(BaseEstimator, TransformerMixin, auto_wrap_output_keys=None):
    """Array in, array out: not wrapped by scikit-learn's `set_output`.

    The wrapper looks up the output configuration on every `transform`, which cost the
    serving path more per call than these transforms themselves. scikit-learn wraps each
    subclass unless told otherwise, so subclasses are told here.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(auto_wrap_output_keys=None, **kwargs)


class FrameCoercer(BaseEstimator, TransformerMixin):
    """Casts incoming rows to the schema's types, so JSON rows and training rows agree."""

    def __init__(self, schema: FeatureSchema):
        self.schema = schema

    def fit(self, frame: pd.DataFrame, y=None) -> FrameCoercer:
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for spec in self.schema.columns:
            if spec.role == ColumnRole.IGNORE:
                continue
            values = frame[spec.name] if spec.name in frame else pd.Series([None] * len(frame))
            values = values.reset_index(drop=True)
            if spec.role == ColumnRole.NUMERIC:
                numbers = pd.to_numeric(values, errors="coerce").astype(float)
                out[spec.name] = numbers.clip(-NUMERIC_LIMIT, NUMERIC_LIMIT)
            elif spec.role == ColumnRole.DATETIME:
                out[spec.name] = pd.to_datetime(values, errors="coerce", format="mixed")
            else:
                text = values.astype(object).where(values.notna(), MISSING_TOKEN)
                out[spec.name] = text.astype(str)
        return pd.DataFrame(out)


class SignedLog(ArrayTransformer):
    """log1p of |x| with its sign, on the columns whose training skew passes a threshold."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def fit(self, X, y=None) -> SignedLog:
        skew = pd.DataFrame(np.asarray(X, dtype=float)).skew().fillna(0.0).to_numpy()
        self.skewed_ = np.abs(skew) > self.threshold
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        X = np.array(X, dtype=float, copy=True)
        X[:, self.skewed_] = np.sign(X[:, self.skewed_]) * np.log1p(np.abs(X[:, self.skewed_]))
        return X

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray(input_features, dtype=object)


class PairFeature(ArrayTransformer):
    """A ratio or product of two numeric columns (missing values take training medians)."""

    def __init__(self, op: str):
        self.op = op

    def fit(self, X, y=None) -> PairFeature:
        self.medians_ = np.nan_to_num(np.nanmedian(np.asarray(X, dtype=float), axis=0))
        self.names_ = list(getattr(X, "columns", ["a", "b"]))
        return self

    def transform(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        X = np.where(np.isnan(X), self.medians_, X)
        a, b = X[:, 0], X[:, 1]
        value = a / (np.abs(b) + RATIO_EPSILON) if self.op == "ratio" else a * b
        return value.reshape(-1, 1)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([f"{self.op}({self.names_[0]},{self.names_[1]})"], dtype=object)


def _tokens(text: str) -> list[str]:
    return TOKEN_PATTERN.sub(" ", text.lower()).split()


@lru_cache(maxsize=TOKEN_CACHE_SIZE)
def _token_hash(token: str) -> int:
    return murmurhash3_32(token, positive=True)


def hash_counts(tokens_per_row: list[list[str]], n_features: int) -> np.ndarray:
    """Count tokens into `n_features` buckets by MurmurHash3; unseen tokens land there too."""
    out = np.zeros((len(tokens_per_row), n_features))
    for i, tokens in enumerate(tokens_per_row):
        for token in tokens:
            out[i, _token_hash(token) % n_features] += 1.0
    return out


class HashEncoder(ArrayTransformer):
    """Hashes high-cardinality ids into a fixed width; unseen ids land in the same space."""

    def __init__(self, n_features: int):
        self.n_features = n_features

    def fit(self, X, y=None) -> HashEncoder:
        self.columns_ = list(getattr(X, "columns", range(np.asarray(X).shape[1])))
        return self

    def transform(self, X) -> np.ndarray:
        values = np.asarray(X, dtype=object)
        tokens = [[f"{c}={v}" for c, v in zip(self.columns_, row, strict=True)] for row in values]
        return hash_counts(tokens, self.n_features)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([f"hash_{i}" for i in range(self.n_features)], dtype=object)


class TextFeatures(ArrayTransformer):
    """Cleaned text: length, word and digit counts, and hashed word tokens."""

    def __init__(self, n_features: int):
        self.n_features = n_features

    def fit(self, X, y=None) -> TextFeatures:
        self.column_ = list(getattr(X, "columns", ["text"]))[0]
        return self

    def transform(self, X) -> np.ndarray:
        texts = ["" if v is None or v == MISSING_TOKEN else str(v) for v in np.asarray(X)[:, 0]]
        tokens = [_tokens(t) for t in texts]
        stats = np.array(
            [
                (len(" ".join(words)), len(words), len(DIGIT_PATTERN.findall(text)))
                for text, words in zip(texts, tokens, strict=True)
            ],
            dtype=float,
        ).reshape(len(texts), 3)
        return np.hstack([stats, hash_counts(tokens, self.n_features)])

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        stats = [f"{self.column_}_{s}" for s in ("length", "words", "digits")]
        tokens = [f"{self.column_}_tok{i}" for i in range(self.n_features)]
        return np.array(stats + tokens, dtype=object)


def _as_datetime(value) -> datetime | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        parsed = pd.to_datetime(str(value), errors="coerce")
        return None if pd.isna(parsed) else parsed


class DateParts(ArrayTransformer):
    """Calendar parts of a timestamp; missing or unparseable dates become -1."""

    PARTS = ("month", "dayofweek", "hour", "dayofyear", "weekend")

    def fit(self, X, y=None) -> DateParts:
        self.column_ = list(getattr(X, "columns", ["date"]))[0]
        return self

    def transform(self, X) -> np.ndarray:
        column = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else None
        if column is not None and pd.api.types.is_datetime64_any_dtype(column):
            return self._parts_of_stamps(column)
        out = np.full((len(X), len(self.PARTS)), -1.0)
        for i, value in enumerate(np.asarray(X, dtype=object)[:, 0]):
            stamp = _as_datetime(value)
            if stamp is not None:
                weekday = stamp.weekday()
                out[i] = (stamp.month, weekday, stamp.hour, stamp.timetuple().tm_yday, weekday >= 5)
        return out

    def _parts_of_stamps(self, stamps: pd.Series) -> np.ndarray:
        """The same parts, column-wise, from timestamps already parsed (as `FrameCoercer`
        leaves them in training): no Python object per row."""
        dates = stamps.dt
        weekday = dates.dayofweek
        parts = (dates.month, weekday, dates.hour, dates.dayofyear, weekday >= 5)
        out = np.column_stack([np.asarray(p, dtype=float) for p in parts])
        out[stamps.isna().to_numpy()] = -1.0
        return out

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([f"{self.column_}_{p}" for p in self.PARTS], dtype=object)


def build_preprocessor(schema: FeatureSchema, config: FeatureConfig) -> Pipeline:
    """Coercion then one `ColumnTransformer` branch per role present in the schema."""
    numeric = schema.names(ColumnRole.NUMERIC)
    categorical = schema.names(ColumnRole.CATEGORICAL)
    high_card = schema.names(ColumnRole.HIGH_CARDINALITY)
    branches: list[tuple] = []
    if numeric:
        steps = [SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)]
        if config.log_skew_threshold is not None:
            steps.append(SignedLog(config.log_skew_threshold))
        branches.append(("numeric", make_pipeline(*steps), numeric))
    for column, n_bins in config.bins.items():
        binner = KBinsDiscretizer(
            n_bins=n_bins, encode="onehot-dense", strategy="quantile", quantile_method="linear"
        )
        branches.append(
            (f"bins_{column}", make_pipeline(SimpleImputer(strategy="median"), binner), [column])
        )
    for op, pairs in (("ratio", config.ratios), ("product", config.interactions)):
        for a, b in pairs:
            branches.append((f"{op}_{a}_{b}", PairFeature(op), [a, b]))
    if categorical:
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=config.onehot_min_frequency,
            sparse_output=False,
        )
        branches.append(("categorical", encoder, categorical))
    if high_card:
        if config.high_cardinality_encoding == "target":
            regression = schema.task == "regression"
            folds = (KFold if regression else StratifiedKFold)(
                n_splits=TARGET_ENCODER_FOLDS, shuffle=True, random_state=0
            )
            encoder = TargetEncoder(target_type="continuous" if regression else "auto", cv=folds)
        else:
            encoder = HashEncoder(config.hash_features)
        branches.append(("high_cardinality", encoder, high_card))
    for column in schema.names(ColumnRole.TEXT):
        branches.append((f"text_{column}", TextFeatures(config.text_hash_features), [column]))
    for column in schema.names(ColumnRole.DATETIME):
        branches.append((f"date_{column}", DateParts(), [column]))
    columns = ColumnTransformer(branches, sparse_threshold=0.0, verbose_feature_names_out=True)
    return Pipeline([("coerce", FrameCoercer(schema)), ("columns", columns)])
