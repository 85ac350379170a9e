"""What a retraining learns from: logged rows, as the service validated and logged them,
with their feedback, in the training columns and dtypes, whatever the requests held.

Rows go through the service's own row validation and the real prediction log (SQLite),
and the training set is written to Parquet as ZenML's materializer writes it.
"""

import numpy as np
import pandas as pd
import pytest
import yaml

from api.schemas import build_row_models
from monitoring.log_store import PredictionLogStore, PredictionRecord
from monitoring.retraining import (
    RetrainPlan,
    build_training_sets,
    recent_labelled,
    training_columns,
)
from ops.retrain_runner import training_config
from zenloop.config import (
    ColumnRole,
    FeatureConfig,
    ProfileConfig,
    RetrainConfig,
    load_training_config,
)
from zenloop.deployment import request_rows
from zenloop.schema import infer_schema

ROWS = 400
TARGET = "price"


def _table(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "rownames": np.arange(1, rows + 1),  # a row number: flagged and ignored
            "size": rng.uniform(10, 100, rows),
            "grade": rng.integers(1, 4, rows),  # integer codes, used as categories
            "city": rng.choice(["Austin", "Dallas", "Houston"], rows),
            "listed": pd.Timestamp("2020-01-01")
            + pd.to_timedelta(rng.integers(0, 900, rows), unit="D"),
            "furnished": rng.random(rows) < 0.5,
            TARGET: rng.uniform(100, 500, rows).round(2),
        }
    )


def _logged(store: PredictionLogStore, rows: list[dict], truths: list[float], schema) -> None:
    """Requests validated and normalised by the service's row model, logged, then labelled."""
    models = build_row_models(schema, "reject", len(rows))
    records = [
        PredictionRecord(f"r{i}", float(i), "1", models.values(models.row.model_validate(row)), 0.0)
        for i, row in enumerate(rows)
    ]
    store.append(records)
    store.add_feedback([(f"r{i}", truth) for i, truth in enumerate(truths)], now=1.0)


@pytest.mark.parametrize("send_ignored", [True, False], ids=["with-rownames", "without"])
def test_retraining_data_has_the_training_columns_and_dtypes(tmp_path, send_ignored):
    train = _table(ROWS, 0)
    profile = ProfileConfig(column_roles={"grade": ColumnRole.CATEGORICAL})
    schema = infer_schema(train, TARGET, "regression", profile, FeatureConfig(), "table")
    assert schema.column("rownames").role == ColumnRole.IGNORE
    later = _table(ROWS, 1).assign(rownames=lambda f: f["rownames"] + 10_000)
    features = later.drop(columns=[TARGET] + ([] if send_ignored else ["rownames"]))
    store = PredictionLogStore(f"sqlite:///{tmp_path / 'log.db'}")
    _logged(store, request_rows(features), later[TARGET].tolist(), schema)

    config = RetrainConfig(min_labelled_rows=100, reference_rows=200)
    recent, source = recent_labelled(store.labelled_rows(), schema, config)
    assert len(recent) == ROWS, source
    retrain_train, holdout = build_training_sets(train, recent, schema, config, seed=0)

    expected = training_columns(schema)
    assert "rownames" not in expected
    for frame in (retrain_train, holdout):
        assert list(frame.columns) == expected
        assert frame.dtypes.to_dict() == train[expected].dtypes.to_dict()
        assert frame.notna().all().all(), frame.isna().sum()
        frame.to_parquet(tmp_path / "written.parquet")  # as the artifact is stored
    assert len(holdout) == int(ROWS * config.recent_holdout)
    assert len(retrain_train) == 200 + ROWS - len(holdout)
    # the logged values are the requests' values, not strings of them
    logged = store.labelled_rows()
    assert pd.api.types.is_float_dtype(logged["size"])
    if send_ignored:
        assert pd.api.types.is_numeric_dtype(logged["rownames"]), "logged in its training type"


def test_feedback_that_is_no_valid_label_is_left_out(tmp_path):
    train = _table(ROWS, 0)
    schema = infer_schema(train, TARGET, "regression", ProfileConfig(), FeatureConfig(), "table")
    later = _table(50, 2)
    store = PredictionLogStore(f"sqlite:///{tmp_path / 'log.db'}")
    truths = later[TARGET].tolist()
    truths[:5] = ["unknown"] * 5
    _logged(store, request_rows(later.drop(columns=[TARGET])), truths, schema)
    config = RetrainConfig(min_labelled_rows=10, reference_rows=100)
    recent, _ = recent_labelled(store.labelled_rows(), schema, config)
    retrain_train, holdout = build_training_sets(train, recent, schema, config, seed=0)
    assert len(retrain_train) + len(holdout) == 100 + 45
    assert retrain_train[TARGET].notna().all() and holdout[TARGET].notna().all()


def test_the_retrained_model_accepts_the_columns_its_champion_ignored(tmp_path):
    """The retraining's data lacks them; its config names them to be ignored, so requests
    that still carry them (as clients of the champion did) are accepted and logged."""
    train = _table(ROWS, 0)
    champion = infer_schema(train, TARGET, "regression", ProfileConfig(), FeatureConfig(), "t")
    plan = RetrainPlan(
        ready=True, reason="drift", model_name="m", target=TARGET, task="regression",
        ignored_columns=champion.names(ColumnRole.IGNORE),
    )  # fmt: skip
    assert plan.ignored_columns == ["rownames"]
    base = tmp_path / "training.yaml"
    base.write_text(yaml.safe_dump({"model": {"name": "m"}, "parameters": {"config": {}}}))
    ids = {"retrain_train": "train-id", "retrain_recent": "recent-id"}
    retrain = RetrainConfig(leading_candidates=None)
    config = load_training_config(training_config(plan, base, ids, tmp_path / "r", retrain))
    assert config.profile.column_roles == {"rownames": ColumnRole.IGNORE}

    data = train[training_columns(champion)]
    retrained = infer_schema(data, TARGET, "regression", config.profile, FeatureConfig(), "t")
    assert retrained.column("rownames").role == ColumnRole.IGNORE
    assert retrained.feature_names == champion.feature_names
    models = build_row_models(retrained, "reject", 10)
    row = request_rows(_table(1, 5).drop(columns=[TARGET]))[0]
    assert models.values(models.row.model_validate(row))["rownames"] == 1, "logged as sent"
    del row["rownames"]
    assert models.values(models.row.model_validate(row))["rownames"] is None
