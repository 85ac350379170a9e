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
    build_retraining_data,
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


def _logged(
    store: PredictionLogStore, rows: list[dict], truths: list, schema, prefix: str = "r"
) -> None:
    """Requests validated and normalised by the service's row model, logged, then labelled."""
    models = build_row_models(schema, "reject", len(rows))
    ids = [f"{prefix}{i}" for i in range(len(rows))]
    records = [
        PredictionRecord(id_, float(i), "1", models.values(models.row.model_validate(row)), 0.0)
        for i, (id_, row) in enumerate(zip(ids, rows, strict=True))
    ]
    store.append(records)
    store.add_feedback(list(zip(ids, truths, strict=True)), now=1.0)


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
    data, history, labelled, validation, holdout = build_retraining_data(
        train, recent, schema, config
    )

    expected = training_columns(schema)
    assert "rownames" not in expected
    assert list(data.columns) == expected
    assert data.dtypes.to_dict() == train[expected].dtypes.to_dict()
    assert data.notna().all().all(), data.isna().sum()
    data.to_parquet(tmp_path / "written.parquet")  # as the artifact is stored
    # the champion's latest rows, then the labelled traffic in the order it was logged
    assert (history, labelled) == (200, ROWS) and len(data) == 200 + ROWS
    assert data.iloc[:200].equals(train[expected].tail(200).reset_index(drop=True))
    assert data["size"].iloc[200:].tolist() == pytest.approx(later["size"].tolist())
    assert holdout == round(ROWS * config.recent_holdout)
    assert validation == round(ROWS * config.recent_validation)
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
    data, _, labelled, _, _ = build_retraining_data(train, recent, schema, config)
    assert len(data) == 100 + 45 and labelled == 45
    assert data[TARGET].notna().all()


def test_the_retrained_model_accepts_the_columns_its_champion_ignored(tmp_path):
    """The retraining's data lacks them; its config names them to be ignored, so requests
    that still carry them (as clients of the champion did) are accepted and logged."""
    train = _table(ROWS, 0)
    champion = infer_schema(train, TARGET, "regression", ProfileConfig(), FeatureConfig(), "t")
    plan = RetrainPlan(
        ready=True, reason="drift", model_name="m", target=TARGET, task="regression",
        ignored_columns=champion.names(ColumnRole.IGNORE),
        history_rows=ROWS, labelled_rows=100, validation_rows=20, holdout_rows=30,
    )  # fmt: skip
    assert plan.ignored_columns == ["rownames"]
    base = tmp_path / "training.yaml"
    base.write_text(yaml.safe_dump({"model": {"name": "m"}, "parameters": {"config": {}}}))
    retrain = RetrainConfig(leading_candidates=None)
    config = load_training_config(training_config(plan, base, "data-id", tmp_path / "r", retrain))
    assert config.profile.column_roles == {"rownames": ColumnRole.IGNORE}
    # in time order: the newest labelled rows are the test rows, the ones before validate
    assert (config.split.order, config.split.test_rows, config.split.validation_rows) == (
        "file",
        30,
        20,
    )
    assert config.history.recent_rows == 50, "the labelled rows it learns from"
    assert config.data.artifact_id == "data-id" and config.promotion.recent_data is None

    data = train[training_columns(champion)]
    retrained = infer_schema(data, TARGET, "regression", config.profile, FeatureConfig(), "t")
    assert retrained.column("rownames").role == ColumnRole.IGNORE
    assert retrained.feature_names == champion.feature_names
    models = build_row_models(retrained, "reject", 10)
    row = request_rows(_table(1, 5).drop(columns=[TARGET]))[0]
    assert models.values(models.row.model_validate(row))["rownames"] == 1, "logged as sent"
    del row["rownames"]
    assert models.values(models.row.model_validate(row))["rownames"] is None


def test_the_decision_counts_the_labelled_rows_the_plan_will_read(tmp_path):
    """Rows logged and labelled after the checked window are not the plan's to learn from:
    counted with them, a decision could ask for a retraining its plan then has no data for."""
    train = _table(ROWS, 0)
    schema = infer_schema(train, TARGET, "regression", ProfileConfig(), FeatureConfig(), "table")
    store = PredictionLogStore(f"sqlite:///{tmp_path / 'log.db'}")
    checked, after = _table(100, 3), _table(50, 4)
    _logged(store, request_rows(checked.drop(columns=[TARGET])), checked[TARGET].tolist(), schema)
    window_end = int(store.labelled_rows()["log_id"].max())
    _logged(
        store, request_rows(after.drop(columns=[TARGET])), after[TARGET].tolist(), schema, "late"
    )

    planned = store.labelled_rows(after_id=0, until_id=window_end)
    assert store.count_labelled(after_id=0, until_id=window_end) == len(planned) == 100
    assert store.count_labelled(after_id=0) == 150
