"""Defaults that adapt to the data: task-valid params, early stopping, capacity, budgets."""

import logging

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge

from tests.support.data import churn_frame, lenient_gates, other_schema_frame, schema_for
from zenloop.compiled import CompiledModel
from zenloop.config import (
    CandidateConfig,
    DataConfig,
    FeatureConfig,
    GateConfig,
    SearchConfig,
    SplitConfig,
    default_candidates,
)
from zenloop.data.loading import DataValidationError
from zenloop.deployment import request_rows
from zenloop.models import DataShape, build_estimator, default_params, supports
from zenloop.training import fit_candidate, split_frame

CHURN = DataConfig(source="file", path="churn.csv", target="churn", task="classification")


def _splits(frame: pd.DataFrame, schema) -> dict[str, pd.DataFrame]:
    parts = split_frame(frame, schema, SplitConfig())
    return dict(zip(("train", "validation", "test"), parts, strict=True))


def test_default_candidates_train_a_yes_no_classification():
    frame = churn_frame()
    features = FeatureConfig(preset="orders")  # the shipped preset: skipped here
    schema = schema_for(frame, CHURN, features)
    splits = _splits(frame, schema)
    fitted = [
        fit_candidate(c, schema, features, GateConfig(), splits, 0)
        for c in default_candidates()
        if supports(c.family, "classification")  # trend is for regression only
    ]
    results = [result for _, result in fitted]
    assert [r.name for r in results] == [
        "xgboost",
        "hist_gradient_boosting",
        "random_forest",
        "linear",
    ]
    assert all(r.metrics["test"]["roc_auc"] > 0.7 for r in results), [r.metrics for r in results]
    assert any(r.passed for r in results), [r.gate_failures for r in results]
    # boosting refits on train + validation: the chosen rounds, scaled, at the same rate
    xgb_bundle, xgb = fitted[0]
    model = xgb_bundle.pipeline.named_steps["model"]
    shape = DataShape(n_rows=len(splits["train"]))
    rows = len(splits["train"]) + len(splits["validation"])
    assert (
        model.get_params()["learning_rate"]
        == default_params("xgboost", "classification", shape)["learning_rate"]
    )
    assert model.n_estimators == int(np.ceil(xgb.rounds_used * rows / len(splits["train"])))


def test_linear_params_mean_the_same_for_both_tasks():
    ridge = build_estimator(
        CandidateConfig(name="l", family="linear", params={"alpha": 4.0}), "regression", 0
    )
    logistic = build_estimator(
        CandidateConfig(name="l", family="linear", params={"alpha": 4.0}), "classification", 0
    )
    assert isinstance(ridge[-1], Ridge) and ridge[-1].alpha == 4.0
    assert isinstance(logistic[-1], LogisticRegression) and logistic[-1].C == 0.25
    from_c = build_estimator(
        CandidateConfig(name="l", family="linear", params={"C": 0.5}), "regression", 0
    )
    assert from_c[-1].alpha == 2.0


def test_an_unknown_param_names_the_candidate_and_the_valid_ones():
    candidate = CandidateConfig(name="forest", family="random_forest", params={"depth": 3})
    with pytest.raises(
        ValueError, match=r"candidate 'forest'.*unknown params \['depth'\].*max_depth"
    ):
        build_estimator(candidate, "classification", 0)


@pytest.mark.parametrize("family", ["xgboost", "hist_gradient_boosting"])
def test_boosting_stops_early_on_the_validation_split(family):
    data = DataConfig(source="file", path="rentals.csv", target="monthly_rent")
    frame = other_schema_frame(2_000, "regression")
    schema = schema_for(frame, data)
    splits = _splits(frame, schema)
    # a fast learning rate overfits long before the ceiling: the validation split stops it
    params = {"learning_rate": 0.3}
    candidate = CandidateConfig(name=family, family=family, params=params)
    bundle, result = fit_candidate(candidate, schema, FeatureConfig(), lenient_gates(), splits, 0)
    assert result.early_stopped
    assert result.rounds_used is not None and result.rounds_max is not None
    assert result.rounds_used < result.rounds_max / 10, (result.rounds_used, result.rounds_max)
    rows = request_rows(splits["test"].drop(columns=["monthly_rent"]).head(50))
    compiled, _ = CompiledModel(bundle).predict(rows)
    expected = bundle.predict_frame(pd.DataFrame(rows))["prediction"]
    np.testing.assert_allclose(compiled, expected, rtol=1e-5, atol=1e-4)


def test_capacity_follows_the_rows_and_rare_classes_weigh_more():
    small = default_params("xgboost", "regression", DataShape(n_rows=2_000))
    large = default_params("xgboost", "regression", DataShape(n_rows=200_000))
    assert small["max_depth"] < large["max_depth"]
    assert small["learning_rate"] < large["learning_rate"]
    forest_small = default_params("random_forest", "regression", DataShape(n_rows=2_000))
    forest_large = default_params("random_forest", "regression", DataShape(n_rows=200_000))
    assert forest_small["n_estimators"] > forest_large["n_estimators"]
    assert forest_large["max_samples"] < 1.0
    rare = DataShape(n_rows=10_000, class_counts=(9_500, 500))
    assert default_params("xgboost", "classification", rare)["scale_pos_weight"] > 1.0
    weights = default_params("hist_gradient_boosting", "classification", rare)["class_weight"]
    assert weights[1] > weights[0]
    balanced = DataShape(n_rows=10_000, class_counts=(5_000, 5_000))
    assert "class_weight" not in default_params("random_forest", "classification", balanced)


def test_the_search_budget_decides_how_many_settings_are_tried():
    frame = churn_frame(1_000)
    schema = schema_for(frame, CHURN)
    splits = _splits(frame, schema)

    def tried(search: SearchConfig) -> int:
        notes: list[str] = []
        candidate = CandidateConfig(name="xgb", family="xgboost", search=search)
        fit_candidate(candidate, schema, FeatureConfig(), lenient_gates(), splits, 0, notes.append)
        return len(notes)

    assert tried(SearchConfig(budget=1.0)) == 1  # the first setting always runs
    assert tried(SearchConfig(n_iter=3)) == 3
    assert tried(SearchConfig(budget=1e12)) == 4  # the classification portfolio


def test_preset_options_are_skipped_on_other_data_but_written_ones_are_errors(caplog):
    frame = churn_frame(300)
    with caplog.at_level(logging.WARNING, logger="zenloop.schema"):
        schema_for(frame, CHURN, FeatureConfig(preset="orders"))
    assert "features.preset 'orders': bins on 'customer_tenure_days' skipped" in caplog.text
    with pytest.raises(DataValidationError, match="customer_tenure_days"):
        schema_for(frame, CHURN, FeatureConfig(bins={"customer_tenure_days": 8}))
    resolved = FeatureConfig(preset="orders").resolve(["unit_price", "quantity"])
    assert resolved.config.interactions == [("unit_price", "quantity")]
    assert resolved.config.bins == {} and len(resolved.skipped) == 2
