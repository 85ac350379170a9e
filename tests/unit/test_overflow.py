"""Numbers that cannot break a model, and the random-forest fast path against scikit-learn.

In-process: every family and task, the batch sizes on both sides of the switch from the
compiled path's own predictors to the model's own predict (PARALLEL_PREDICT_ROWS); the
compiled FlatForest is also checked on its own above that size.
"""

import math

import numpy as np
import pandas as pd
import pytest

from tests.support.data import schema_for
from tests.support.serving import fit_small
from zenloop.compiled import PARALLEL_PREDICT_ROWS, CompiledModel
from zenloop.config import DataConfig, FeatureConfig, SplitConfig
from zenloop.data.loading import load_frame
from zenloop.deployment import request_rows
from zenloop.training import split_frame

FAMILIES = ["xgboost", "hist_gradient_boosting", "random_forest", "linear"]
TASKS = {"regression": "order_total", "classification": "is_returned"}
# the product and the ratio are where float32 overflowed: unit_price * quantity
FEATURES = FeatureConfig(
    interactions=[("unit_price", "quantity")], ratios=[("shipping_cost", "unit_price")]
)
BATCH_SIZES = [1, PARALLEL_PREDICT_ROWS - 1, PARALLEL_PREDICT_ROWS, 10_000]
HUGE = 1e200
FOREST_BATCHES = [1, 2, 5, 50, PARALLEL_PREDICT_ROWS - 1, PARALLEL_PREDICT_ROWS, 1_000]


def _fit(family: str, task: str):
    data = DataConfig(n_rows=1_000, seed=5, target=TASKS[task], task=task)
    frame = load_frame(data)
    schema = schema_for(frame, data, FEATURES)
    splits = dict(
        zip(("train", "validation", "test"), split_frame(frame, schema, SplitConfig()), strict=True)
    )
    bundle, _ = fit_small(family, schema, FEATURES, splits)
    return bundle, splits["test"].drop(columns=[schema.target])


@pytest.fixture(scope="module")
def bundles():
    return {(f, t): _fit(f, t) for f in FAMILIES for t in TASKS}


def _huge_rows(holdout: pd.DataFrame, n: int, beyond_float: bool = True) -> list[dict]:
    base = request_rows(holdout.head(50))
    rows = [dict(base[i % len(base)]) for i in range(n)]
    for i, row in enumerate(rows):  # every sign combination, and integers beyond float
        sign = -1 if i % 3 == 0 else 1
        row.update(unit_price=sign * HUGE, quantity=HUGE, shipping_cost=-HUGE)
        if beyond_float and i % 7 == 0:
            row.update(discount=10**400, tax=-(10**400))
    return rows


@pytest.mark.parametrize("task", list(TASKS))
@pytest.mark.parametrize("family", FAMILIES)
def test_huge_finite_values_predict_for_every_family_and_batch_size(bundles, family, task):
    bundle, holdout = bundles[(family, task)]
    compiled = CompiledModel(bundle)
    for n in BATCH_SIZES:
        labels, probas = compiled.predict(_huge_rows(holdout, n))
        assert len(labels) == n
        if probas is None:
            assert all(math.isfinite(v) for v in labels), f"{family} n={n}"
        else:
            assert all(math.isclose(sum(p.values()), 1.0, abs_tol=1e-6) for p in probas)
    # the pipeline path (deployment checks, the MLflow pyfunc) clips the same way
    frame = pd.DataFrame(_huge_rows(holdout, PARALLEL_PREDICT_ROWS + 1, beyond_float=False))
    assert bundle.predict_frame(frame)["prediction"].notna().all()


@pytest.mark.parametrize("task", list(TASKS))
def test_flat_forest_agrees_with_scikit_learn_on_single_rows_and_batches(bundles, task):
    bundle, holdout = bundles[("random_forest", task)]
    compiled = CompiledModel(bundle)
    forest = bundle.pipeline.named_steps["model"]
    rows = request_rows(holdout.head(max(FOREST_BATCHES)))
    for n in FOREST_BATCHES:
        X = compiled.transform(rows[:n])
        ours = compiled._forest.predict(X)  # what serves forest requests under 256 rows
        if task == "regression":
            np.testing.assert_allclose(ours[:, 0], forest.predict(X), rtol=1e-9, atol=1e-9)
        else:
            np.testing.assert_allclose(ours, forest.predict_proba(X), rtol=1e-9, atol=1e-9)
        expected = bundle.predict_frame(pd.DataFrame(rows[:n]))["prediction"].tolist()
        labels, _ = compiled.predict(rows[:n])
        if task == "regression":
            np.testing.assert_allclose(labels, expected, rtol=1e-6)
        else:
            assert labels == expected
