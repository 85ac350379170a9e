"""Role inference on other schemas, and a feature pipeline that is leak-free and robust."""

import numpy as np
import pandas as pd
import pytest

from tests.support.data import FAST_XGB, lenient_gates, other_schema_frame, schema_for
from zenloop.config import ColumnRole, DataConfig, FeatureConfig, SplitConfig
from zenloop.data.loading import load_frame
from zenloop.features import DateParts, build_preprocessor
from zenloop.training import fit_candidate, split_frame

EXPECTED_ROLES = {
    "listing_ref": ColumnRole.IGNORE,
    "listed_on": ColumnRole.DATETIME,
    "district": ColumnRole.CATEGORICAL,
    "landlord": ColumnRole.HIGH_CARDINALITY,
    "description": ColumnRole.TEXT,
    "area_m2": ColumnRole.NUMERIC,
    "rooms": ColumnRole.NUMERIC,
}


@pytest.mark.parametrize(
    ("task", "target"), [("regression", "monthly_rent"), ("classification", "tier")]
)
def test_bring_your_own_csv_of_another_schema(tmp_path, task, target):
    path = tmp_path / "rentals.csv"
    other_schema_frame(1_500, task).to_csv(path, index=False)
    data = DataConfig(source="file", path=str(path), target=target, task=task)
    frame = load_frame(data)
    schema = schema_for(frame, data)
    assert {c.name: c.role for c in schema.columns} == EXPECTED_ROLES
    if task == "classification":
        assert schema.classes == ["high", "low", "mid"]
    splits = dict(
        zip(
            ("train", "validation", "test"), split_frame(frame, schema, SplitConfig()), strict=False
        )
    )
    bundle, result = fit_candidate(FAST_XGB, schema, FeatureConfig(), lenient_gates(), splits, 0)
    score = result.metrics["test"]["r2" if task == "regression" else "roc_auc"]
    assert score > 0.7, result.metrics["test"]
    predictions = bundle.predict_frame(splits["test"].head(5))
    assert len(predictions) == 5


def _orders(n=3_000, seed=0):
    data = DataConfig(n_rows=n, seed=seed)
    return data, load_frame(data)


def test_preprocessor_learns_from_training_rows_only():
    data, frame = _orders()
    schema = schema_for(frame, data)
    train, test = frame.iloc[:2_000], frame.iloc[2_000:]
    y_train = train["order_total"]
    fitted = build_preprocessor(schema, FeatureConfig()).fit(train, y_train)
    before = fitted.transform(test)
    # Refit on the same training rows after poisoning the *test* rows' targets and values:
    poisoned = test.assign(order_total=1e9, unit_price=test["unit_price"] * 1_000)
    refitted = build_preprocessor(schema, FeatureConfig()).fit(train, y_train)
    np.testing.assert_allclose(refitted.transform(test), before)
    # A row's features do not depend on which other rows are in the batch.
    alone = fitted.transform(test.head(1))
    np.testing.assert_allclose(alone[0], before[0])
    assert not np.allclose(fitted.transform(poisoned.head(1)), alone)


def test_unseen_categories_and_missing_values_still_predict():
    data, frame = _orders()
    schema = schema_for(frame, data)
    splits = dict(
        zip(
            ("train", "validation", "test"), split_frame(frame, schema, SplitConfig()), strict=False
        )
    )
    bundle, _ = fit_candidate(FAST_XGB, schema, FeatureConfig(), lenient_gates(), splits, 0)
    strange = splits["test"].head(4).copy()
    strange["city"] = "Atlantis"
    strange["category"] = "Spaceships"
    strange["seller_id"] = "S999999"
    strange["product_title"] = None
    strange["unit_price"] = np.nan
    strange["order_ts"] = "not a date"
    predictions = bundle.predict_frame(strange.drop(columns=["brand"]))
    assert np.isfinite(predictions["prediction"]).all()


def test_training_is_reproducible():
    data, frame = _orders(2_000)
    schema = schema_for(frame, data)
    splits = dict(
        zip(
            ("train", "validation", "test"), split_frame(frame, schema, SplitConfig()), strict=False
        )
    )
    runs = [
        fit_candidate(FAST_XGB, schema, FeatureConfig(), lenient_gates(), splits, 5)[1]
        for _ in range(2)
    ]
    assert runs[0].metrics == runs[1].metrics


def test_concept_drift_scenario_rewards_retraining():
    """promotion_season changes the input-to-target relation: a retrained model does better."""
    data, old = _orders(4_000, seed=1)
    drifted_config = DataConfig(n_rows=4_000, seed=2, scenario="promotion_season")
    drifted = load_frame(drifted_config)
    schema = schema_for(old, data)
    holdout = drifted.iloc[3_000:]
    # each model stops early on rows like its own training rows, never on the holdout
    old_bundle, _ = fit_candidate(
        FAST_XGB,
        schema,
        FeatureConfig(),
        lenient_gates(),
        {"train": old.iloc[:3_500], "validation": old.iloc[3_500:], "test": holdout},
        0,
    )
    new_train = pd.concat([old.iloc[:1_000], drifted.iloc[:2_500]], ignore_index=True)
    new_bundle, _ = fit_candidate(
        FAST_XGB,
        schema,
        FeatureConfig(),
        lenient_gates(),
        {"train": new_train, "validation": drifted.iloc[2_500:3_000], "test": holdout},
        0,
    )
    old_rmse = old_bundle.metrics["test"]["rmse"]
    new_rmse = new_bundle.metrics["test"]["rmse"]
    assert new_rmse < 0.8 * old_rmse, (old_rmse, new_rmse)


@pytest.mark.parametrize("zone", [None, "UTC"])
def test_date_parts_of_parsed_timestamps_match_the_parts_of_raw_values(zone):
    """Training's parsed timestamps take the column-wise path, serving's raw values the
    row-by-row one: the parts must agree, a missing date included."""
    stamps = pd.Series(pd.date_range("2024-12-28 22:00", periods=200, freq="7h", tz=zone))
    stamps[::17] = pd.NaT
    frame = pd.DataFrame({"listed_on": stamps})
    parts = DateParts().fit(frame)
    raw = np.array([[None if pd.isna(v) else v.isoformat()] for v in stamps], dtype=object)
    np.testing.assert_array_equal(parts.transform(frame), parts.transform(raw))
