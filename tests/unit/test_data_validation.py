"""Every bad input gives one clear error naming the file, the column and the problem."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zenloop.config import (
    ColumnRole,
    ConfigError,
    DataConfig,
    FeatureConfig,
    ProfileConfig,
    load_training_config,
)
from zenloop.data.loading import DataValidationError, load_frame
from zenloop.schema import infer_schema


def _file_config(path: Path, **overrides) -> DataConfig:
    return DataConfig(source="file", path=str(path), target="y", **overrides)


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def _good(n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {"x": rng.normal(size=n), "c": rng.choice(["a", "b"], n), "y": rng.normal(size=n)}
    )


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_good().drop(columns="y"), "target column 'y' is missing"),
        (_good().assign(y=7.0), "target column 'y' has a single value"),
        (_good().assign(y=[None] + [1.0] * 49), "target column 'y' has 1 missing values"),
        (_good().assign(y="high"), "single value"),
        (_good().assign(x=[None] * 45 + [1.0] * 5), "column 'x' is 90% missing"),
    ],
)
def test_bad_frames_name_file_column_and_problem(tmp_path, frame, message):
    path = _write(tmp_path, frame)
    with pytest.raises(DataValidationError, match=message) as info:
        load_frame(_file_config(path))
    assert str(path) in str(info.value)


def test_regression_target_must_be_numeric(tmp_path):
    path = _write(tmp_path, _good().assign(y=["a", "b"] * 25))
    with pytest.raises(DataValidationError, match="'y' must be numeric for regression"):
        load_frame(_file_config(path))


def test_classification_class_with_one_row_is_refused(tmp_path):
    path = _write(tmp_path, _good().assign(y=["a"] * 49 + ["b"]))
    with pytest.raises(DataValidationError, match="fewer than 2 rows"):
        load_frame(_file_config(path, task="classification"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "file is empty"),
        ("broken.parquet", b"this is not parquet", "cannot be read"),
        ("data.xlsx", b"x", "unsupported file type '.xlsx'"),
        ("header_only.csv", b"x,y\n", "no rows"),
    ],
)
def test_unreadable_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataValidationError, match=message) as info:
        load_frame(_file_config(path))
    assert name in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataValidationError, match="file not found"):
        load_frame(_file_config(tmp_path / "nope.csv"))


def test_numeric_override_on_text_column_names_the_value(tmp_path):
    frame = _good().assign(c=["12", "oops"] * 25)
    profile = ProfileConfig(column_roles={"c": ColumnRole.NUMERIC})
    with pytest.raises(DataValidationError, match="column 'c' is configured as numeric.*'oops'"):
        infer_schema(frame, "y", "regression", profile, FeatureConfig(), "data.csv")


def test_feature_config_naming_absent_column_is_refused():
    features = FeatureConfig(ratios=[("x", "price")])
    with pytest.raises(DataValidationError, match=r"configured columns \['price'\]"):
        infer_schema(_good(), "y", "regression", ProfileConfig(), features, "data.csv")


def test_config_errors_name_the_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("parameters:\n  config:\n    data: {source: file}\n    gates: {min_r3: 1}\n")
    with pytest.raises(ConfigError) as info:
        load_training_config(path)
    text = str(info.value)
    assert "bad.yaml" in text and "data.path is required" in text and "gates.min_r3" in text


def test_config_file_missing_or_not_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_training_config(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("parameters: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_training_config(broken)


def test_shipped_configs_validate():
    root = Path(__file__).resolve().parents[2]
    config = load_training_config(root / "configs" / "training.yaml")
    assert [c.name for c in config.candidates][:1] == ["xgboost"]
