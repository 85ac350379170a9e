"""The compiled serving path must agree with the in-process pipeline it was built from."""

import numpy as np
import pandas as pd
import pytest

from tests.support.data import lenient_gates, other_schema_frame, schema_for
from zenloop.compiled import CompiledModel
from zenloop.config import CandidateConfig, ColumnRole, DataConfig, FeatureConfig, SplitConfig
from zenloop.data.loading import load_frame
from zenloop.deployment import request_rows
from zenloop.training import fit_candidate, split_frame

FEATURES = FeatureConfig(
    bins={"customer_tenure_days": 6},
    ratios=[("shipping_cost", "unit_price")],
    interactions=[("unit_price", "quantity")],
)
SMALL_PARAMS = {
    "xgboost": {"n_estimators": 30},
    "hist_gradient_boosting": {"max_iter": 30},
    "random_forest": {"n_estimators": 10},
    "linear": {},
}
TREND_PARAMS = {"max_iter": 30}  # regression only: not in the grid over both tasks


def _fit(frame, data, family, features, params=None):
    schema = schema_for(frame, data, features)
    splits = dict(
        zip(("train", "validation", "test"), split_frame(frame, schema, SplitConfig()), strict=True)
    )
    candidate = CandidateConfig(name=family, family=family, params=params or SMALL_PARAMS[family])
    bundle, _ = fit_candidate(candidate, schema, features, lenient_gates(), splits, 0)
    return bundle, splits["test"]


def _assert_agree(bundle, test: pd.DataFrame):
    rows = request_rows(test.drop(columns=[bundle.schema.target]).head(300))
    rows[0]["city"] = "Atlantis"  # unseen category
    rows[1] = {k: v for k, v in rows[1].items() if k not in ("brand", "unit_price")}
    for column in bundle.schema.names(ColumnRole.HIGH_CARDINALITY, ColumnRole.TEXT):
        rows[2][column] = None  # missing ids and text: hashed the way training saw them
    expected = bundle.predict_frame(pd.DataFrame(rows))
    labels, probabilities = CompiledModel(bundle).predict(rows)
    if bundle.is_classifier:
        assert labels == list(expected["prediction"])
        got = np.array([[p[str(c)] for c in bundle.schema.classes] for p in probabilities])
        want = expected[[f"proba_{c}" for c in bundle.schema.classes]].to_numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(labels, expected["prediction"], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("family", list(SMALL_PARAMS))
@pytest.mark.parametrize("task", ["regression", "classification"])
def test_compiled_agrees_on_orders(family, task):
    data = DataConfig(n_rows=2_000, seed=3, task=task)
    bundle, test = _fit(load_frame(data), data, family, FEATURES)
    _assert_agree(bundle, test)


@pytest.mark.parametrize("family", ["xgboost", "hist_gradient_boosting"])
@pytest.mark.parametrize("encoding", ["target", "hash"])
def test_compiled_agrees_on_another_schema_multiclass(tmp_path, encoding, family):
    path = tmp_path / "rentals.csv"
    other_schema_frame(1_200, "classification").to_csv(path, index=False)
    data = DataConfig(source="file", path=str(path), target="tier", task="classification")
    features = FeatureConfig(high_cardinality_encoding=encoding)
    bundle, test = _fit(load_frame(data), data, family, features)
    _assert_agree(bundle, test)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_histogram_boosting_is_walked_by_the_compiled_forest_with_missing_values(task):
    """Its trees in the flat node table, not scikit-learn's predict (a thread pool per
    call); a NaN feature goes the way each tree learned for missing values."""
    data = DataConfig(n_rows=2_000, seed=5, task=task)
    bundle, test = _fit(load_frame(data), data, "hist_gradient_boosting", FEATURES)
    compiled = CompiledModel(bundle)
    assert compiled._boosted is not None
    X = compiled.transform(request_rows(test.drop(columns=[bundle.schema.target]).head(50)))
    X[::3, 0] = np.nan
    estimator = bundle.pipeline.named_steps["model"]
    if bundle.is_classifier:
        np.testing.assert_allclose(compiled._scores(X), estimator.predict_proba(X), rtol=1e-9)
    else:
        np.testing.assert_allclose(compiled._scores(X), estimator.predict(X), rtol=1e-9)


def test_a_trend_model_is_served_by_arithmetic_and_the_compiled_forest():
    """Its ridge part and its trees (scikit-learn's predict starts a thread pool per call,
    which failed the deployment's latency gate on a busy machine), agreeing with the
    pipeline, unseen categories and missing columns included."""
    data = DataConfig(n_rows=2_000, seed=7, task="regression")
    bundle, test = _fit(load_frame(data), data, "trend", FEATURES, TREND_PARAMS)
    compiled = CompiledModel(bundle)
    assert compiled._boosted is not None and compiled._linear is not None
    _assert_agree(bundle, test)
